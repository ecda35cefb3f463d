"""Plates read on the devices: kept with their crops, asked for again by a dispatcher, confirmed or
corrected.

A device sends a reading after each report and when a dispatcher asks (``plates.request`` on its
cmd topic, the same command path as stills). Readings arrive on the shared subscription of the
report intake, so any worker may store one; they queue here and are written one at a time. A
report's reading may overtake its report (it travels on another topic), so readings are tied to
their case by the report id and the device, not by a case row: the case finds them when it exists,
and a reading that names another device's report is never shown with that case.

A dispatcher's request is written down first (who asked, when), and the device's answer fills it
in; a worker that did not receive the answer itself sees it in the database, so the console's
wait works whichever worker the broker handed the answer to. What the dispatcher confirms or
corrects is kept beside the read and its crop: that is the reader's training data of tomorrow.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol import ProtocolError
from protocol.ids import new_report_id
from protocol.messages import Command, PlateReads, decode, utc_iso
from server.cases import case_for_work, case_summary, now_utc
from server.casework.events import Actor, append
from server.casework.plates import normalise_plate, plate_problem
from server.db.models import Case, PlateRead, PlateReading
from server.errors import Invalid, NotFound, TimedOut, Unavailable
from server.in_order import InOrder
from server.outbound import Outward

logger = logging.getLogger(__name__)

ANSWER_POLL_S = 0.2  # how often a waiting console request looks for an answer another worker stored
# The training set's labels, in the layout of the real crops models/realdata.py reads (file, plate).
LABEL_FIELDS = ("file", "plate", "read", "kind", "confidence", "source", "device", "captured_at", "reviewed_at")


def read_json(read: PlateRead) -> dict[str, Any]:
    return {
        "id": read.id,
        "position": read.position,
        "text": read.text,
        "confidence": round(read.confidence, 4),
        "kind": read.kind,
        "box": read.box,
        "crop": "data:image/jpeg;base64," + base64.b64encode(read.crop).decode(),
        "confirmed_text": read.confirmed_text,
        "corrected": read.confirmed_text is not None and read.confirmed_text != read.text,
        "reviewed_at": utc_iso(read.reviewed_at) if read.reviewed_at else None,
    }


def reading_json(reading: PlateReading, reads: list[PlateRead]) -> dict[str, Any]:
    return {
        "reading_id": reading.reading_id,
        "source": reading.source,
        "requested_at": utc_iso(reading.requested_at) if reading.requested_at else None,
        "captured_at": utc_iso(reading.captured_at) if reading.captured_at else None,
        "received_at": utc_iso(reading.received_at) if reading.received_at else None,
        "error": reading.error,
        "plates": [read_json(r) for r in reads],
    }


class Plates:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbound: Outward) -> None:
        self._sessions = sessions
        self._outbound = outbound  # requests to a device's cmd topic; new reads to the consoles
        self._arrived = InOrder(self.receive, "plate reading")
        self._answered: dict[str, asyncio.Event] = {}  # request ids a console on this worker waits for

    # --- the devices' side ------------------------------------------------------------------------

    def on_message(self, device_id: str, payload: bytes) -> None:
        """A message on a device's plates topic; stored in arrival order by ``run``."""
        self._arrived.put(device_id, payload)

    async def run(self) -> None:
        await self._arrived.run()

    async def receive(self, device_id: str, payload: bytes) -> bool:
        """Store one reading; False (and a log line saying why) when it is refused."""
        try:
            message = decode(PlateReads, payload)
        except ProtocolError as exc:
            logger.warning("device %s: plate reading refused: %s (%s)", device_id, exc.reason, exc.detail)
            return False
        async with self._sessions.begin() as session:
            refusal = await self._store(session, device_id, message)
            case = await session.scalar(select(Case).where(Case.report_id == message.report_id))
            summary = case_summary(case) if refusal is None and case is not None else None
        if refusal is not None:
            logger.warning("device %s: plate reading %s refused: %s", device_id, message.reading_id, refusal)
            return False
        logger.info(
            "device %s: plate reading %s (%s) stored: %s",
            device_id,
            message.reading_id,
            message.source,
            message.error or f"{len(message.plates)} plate(s)",
        )
        waiting = self._answered.get(message.reading_id)
        if waiting is not None:
            waiting.set()
        if summary is not None:
            await self._outbound.case_changed(summary)
        return True

    async def _store(self, session: AsyncSession, device_id: str, message: PlateReads) -> str | None:
        case = await session.scalar(select(Case).where(Case.report_id == message.report_id))
        if case is not None and case.device_id != device_id:
            return "the report is another device's"
        reading = await session.scalar(select(PlateReading).where(PlateReading.reading_id == message.reading_id))
        if message.source == "request":
            if reading is None or reading.source != "request" or reading.device_id != device_id:
                return "no such request of this device"
            if reading.report_id != message.report_id:
                return "not the report this request was for"
            if reading.received_at is not None:
                return "answered already"
        elif reading is not None:
            return None if reading.device_id == device_id else "the reading id is taken"  # a repeat is stored once
        else:
            reading = PlateReading(
                reading_id=message.reading_id, device_id=device_id, report_id=message.report_id, source="report"
            )
            session.add(reading)
        reading.captured_at = message.captured_at
        reading.received_at = now_utc()
        reading.error = message.error
        await session.flush()
        for position, plate in enumerate(message.plates):
            session.add(
                PlateRead(
                    reading_id=reading.id,
                    position=position,
                    text=plate.text,
                    confidence=plate.confidence,
                    kind=plate.kind.value,
                    box=list(plate.box),
                    crop=plate.crop_jpeg(),
                )
            )
        return None

    # --- the console's side -----------------------------------------------------------------------

    async def readings(self, case: Case) -> list[dict[str, Any]]:
        """The case's readings that have arrived, newest first, each with its reads best first."""
        async with self._sessions() as session:
            readings = (
                await session.scalars(
                    select(PlateReading)
                    .where(
                        PlateReading.report_id == case.report_id,
                        PlateReading.device_id == case.device_id,
                        PlateReading.received_at.is_not(None),
                    )
                    .order_by(PlateReading.received_at.desc(), PlateReading.id.desc())
                )
            ).all()
            return [reading_json(r, await self._reads(session, r.id)) for r in readings]

    async def request(self, case: Case, operator_id: int, wait_s: float) -> dict[str, Any]:
        """Ask the case's device to read the plates in a full-resolution still now, and wait up to
        ``wait_s`` for its answer; TimedOut if none came (a later answer is still stored)."""
        reading_id = new_report_id()
        async with self._sessions.begin() as session:
            session.add(
                PlateReading(
                    reading_id=reading_id,
                    device_id=case.device_id,
                    report_id=case.report_id,
                    source="request",
                    requested_by=operator_id,
                    requested_at=now_utc(),
                )
            )
        command = Command(type="plates.request", upload_id=reading_id, case_no=case.case_no, report_id=case.report_id)
        answered = self._answered[reading_id] = asyncio.Event()
        try:
            if not await self._outbound.command(case.device_id, command):
                raise Unavailable("消息服务器未接收请求，请重试 (the broker did not take the request; try again)")
            logger.info(
                "case %s: operator %d asked device %s to read plates", case.case_no, operator_id, case.device_id
            )
            deadline = time.monotonic() + wait_s
            while True:
                async with self._sessions() as session:
                    reading = await session.scalar(select(PlateReading).where(PlateReading.reading_id == reading_id))
                    if reading is not None and reading.received_at is not None:
                        return reading_json(reading, await self._reads(session, reading.id))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimedOut(
                        f"设备{wait_s:g}秒内未应答，结果稍后会显示 (the unit did not answer within {wait_s:g} s)"
                    )
                try:
                    async with asyncio.timeout(min(ANSWER_POLL_S, left)):
                        await answered.wait()
                except TimeoutError:
                    pass
        finally:
            del self._answered[reading_id]

    async def review(self, case: Case, read_id: int, text: str, actor: Actor) -> dict[str, Any]:
        """The dispatcher confirms a read (the same text) or corrects it; both are kept."""
        plate = normalise_plate(text)
        problem = plate_problem(plate)
        if problem:
            raise Invalid(f"请对照截图核对：{problem[1]}", code=problem[0], field="text")
        async with self._sessions.begin() as session:
            await case_for_work(session, case.id)  # a handed-over case's plates are what was decided on
            read = await self.read_of(session, case, read_id)
            mark(read, plate, actor.user_id)
            await append(
                session,
                case.id,
                actor,
                "plate.reviewed",
                {"read_id": read.id, "read": read.text, "confirmed": plate},
                read.reviewed_at or now_utc(),
            )
            return read_json(read)

    @staticmethod
    async def read_of(session: AsyncSession, case: Case, read_id: int) -> PlateRead:
        """A read of this case, in the caller's transaction; NotFound for any other."""
        found = await session.execute(
            select(PlateRead, PlateReading)
            .join(PlateReading, PlateRead.reading_id == PlateReading.id)
            .where(PlateRead.id == read_id)
        )
        row = found.first()
        if row is None or (row[1].report_id, row[1].device_id) != (case.report_id, case.device_id):
            raise NotFound("本案没有这条车牌识别记录，请刷新页面 (no such plate read in this case)")
        return row[0]

    @staticmethod
    async def _reads(session: AsyncSession, reading_id: int) -> list[PlateRead]:
        rows = await session.scalars(
            select(PlateRead).where(PlateRead.reading_id == reading_id).order_by(PlateRead.position)
        )
        return list(rows.all())


