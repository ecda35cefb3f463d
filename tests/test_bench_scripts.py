"""Every benchmark entry script runs as its path (``python bench/NAME.py``), from any folder, not
only as ``python -m bench.NAME``: each puts the repo root on ``sys.path`` before importing bench/
and tests/. The cheapest invocation of each is enough to show its imports resolve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

# Benchmarks with a command line of their own: --help imports everything and exits 0.
WITH_HELP = [
    "broker_failover",
    "call_capacity",
    "case_flow",
    "chaos",
    "first_frame",
    "insurers",
    "fleet",
    "gnss",
    "masking",
    "ocr",
    "ocr_choice",
    "ota",
    "portal",
    "recording",
    "report_latency",
    "workspace",
]
# Processes the benchmarks start, with positional arguments only: given none, each gets as far as
# reading its arguments (past every import) and stops there.
POSITIONAL = ["call_feeders", "call_viewers", "console_observer", "fleet_devices", "simulated_units"]


def run_script(name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_every_entry_script_is_covered() -> None:
    entry = {p.stem for p in BENCH.glob("*.py") if 'if __name__ == "__main__":' in p.read_text()}
    assert entry == {*WITH_HELP, *POSITIONAL, "profiled"}


@pytest.mark.parametrize("name", WITH_HELP)
def test_help_as_path(name: str, tmp_path: Path) -> None:
    done = run_script(name, ["--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


@pytest.mark.parametrize("name", POSITIONAL)
def test_helper_process_imports_as_path(name: str, tmp_path: Path) -> None:
    done = run_script(name, [], tmp_path)
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(("IndexError", "ValueError")), done.stderr


def test_profiled_as_path(tmp_path: Path) -> None:
    done = run_script("profiled", [str(tmp_path / "profile"), "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "profile").exists()
