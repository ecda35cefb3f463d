"""视频报警 from a phone with no unit: a driver at the roadside opens the web app (/p, from a road
sign or a QR code), logs in with an SMS code to their number, and reports with the browser's position.

The position is routed by the same fences as a unit's report (``server.routing.route_point``) and
the case numbered by the same counter (``server.cases.allocate_numbers``), written by the case
writer's own thread so it never races the intake. A position too coarse to place (worse than
``[phone] accuracy_limit_m``) or outside the pilot districts opens no case: the answer says to
call 122. Every try is counted in the database (``phone_reports``) and throttled per number and per
address alike on every worker; a number holds at most one open (``new``) case: pressing again
brings the phone back to that case instead of opening a second.

The case has no unit (``device_id`` null) and names the number (``reporter_phone``). Its first
party, 甲, is a placeholder with only that number (name and ID empty, ``updated_by`` null) that the
dispatcher fills in on the call; the phone's session is bound to that party at once, so the phone
follows its case, joins its call and uploads photos like any party.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, text, update

from protocol.ids import new_report_id
from protocol.messages import utc_iso
from protocol.topics import CASE_EVENTS
from server.cases import CaseStore, allocate_numbers, case_summary, now_utc, opened_event
from server.casework.events import event_row, first_events, phone_actor
from server.config import PhoneSection
from server.db.models import Case, Party
from server.db.phones import PhoneReport
from server.db.portal import PortalSession
from server.errors import Invalid, Throttled
from server.lifecycles.case import CASE, CaseStatus
from server.live_feed import CaseHub
from server.outbound import Outbound
from server.routing import route_point

logger = logging.getLogger(__name__)

_CASES, _PARTIES = cast(Table, Case.__table__), cast(Table, Party.__table__)
_TRIES, _SESSIONS = cast(Table, PhoneReport.__table__), cast(Table, PortalSession.__table__)
CALL_122 = "如情况紧急或需要帮助，请直接拨打122（交通事故报警电话）。"
COARSE = (
    "手机定位不够准确（误差约{accuracy}米），无法确定事故所在辖区。请打开手机的GPS/精确定位，到开阔处再试；"
    "或直接拨打122报警。 (position too coarse to route)"
)
OUTSIDE = (
    "您所在的位置不在视频快处的服务范围（昆明市五华、盘龙、官渡、西山、呈贡五区）内，无法在线报警。"
    "请直接拨打122报警。 (outside the pilot districts)"
)


@dataclass(frozen=True)
class PhonePosition:
    """What the browser's geolocation said: WGS-84 and its accuracy radius (95 %), in metres."""

    lat: float
    lon: float
    accuracy_m: float


@dataclass(frozen=True)
class PhoneCase:
    case_id: int
    case_no: str
    unit: str
    unit_name: str
    party_id: int
    resumed: bool  # the number's open case, not a new one


@dataclass(frozen=True)
class _Outcome:
    kind: str  # case / resumed / coarse / outside / phone / address
    case: Case | None = None
    party_id: int | None = None