def mark(read: PlateRead, confirmed: str, user_id: int | None) -> None:
    """Keep what the dispatcher confirmed ``read`` as (its own text, or a correction)."""
    read.confirmed_text = confirmed
    read.reviewed_by = user_id
    read.reviewed_at = now_utc()


async def reviewed(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[PlateRead, PlateReading]]:
    """Every read a dispatcher confirmed or corrected, oldest first, with its reading."""
    async with sessions() as session:
        found = await session.execute(
            select(PlateRead, PlateReading)
            .join(PlateReading, PlateRead.reading_id == PlateReading.id)
            .where(PlateRead.confirmed_text.is_not(None))
            .order_by(PlateRead.id)
        )
        return [(read, reading) for read, reading in found.tuples()]


def write_training_set(rows: list[tuple[PlateRead, PlateReading]], out_dir: Path) -> None:
    """The reviewed reads as a crop folder: ``crops/ID.jpg`` each, and ``labels.csv`` whose
    ``plate`` is what the dispatcher confirmed and ``read`` what the unit read. Blocking."""
    (out_dir / "crops").mkdir(parents=True, exist_ok=True)
    with (out_dir / "labels.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(LABEL_FIELDS)
        for read, reading in rows:
            name = f"crops/{read.id}.jpg"
            (out_dir / name).write_bytes(read.crop)
            captured = reading.captured_at or reading.received_at
            writer.writerow(
                (
                    name,
                    read.confirmed_text,
                    read.text,
                    read.kind,
                    f"{read.confidence:.4f}",
                    reading.source,
                    reading.device_id,
                    utc_iso(captured) if captured else "",
                    utc_iso(read.reviewed_at) if read.reviewed_at else "",
                )
            )
