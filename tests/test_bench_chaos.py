"""bench/chaos.py end to end in its smallest form: one fault of each kind (a server worker, the
broker, a unit and PostgreSQL's server killed with SIGKILL, the SMS provider down and, as root,
a unit cut off the network, for 5-8 s instead of the campaign's 30-90) while three units keep
reporting; the books must show no report and no SMS lost or made twice, and every fault recovered
from."""

from __future__ import annotations

import os
import re

import pytest

from tests.commands import run_bench

# Some 80 s on a quiet 2-core machine; three times that while others load it.
pytestmark = pytest.mark.timeout(600)


def test_a_fault_of_each_kind_loses_nothing_and_duplicates_nothing() -> None:
    cuts = os.geteuid() == 0  # network namespaces need root
    faults = 6 if cuts else 5
    args = ("--faults", str(faults), "--units", "3", "--seed", "7", "--postgresql", "--cut-s", "5", "8")
    lines = run_bench("bench.chaos", *args, timeout_s=500)
    kinds = "worker=1 broker=1 unit=1 sms=1" + (" net=1" if cuts else "") + " postgres=1"
    assert f"faults by kind: {kinds}" in lines
    if cuts:
        [cut] = [line for line in lines if line.startswith("fault") and " net " in line]
        assert "(0 cases came through it)" in cut
    assert "not recovered within 120 s: 0" in lines
    last = re.fullmatch(rf"faults={faults} reports=(\d+) lost=0 duplicated=0 recovered_p99_s=[\d.]+", lines[-1])
    assert last is not None, lines[-12:]
    assert int(last.group(1)) >= 12  # the units kept reporting through the faults
