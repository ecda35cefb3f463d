"""A review (复核) of a determination, as 《道路交通事故处理程序规定》 has it.

    requested ──forward──▶ forwarded ──accept──▶ accepted ──uphold──▶ upheld
        │  ▲                    │                    │
        └──┘ join               └──decline──▶        └──redetermine──▶ redetermine
                                     not_accepted

A party asks through the issuing unit (``requested``); other parties may join the same review
until the unit forwards it with the case file to the unit above (``forwarded``); that unit accepts
it or not (``accepted`` / ``not_accepted``) and concludes an accepted one: the determination is
upheld, or the issuing unit is ordered to make a new one (``redetermine``). One review per
accident, so no state leads back to ``requested``. The values are the database's and the API's.
"""

from __future__ import annotations

from enum import StrEnum

from server.lifecycles.machine import Lifecycle


class ReviewStatus(StrEnum):
    REQUESTED = "requested"  # with the issuing unit, to be forwarded within 2 days
    FORWARDED = "forwarded"  # with the unit above, to be accepted or not within 5 days
    ACCEPTED = "accepted"  # to be concluded within 30 days
    NOT_ACCEPTED = "not_accepted"
    UPHELD = "upheld"
    REDETERMINE = "redetermine"  # the issuing unit makes a new determination (a new version)


class ReviewAction(StrEnum):
    JOIN = "join"  # another party of the case asks too, before it is forwarded
    FORWARD = "forward"
    ACCEPT = "accept"
    DECLINE = "decline"
    UPHOLD = "uphold"
    REDETERMINE = "redetermine"


REVIEW = Lifecycle(
    name="review",
    states=ReviewStatus,
    events=ReviewAction,
    initial=ReviewStatus.REQUESTED,
    moves={
        (ReviewStatus.REQUESTED, ReviewAction.JOIN): ReviewStatus.REQUESTED,
        (ReviewStatus.REQUESTED, ReviewAction.FORWARD): ReviewStatus.FORWARDED,
        (ReviewStatus.FORWARDED, ReviewAction.ACCEPT): ReviewStatus.ACCEPTED,
        (ReviewStatus.FORWARDED, ReviewAction.DECLINE): ReviewStatus.NOT_ACCEPTED,
        (ReviewStatus.ACCEPTED, ReviewAction.UPHOLD): ReviewStatus.UPHELD,
        (ReviewStatus.ACCEPTED, ReviewAction.REDETERMINE): ReviewStatus.REDETERMINE,
    },
    labels={
        ReviewStatus.REQUESTED: "已申请，待转交 requested",
        ReviewStatus.FORWARDED: "已转交上级 forwarded",
        ReviewStatus.ACCEPTED: "已受理 accepted",
        ReviewStatus.NOT_ACCEPTED: "不予受理 not accepted",
        ReviewStatus.UPHELD: "维持原认定 upheld",
        ReviewStatus.REDETERMINE: "责令重新认定 new determination ordered",
    },
    next_steps={
        ReviewStatus.REQUESTED: "办案单位将在两日内把您的申请和案卷转交上一级公安机关交通管理部门。",
        ReviewStatus.FORWARDED: "上一级公安机关交通管理部门将在五日内决定是否受理，并通知各方当事人。",
        ReviewStatus.ACCEPTED: "复核已受理，将在三十日内作出复核结论，并通知各方当事人。",
        ReviewStatus.NOT_ACCEPTED: "复核申请不予受理，原认定书继续有效，可据此向保险公司理赔。",
        ReviewStatus.UPHELD: "复核结论为维持原认定，原认定书有效，可据此向保险公司理赔。",
        ReviewStatus.REDETERMINE: "办案单位将重新作出事故认定，新认定书出具后会以短信通知您。",
    },
)

# Whose move each open status waits for, and the deadline column that goes with it.
OWNER = {
    ReviewStatus.REQUESTED: ("officer", "forward_due"),
    ReviewStatus.FORWARDED: ("reviewer", "decide_due"),
    ReviewStatus.ACCEPTED: ("reviewer", "conclude_due"),
}
