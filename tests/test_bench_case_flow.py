"""bench/case_flow.py end to end in its smallest form: it runs the real stack from report to
delivery and reports every step and the PDF time. The figures are the benchmark's business."""

from __future__ import annotations

import re

from tests.commands import run_bench


def test_case_flow_benchmark_reports_each_step_and_the_pdf_time() -> None:
    lines = run_bench("bench.case_flow", "--cases", "3")
    for step in ("report", "party", "facts", "checks", "hand_over", "issue", "delivered"):
        assert any(
            re.fullmatch(rf"  {step} +median +[\d.]+ ms  p90 +[\d.]+ ms  max +[\d.]+ ms", line) for line in lines
        )
    assert re.fullmatch(r"cases=3 pdf_ms=\d+", lines[-1])
