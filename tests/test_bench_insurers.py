"""bench/insurers.py end to end in its smallest form: two workers, three insurers, one down for a
second; nothing lost, nothing twice, every signature good. The figures are the benchmark's business."""

from __future__ import annotations

import re

from tests.commands import run_bench


def test_insurers_benchmark_loses_nothing_while_an_insurer_is_down() -> None:
    lines = run_bench("bench.insurers", "--cases", "30", "--rate", "30", "--outage-s", "1", "--limit-s", "60")
    assert any("bad signatures=0" in line for line in lines)
    assert re.fullmatch(r"deliveries=60 lost=0 duplicates=0 p99_s=[\d.]+", lines[-1])
