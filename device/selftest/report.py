"""The self-test's result as a technician reads it: one line per check, then the verdict."""

from __future__ import annotations

from protocol.messages import CheckStatus, SelfTest, SelfTestCheck


def check_line(check: SelfTestCheck, width: int = 12) -> str:
    return f"{check.status.value.upper():4}  {check.name:<{width}}  {check.detail}"


def human_report(device_id: str, result: SelfTest) -> str:
    width = max(len(check.name) for check in result.checks)
    head = f"Self-test of {device_id} ({result.device_kind.value}, firmware {result.firmware}), run {result.run_id}"
    lines = [head, *(check_line(check, width) for check in result.checks), summary(result)]
    return "\n".join(lines)


def summary(result: SelfTest) -> str:
    counts = {status: [c.name for c in result.checks if c.status is status] for status in CheckStatus}
    failed = counts[CheckStatus.FAIL]
    seconds = (result.finished_at - result.started_at).total_seconds()
    verdict = "PASSED" if result.passed else "FAILED"
    failed_text = f"{len(failed)} failed" + (f" ({', '.join(failed)})" if failed else "")
    return (
        f"{verdict}: {len(counts[CheckStatus.PASS])} passed, {failed_text}, "
        f"{len(counts[CheckStatus.SKIP])} skipped, in {seconds:.1f} s"
    )
