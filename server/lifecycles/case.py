"""A case's status, from the report to the parties holding their determination.

    new ──hand_over──▶ handed_over ──determine──▶ determined ──deliver──▶ delivered
     │                                            ▲   ▲    │                   │
     │ escalate                                   │   └────┘ determine         │
     ▼                                            │          (a correction)    │
    escalated                                     └──────────── determine ─────┘

``work`` (parties, facts, checks, statements) is the dispatcher's only while the case is new;
the road may be cleared while it is new and after hand-over, the officer deciding later from the
evidence. The values are the database's and the API's, unchanged.
"""

from __future__ import annotations

from enum import StrEnum

from server.lifecycles.machine import Lifecycle


class CaseStatus(StrEnum):
    NEW = "new"  # the dispatcher collects the evidence on the call
    ESCALATED = "escalated"  # to ordinary on-scene handling
    HANDED_OVER = "handed_over"  # eligible, in the officers' queue
    DETERMINED = "determined"  # a determination issued, not yet reached every party
    DELIVERED = "delivered"  # every party of the current version reached by SMS


class CaseAction(StrEnum):
    WORK = "work"  # a party, the facts, the checks or a statement added or changed
    CLEAR_ROAD = "clear_road"  # the unit told to clear the road
    ESCALATE = "escalate"
    HAND_OVER = "hand_over"
    DETERMINE = "determine"  # an officer issues a determination, or a corrected version of it
    DELIVER = "deliver"  # the last party of the current version reached


CASE = Lifecycle(
    name="case",
    states=CaseStatus,
    events=CaseAction,
    initial=CaseStatus.NEW,
    moves={
        (CaseStatus.NEW, CaseAction.WORK): CaseStatus.NEW,
        (CaseStatus.NEW, CaseAction.CLEAR_ROAD): CaseStatus.NEW,
        (CaseStatus.NEW, CaseAction.ESCALATE): CaseStatus.ESCALATED,
        (CaseStatus.NEW, CaseAction.HAND_OVER): CaseStatus.HANDED_OVER,
        (CaseStatus.HANDED_OVER, CaseAction.CLEAR_ROAD): CaseStatus.HANDED_OVER,
        (CaseStatus.HANDED_OVER, CaseAction.DETERMINE): CaseStatus.DETERMINED,
        (CaseStatus.DETERMINED, CaseAction.DETERMINE): CaseStatus.DETERMINED,
        (CaseStatus.DETERMINED, CaseAction.DELIVER): CaseStatus.DELIVERED,
        (CaseStatus.DELIVERED, CaseAction.DETERMINE): CaseStatus.DETERMINED,
    },
    labels={
        CaseStatus.NEW: "新报警 new",
        CaseStatus.ESCALATED: "转现场 escalated",
        CaseStatus.HANDED_OVER: "待认定 handed over",
        CaseStatus.DETERMINED: "已认定 determined",
        CaseStatus.DELIVERED: "已送达 delivered",
    },
    next_steps={
        CaseStatus.NEW: "调度员正在视频通话中了解情况、核对各方信息，请保持通话，按提示操作。",
        CaseStatus.ESCALATED: "本起事故改由交警到现场处理，请在安全地点等候民警到达；已提交的报警和证据都会保留。",
        CaseStatus.HANDED_OVER: "民警正在审核证据，认定书出具后会以短信通知您。",
        CaseStatus.DETERMINED: "认定书正在发送给各方当事人。",
        CaseStatus.DELIVERED: (
            "对认定有异议的，可在送达之日起三日内申请复核；也可以现在下载、打印认定书，向保险公司理赔。"
        ),
    },
)
