"""The review's rules with no I/O: its periods, its deadlines in words a party reads, the steps it
adds to the party's progress and the SMS each step sends.

Kept pure so that the deadline a party is told, the one the staff see and the one the server
enforces are one computation (``server/portal/periods.py``), testable with any date.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from server.cases import LOCAL_TZ
from server.config import PortalSection
from server.db.portal import Review
from server.lifecycles.review import OWNER, REVIEW, ReviewStatus
from server.portal.periods import Calendar, deadline
from server.portal.timeline import Step

# 《道路交通事故处理程序规定》: days, counted by ``periods.deadline``.
FILE_DAYS = 3  # from the determination's delivery to the party
FORWARD_DAYS = 2  # the issuing unit forwards it with the case file
DECIDE_DAYS = 5  # the unit above accepts it or not
CONCLUDE_DAYS = 30  # an accepted review concludes


def calendar_of(cfg: PortalSection) -> Calendar:
    return Calendar(frozenset(cfg.holidays), frozenset(cfg.working_weekends))


def due(start: datetime, days: int, cfg: PortalSection) -> datetime:
    return deadline(start, days, calendar_of(cfg))


def words(end: datetime) -> str:
    """A deadline as a party reads it: "2026年12月4日24时" for the midnight that ends 4 December."""
    last = (end.astimezone(LOCAL_TZ) - timedelta(microseconds=1)).date()
    return f"{last.year}年{last.month}月{last.day}日24时"


def local_minute(at: datetime) -> str:
    local = at.astimezone(LOCAL_TZ)
    return f"{local.year}年{local.month}月{local.day}日{local:%H:%M}"


def stage_due(review: Review) -> datetime | None:
    """The deadline of the step the review waits for; None once it has concluded."""
    owner = OWNER.get(ReviewStatus(review.status))
    if owner is None:
        return None
    value: datetime | None = getattr(review, owner[1])
    return value


def overdue(review: Review, now: datetime) -> bool:
    end = stage_due(review)
    return end is not None and now >= end


def late_reason(delivered: datetime, end: datetime) -> str:
    return (
        f"申请复核的期限已过：认定书于{local_minute(delivered)}送达您，复核须在{words(end)}前申请，"
        "依规定不能再受理。如有疑问，请拨打122咨询。"
    )


def review_steps(review: Review, unit: str) -> list[Step]:
    """The review's steps on the party's progress, done or the next one due, each saying what comes next."""
    out = [
        Step(
            "review_requested",
            "已申请复核",
            review.requested_at,
            f"办案单位将在{words(review.forward_due)}前把申请和案卷转交{unit}。",
        )
    ]
    if review.forwarded_at is None or review.decide_due is None:
        return [*out, Step("review_forwarded", f"转交{unit}", None, f"{words(review.forward_due)}前")]
    out.append(
        Step(
            "review_forwarded",
            f"已转交{unit}",
            review.forwarded_at,
            f"{unit}将在{words(review.decide_due)}前决定是否受理，并通知各方当事人。",
        )
    )
    if review.decided_at is None:
        return [*out, Step("review_decided", "决定是否受理", None, f"{words(review.decide_due)}前")]
    if review.status == ReviewStatus.NOT_ACCEPTED:
        note = f"理由：{review.decision_reason}。{REVIEW.next_steps[ReviewStatus.NOT_ACCEPTED]}"
        return [*out, Step("review_not_accepted", "复核申请不予受理", review.decided_at, note)]
    assert review.conclude_due is not None
    out.append(
        Step("review_accepted", "复核已受理", review.decided_at, f"将在{words(review.conclude_due)}前作出复核结论。")
    )
    if review.concluded_at is None:
        return [*out, Step("review_concluded", "作出复核结论", None, f"{words(review.conclude_due)}前")]
    status = ReviewStatus(review.status)
    title = "复核结论：维持原认定" if status is ReviewStatus.UPHELD else "复核结论：责令重新认定"
    note = f"{review.conclusion_text}。{REVIEW.next_steps[status]}"
    return [*out, Step("review_concluded", title, review.concluded_at, note)]


# --- what each step says by SMS (kind "review"), to every party unless said otherwise ------------


def requested_text(case_no: str, position: str, unit: str, end: datetime, url: str) -> str:
    return (
        f"【快处】事故案件{case_no}的{position}方当事人已申请复核，办案单位将在{words(end)}前"
        f"把申请和案卷转交{unit}。查看进度：{url}"
    )


def joined_text(case_no: str, position: str, url: str) -> str:
    return f"【快处】事故案件{case_no}的{position}方当事人也申请了复核，与已有申请一并复核。查看进度：{url}"


def forwarded_text(case_no: str, unit: str, end: datetime, url: str) -> str:
    return f"【快处】事故案件{case_no}的复核申请已转交{unit}，将在{words(end)}前决定是否受理。查看进度：{url}"


def decided_text(case_no: str, unit: str, accepted: bool, end: datetime | None, url: str) -> str:
    if accepted and end is not None:
        return f"【快处】{unit}已受理事故案件{case_no}的复核，将在{words(end)}前作出复核结论。查看详情：{url}"
    return f"【快处】{unit}决定不受理事故案件{case_no}的复核申请，原认定书继续有效。理由请查看：{url}"


def concluded_text(case_no: str, status: ReviewStatus, url: str) -> str:
    if status is ReviewStatus.UPHELD:
        return f"【快处】事故案件{case_no}复核结论：维持原认定，原认定书有效。查看详情：{url}"
    return f"【快处】事故案件{case_no}复核结论：责令办案单位重新作出认定，新认定书出具后将短信通知您。查看详情：{url}"


def late_text(case_no: str, end: datetime) -> str:
    """To the late party alone: the written refusal."""
    return (
        f"【快处】您对事故案件{case_no}的复核申请已超过期限（应在{words(end)}前提出），依规定不予受理。"
        "如有疑问，请拨打122咨询。"
    )
