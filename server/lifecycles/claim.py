"""A one-key claim (一键理赔) as the party's insurer moves it, through the insurers' API.

    requested ──accept──▶ accepted ──assign_adjuster──▶ adjuster_assigned ──assess──▶ assessed ──pay──▶ paid
                             │                            ▲   │ (another adjuster)      ▲   │ (revised)    │
                             │                            └───┘                         └───┘              │
                             └────────── assess (remotely, from the photos) ──────────▶ assessed           │
    requested, accepted, adjuster_assigned, assessed ──close (with a reason)──▶ closed ◀──close───────────┘

The insurer says the status it reached (``POST /api/insurers/v1/claims/{id}/status``); each status
is reached by one event (``EVENT``), so the API's body and the table cannot disagree. Another
adjuster may take over, and an assessment may be revised before payment; a claim may be closed
from any open status (withdrawn, not covered), and is closed after payment. ``closed`` is final.
The values are the database's and the API's.
"""

from __future__ import annotations

from enum import StrEnum

from server.lifecycles.machine import Lifecycle


class ClaimStatus(StrEnum):
    REQUESTED = "requested"  # the party pressed 一键理赔; the insurer has the claim.requested event
    ACCEPTED = "accepted"  # the insurer opened a claim file (报案)
    ADJUSTER_ASSIGNED = "adjuster_assigned"  # a named adjuster (查勘员) will call the party
    ASSESSED = "assessed"  # the loss assessed (定损), an amount in yuan
    PAID = "paid"  # the amount paid out (赔付)
    CLOSED = "closed"  # 结案, with a reason


class ClaimAction(StrEnum):
    ACCEPT = "accept"
    ASSIGN_ADJUSTER = "assign_adjuster"
    ASSESS = "assess"
    PAY = "pay"
    CLOSE = "close"


OPEN = (ClaimStatus.REQUESTED, ClaimStatus.ACCEPTED, ClaimStatus.ADJUSTER_ASSIGNED, ClaimStatus.ASSESSED)

CLAIM = Lifecycle(
    name="claim",
    states=ClaimStatus,
    events=ClaimAction,
    initial=ClaimStatus.REQUESTED,
    moves={
        (ClaimStatus.REQUESTED, ClaimAction.ACCEPT): ClaimStatus.ACCEPTED,
        (ClaimStatus.ACCEPTED, ClaimAction.ASSIGN_ADJUSTER): ClaimStatus.ADJUSTER_ASSIGNED,
        (ClaimStatus.ACCEPTED, ClaimAction.ASSESS): ClaimStatus.ASSESSED,
        (ClaimStatus.ADJUSTER_ASSIGNED, ClaimAction.ASSIGN_ADJUSTER): ClaimStatus.ADJUSTER_ASSIGNED,
        (ClaimStatus.ADJUSTER_ASSIGNED, ClaimAction.ASSESS): ClaimStatus.ASSESSED,
        (ClaimStatus.ASSESSED, ClaimAction.ASSESS): ClaimStatus.ASSESSED,
        (ClaimStatus.ASSESSED, ClaimAction.PAY): ClaimStatus.PAID,
        (ClaimStatus.PAID, ClaimAction.CLOSE): ClaimStatus.CLOSED,
    }
    | {(status, ClaimAction.CLOSE): ClaimStatus.CLOSED for status in OPEN},
    labels={
        ClaimStatus.REQUESTED: "已提交理赔申请 requested",
        ClaimStatus.ACCEPTED: "保险公司已受理 accepted",
        ClaimStatus.ADJUSTER_ASSIGNED: "已安排查勘员 adjuster assigned",
        ClaimStatus.ASSESSED: "已定损 assessed",
        ClaimStatus.PAID: "已赔付 paid",
        ClaimStatus.CLOSED: "已结案 closed",
    },
    next_steps={
        ClaimStatus.REQUESTED: "保险公司收到申请后将受理并安排查勘员与您联系，请保持电话畅通。",
        ClaimStatus.ACCEPTED: "保险公司将安排查勘员与您联系，约定查勘、定损的时间和地点。",
        ClaimStatus.ADJUSTER_ASSIGNED: "查勘员将按您方便的时间联系您，请保持电话畅通。",
        ClaimStatus.ASSESSED: "请核对定损金额，有异议可向查勘员提出；确认后保险公司将赔付。",
        ClaimStatus.PAID: "赔款已支付，请留意到账情况；保险公司随后结案。",
        ClaimStatus.CLOSED: "理赔已结案，如有疑问请拨打保险公司客服电话。",
    },
)

# The status an insurer reports, and the one event that reaches it.
EVENT = {
    ClaimStatus.ACCEPTED: ClaimAction.ACCEPT,
    ClaimStatus.ADJUSTER_ASSIGNED: ClaimAction.ASSIGN_ADJUSTER,
    ClaimStatus.ASSESSED: ClaimAction.ASSESS,
    ClaimStatus.PAID: ClaimAction.PAY,
    ClaimStatus.CLOSED: ClaimAction.CLOSE,
}