class PhoneReports:
    def __init__(self, cases: CaseStore, cfg: PhoneSection, hub: CaseHub, outbound: Outbound) -> None:
        self._cases = cases
        self._cfg = cfg
        self._hub = hub
        self._outbound = outbound

    async def report(self, phone: str, session_hash: str, address: str, where: PhonePosition) -> PhoneCase:
        """Open (or return to) the number's case and bind the session ``session_hash`` to its party;
        refusals say what to do in words (Throttled, Invalid)."""
        now = now_utc()
        outcome = await self._cases.write(lambda conn: self._write(conn, phone, session_hash, address, where, now))
        if outcome.kind == "phone":
            raise Throttled(f"这个手机号报警次数过多，请稍后再试。{CALL_122} (too many reports from this number)")
        if outcome.kind == "address":
            raise Throttled(f"这台设备报警次数过多，请稍后再试。{CALL_122} (too many reports from this address)")
        if outcome.kind == "coarse":
            raise Invalid(COARSE.format(accuracy=round(where.accuracy_m)))
        if outcome.kind == "outside":
            raise Invalid(OUTSIDE)
        case, party_id = outcome.case, outcome.party_id
        assert case is not None and party_id is not None
        if outcome.kind == "case":
            logger.info("phone report: case %s for unit %s", case.case_no, case.unit_adcode)
            event = json.dumps({"type": "case.new", "case": case_summary(case)}, ensure_ascii=False)
            self._hub.deliver(case.unit_adcode, event)
            self._outbound.send([(CASE_EVENTS, event.encode(), 1)])
        else:
            logger.info("phone report: the number's open case %s again", case.case_no)
        unit = case.unit
        return PhoneCase(case.id, case.case_no, unit.adcode, unit.name, party_id, outcome.kind == "resumed")

    # --- the case writer's thread -------------------------------------------------------------

    def _write(
        self, conn: Connection, phone: str, session_hash: str, address: str, where: PhonePosition, now: datetime
    ) -> _Outcome:
        if conn.dialect.name == "postgresql":
            # Workers sharing the database take one number's tries in turn (the open-case rule).
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:phone))"), {"phone": f"phone-report:{phone}"})
        hour = now - timedelta(hours=1)
        counted = select(func.count()).select_from(_TRIES).where(_TRIES.c.at > hour)
        if (conn.execute(counted.where(_TRIES.c.phone == phone)).scalar() or 0) >= self._cfg.reports_per_phone_hour:
            return _Outcome("phone")
        if (conn.execute(counted.where(_TRIES.c.address == address)).scalar() or 0) >= (
            self._cfg.reports_per_address_hour
        ):
            return _Outcome("address")
        open_case = (
            conn.execute(
                select(_CASES)
                .where(_CASES.c.reporter_phone == phone, _CASES.c.status == CaseStatus.NEW.value)
                .order_by(_CASES.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        party_id = None
        if open_case is not None:
            party_id = conn.execute(
                select(_PARTIES.c.id)
                .where(_PARTIES.c.case_id == open_case["id"], _PARTIES.c.phone == phone)
                .order_by(_PARTIES.c.position)
                .limit(1)
            ).scalar()
        # An open case whose parties no longer have this number (the dispatcher corrected it) is
        # not the number's any more: it may report again.
        if open_case is not None and party_id is not None:
            outcome = _Outcome("resumed", self._cases_case(dict(open_case)), party_id)
        else:
            outcome = self._place(conn, phone, where, now)
        conn.execute(
            insert(_TRIES).values(
                phone=phone,
                address=address,
                at=now,
                accuracy_m=where.accuracy_m,
                outcome=outcome.kind,
                case_id=outcome.case.id if outcome.case is not None else None,
            )
        )
        if outcome.party_id is not None:
            bound = update(_SESSIONS).where(_SESSIONS.c.token_hash == session_hash)
            conn.execute(bound.values(party_id=outcome.party_id))
        return outcome

    def _place(self, conn: Connection, phone: str, where: PhonePosition, now: datetime) -> _Outcome:
        if where.accuracy_m > self._cfg.accuracy_limit_m:
            return _Outcome("coarse")
        fences = self._cases.fences
        routing = route_point(where.lat, where.lon, "phone", [], fences)
        if routing.unit_adcode == fences.city.adcode:
            return _Outcome("outside")
        report_id = new_report_id()
        (case_no,) = allocate_numbers(conn, [(report_id, now, routing.unit_adcode)]).values()
        report: dict[str, Any] = {
            "source": "phone",
            "device_kind": "phone",
            "phone": phone,
            "report_id": report_id,
            "triggered_at": utc_iso(now),
            "position": {"lat": where.lat, "lon": where.lon, "accuracy_m": where.accuracy_m, "trusted": True},
        }
        row = {
            "case_no": case_no,
            "report_id": report_id,
            "device_id": None,
            "reporter_phone": phone,
            "unit_adcode": routing.unit_adcode,
            "status": CASE.initial,
            "flag": routing.flag,
            "trigger": "phone",
            "triggered_at": now,
            "received_at": now,
            "lat": routing.lat,
            "lon": routing.lon,
            "lat_gcj02": routing.lat_gcj02,
            "lon_gcj02": routing.lon_gcj02,
            "position_source": "phone",
            "report": report,
        }
        case_id = conn.execute(insert(_CASES).values(**row).returning(_CASES.c.id)).scalar_one()
        case = self._cases_case({"id": case_id, **row})
        party_id = self._placeholder(conn, case, phone, now, opened_event(case, now))
        return _Outcome("case", case, party_id)

    def _placeholder(self, conn: Connection, case: Case, phone: str, now: datetime, after: dict[str, Any]) -> int:
        """The reporting phone as 甲 with only its number, and its event after ``after``."""
        values = {"case_id": case.id, "position": 1, "role": "driver", "name": "", "id_number": "", "phone": phone}
        party_id = int(
            conn.execute(
                insert(_PARTIES).values(**values, updated_at=now, updated_by=None).returning(_PARTIES.c.id)
            ).scalar_one()
        )
        detail = {"party_id": party_id, "position": 1, "phone": phone, "placeholder": True}
        event = event_row(case.id, after["seq"] + 1, after["hash"], now, phone_actor(phone), "party.added", detail)
        first_events(conn, [after, event])
        return party_id

    def _cases_case(self, row: dict[str, Any]) -> Case:
        return Case(unit=self._cases.unit(row["unit_adcode"]), **row)
