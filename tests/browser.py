"""Headless Chromium (Debian's, driven by Playwright) for the console tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Locator, async_playwright

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    # Host candidates as addresses, not mDNS names: aiortc cannot resolve ``.local`` names.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("chromium not installed: install.sh installs Debian's 'chromium' package")
    return path


@asynccontextmanager
async def chromium(*, trusting: Path | None = None, hosts: dict[str, str] | None = None) -> AsyncIterator[Browser]:
    """Chromium, trusting the CA certificate ``trusting`` as a machine whose administrator added it
    would (Chromium on Linux reads the user's NSS database, ``$HOME/.pki/nssdb``), and resolving
    ``hosts`` (name -> address): a page is a secure context on a name only over trusted HTTPS,
    while on 127.0.0.1 it is one even over plain HTTP."""
    args = list(CHROMIUM_FLAGS)
    if hosts:
        args.append("--host-resolver-rules=" + ",".join(f"MAP {name} {address}" for name, address in hosts.items()))
    with tempfile.TemporaryDirectory(prefix="chromium-home-") as home:
        env: dict[str, str | float | bool] | None = None
        if trusting is not None:
            await _trust(Path(home), trusting)
            env = {**os.environ, "HOME": home}
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium_path(), headless=True, args=args, env=env)
            try:
                yield browser
            finally:
                await browser.close()


async def _trust(home: Path, ca_file: Path) -> None:
    if shutil.which("certutil") is None:
        raise RuntimeError("certutil not installed: install.sh installs Debian's 'libnss3-tools' package")
    nssdb = f"sql:{home / '.pki' / 'nssdb'}"
    (home / ".pki" / "nssdb").mkdir(parents=True)
    for command in (
        ["certutil", "-N", "-d", nssdb, "--empty-password"],
        ["certutil", "-A", "-d", nssdb, "-n", "Kuaichu test CA", "-t", "C,,", "-i", str(ca_file)],
    ):
        done = await asyncio.create_subprocess_exec(*command, stdout=PIPE, stderr=STDOUT)
        output, _ = await done.communicate()
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {output.decode(errors='replace')}")


async def loaded_width(img: Locator) -> int:
    """The picture's own width once the browser has it: an <img> is in the page before its picture
    has arrived, so asking at once races the download; a picture that fails to load gives 0."""
    width = await img.evaluate(
        """(img) => img.complete ? img.naturalWidth : new Promise((done) => {
            img.addEventListener("load", () => done(img.naturalWidth));
            img.addEventListener("error", () => done(0));
        })"""
    )
    return int(width)
