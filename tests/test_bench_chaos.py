"""bench/chaos.py end to end in its smallest form: one fault of each kind (a server worker, the
broker and a unit killed with SIGKILL, the SMS provider down) while three units keep reporting;
the books must show no report and no SMS lost or made twice, and every fault recovered from."""

from __future__ import annotations

import re

from tests.commands import run_bench


def test_a_fault_of_each_kind_loses_nothing_and_duplicates_nothing() -> None:
    lines = run_bench("bench.chaos", "--faults", "4", "--units", "3", "--seed", "7", timeout_s=400)
    assert "faults by kind: worker=1 broker=1 unit=1 sms=1" in lines
    assert "not recovered within 120 s: 0" in lines
    last = re.fullmatch(r"faults=4 reports=(\d+) lost=0 duplicated=0 recovered_p99_s=[\d.]+", lines[-1])
    assert last is not None, lines[-12:]
    assert int(last.group(1)) >= 12  # the units kept reporting through the faults
