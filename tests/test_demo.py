"""`kuaichu demo`, the README's first command, as a newcomer runs it: start, press, see the case, Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def test_the_demo_runs_over_mutual_tls_and_a_press_opens_a_routed_case() -> None:
    # Unix socket paths are short: keep the demo folder shallow.
    with tempfile.TemporaryDirectory(prefix="kc-demo-") as folder:
        root = Path(folder)
        # Like a project folder (mktemp makes it 0700): the broker, dropped to its own user as
        # root, must be able to pass through to the configuration it was given.
        root.chmod(0o711)
        demo = subprocess.Popen(
            [sys.executable, "-m", "kuaichu.cli", "demo", "--dir", str(root), "--http-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        banner: list[str] = []
        try:
            assert demo.stdout is not None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = demo.stdout.readline()
                assert line, "demo exited: " + "".join(banner)
                banner.append(line)
                if line.strip().startswith("Logs"):
                    break
            text = "".join(banner)
            assert "Console   http://127.0.0.1:" in text and "mutual TLS" in text
            for user in ("dispatcher", "wuhua", "officer", "admin"):
                assert f"            {user}" in text

            def press(*args: str) -> str:
                done = subprocess.run(
                    [sys.executable, "-m", "kuaichu.cli", "demo", "--dir", str(root), "press", *args],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert done.returncode == 0, done.stdout + done.stderr
                return done.stdout

            # The devices may still be waiting for their first GNSS fix; a press works regardless.
            assert "opened for 五华区交警大队" in press("car-demo-01")
            kiosk_case = press("kiosk-demo-01")
            assert "opened for 官渡区交警大队" in kiosk_case
            # The kiosk's screen (the page its Chromium shows) has the case number up.
            screen = re.search(r"its screen (http://127\.0\.0\.1:\d+/)", text)
            assert screen is not None, text
            case_no = re.search(r"\b(\d{14,})\b", kiosk_case)
            assert case_no is not None, kiosk_case
            deadline = time.monotonic() + 15
            while case_no.group(1) not in urllib.request.urlopen(screen.group(1), timeout=5).read().decode():
                assert time.monotonic() < deadline, "the kiosk's screen never showed its case number"
                time.sleep(0.2)
            # Determinations reach the parties through the demo's own SMS provider.
            assert "no SMS gateway configured" not in (root / "logs" / "server.log").read_text()
            # The station registered both units with the server (synced only once the server said yes).
            registry = json.loads((root / "pki" / "registry.json").read_text())
            assert {d: r["synced"] for d, r in registry["devices"].items()} == {
                "car-demo-01": True,
                "kiosk-demo-01": True,
            }
            broker_log = (root / "logs" / "mosquitto.log").read_text()
            assert "u'car-demo-01'" in broker_log  # the broker knows the device by its certificate
        finally:
            demo.send_signal(signal.SIGINT)
            out, _ = demo.communicate(timeout=30)
        assert demo.returncode == 0
        assert "kuaichu demo: stopped" in out
