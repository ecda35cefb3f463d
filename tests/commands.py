"""The project's command lines (``kuaichu ...``, the benchmarks) run as separate processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from server.config import ServerConfig
from tests import pki
from tests.conftest import RunningServer

ROOT = Path(__file__).resolve().parent.parent


def run_bench(module: str, *args: str, timeout_s: float = 120) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def server_command(server: RunningServer, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``kuaichu server ARGS`` against the running server's database, as a separate process."""
    return configured_command(server.cfg, config, *args)


def configured_command(
    cfg: ServerConfig, config: Path, *args: str, tables: str = ""
) -> subprocess.CompletedProcess[str]:
    """``kuaichu server ARGS`` with ``cfg``'s data folder, broker and database written to ``config``
    (and any more ``tables``), whether or not a worker runs on them."""
    config.write_text(
        f'[server]\ndata_dir = "{cfg.server.data_dir}"\n\n[broker]\nhost = "127.0.0.1"\nport = {cfg.broker.port}\n\n'
        + pki.tls_table(pki.current().server_tls())
        + f'[database]\nurl = "{cfg.database_url}"\nmigrate = false\n'
        + tables
    )
    return subprocess.run(
        [sys.executable, "-m", "kuaichu.cli", "server", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


def kuaichu(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuaichu.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def write_server_toml(server: RunningServer, path: Path) -> Path:
    cfg = server.cfg
    path.write_text(
        f'[server]\ndata_dir = "{cfg.server.data_dir}"\n\n[broker]\nhost = "127.0.0.1"\nport = {cfg.broker.port}\n\n'
        + pki.tls_table(pki.current().server_tls())
        + f'[http]\nhost = "127.0.0.1"\nport = {cfg.http.port}\nsecure_cookies = false\n'
    )
    return path


PASSPHRASE = "a long test passphrase"


def provision(*args: str, passphrase: str | None = PASSPHRASE) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUAICHU_CA_PASSPHRASE"}
    if passphrase is not None:
        env["KUAICHU_CA_PASSPHRASE"] = passphrase
    return subprocess.run(
        [sys.executable, "-m", "kuaichu.cli", "provision", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
