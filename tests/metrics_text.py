"""A worker's ``/metrics`` as the tests read it, and the alerting rules checked with ``promtool``:
shared by the metrics, backup, nginx and server-install tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "server" / "install" / "alerts.yml"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[name, frozenset(labels.items())]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: install the 'prometheus' package (install.sh does)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
