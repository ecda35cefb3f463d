"""Plates read on the unit: from a still taken at each press, and from a full-resolution still when
the dispatcher asks (``plates.request``).

Why the reads follow the report instead of travelling in it: the report is the message that must
reach the dispatcher within a fraction of a second, and it goes from the outbox that makes it
survive a power cut. A still costs up to a second on a Pi (the sensor switches mode and back) and
a second or two in the simulator, the read tens of milliseconds more; held for them, the report
would be late by that much, and fifty units pressing at once in the benchmark would be later
still. So the report goes at once, unchanged, and the reads follow on the unit's own ``plates``
topic, tied to the case by the report id. The still is taken once the server has answered the
report (its case is in the dispatcher's queue), not as soon as the report is handed to the link:
the still and the read take the unit's CPU (and the simulator's, fifty times over on one machine in
the benchmark) while the report is still on its way through TLS and the broker, and the other
reports of a burst with it (docs/benchmarks.md). A report with no answer within
``answer_wait_s`` (the link is down) has its plates read then all the same, and kept until they
can be sent. A failed camera, a missing model or a read that hangs (bounded by ``read_timeout_s``)
costs the report nothing; the reading says why it has no plates instead.

The models are checked in the background when the unit starts, by loading them in a short-lived
process of their own (the heartbeat leaves ``plate_reader`` out until then): the TFLite runtime
and two interpreters cost the unit some 25 MB for as long as it runs (bench/report_latency.py's
idle unit: 113 MB without, 137-142 MB with), which an idle unit, that is nearly every unit nearly
all the time, need not carry. Models that are missing or corrupt leave plate reading off: the
heartbeat's health says ``plate_reader: failed`` with the reason, and every reading says so. The
reader itself is loaded at the first reading, and again at a later one if that failed (a
technician may have put the models right meanwhile). Reads run on a worker thread
(``asyncio.to_thread``); the reader serialises its interpreters itself.

A reading is on the card (``data_dir/plates``) from the moment it is made until the broker has
it, as the report is in the outbox: a unit that restarts, or loses power, before then sends it
when it starts again. It goes with the same reading id, and the server stores a repeat once. A
still being read when the unit stops is not kept: the dispatcher's "read plates" reads again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import ValidationError

from device.config import PlatesSection
from device.evidence.files import write_atomically
from device.evidence.uploads import Publish
from device.hal.camera import Camera, Frame
from device.ocr.errors import OcrError
from device.ocr.reader import MAX_IMAGE_PIXELS, MODELS_DIR, PlateRead, PlateReader
from protocol.ids import new_report_id
from protocol.messages import (
    MAX_PLATE_READS,
    PLATE_CROP_MAX_BYTES,
    Command,
    Health,
    PartState,
    PlateReadOut,
    PlateReads,
    encode,
)
from protocol.topics import Channel

logger = logging.getLogger(__name__)

CROP_QUALITIES = (90, 75, 50)  # a crop over PLATE_CROP_MAX_BYTES is encoded again, smaller
RESEND_S = 1.0
CHECK_TIMEOUT_S = 60.0  # a Pi imports the runtime and loads both models in a few seconds


class NoReads(Exception):
    """No plates can come from this reading; the message says why, for the dispatcher."""


def crop_jpeg(read: PlateRead) -> bytes | None:
    """The straightened plate as a JPEG within the protocol's bound (None if it cannot be made to fit)."""
    image = Image.fromarray(read.crop)
    for quality in CROP_QUALITIES:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        if out.tell() <= PLATE_CROP_MAX_BYTES:
            return out.getvalue()
    return None


def reads_in(reader: PlateReader, frame: Frame) -> list[PlateReadOut]:
    """The plates in a camera frame, best first, as the protocol carries them. Blocking."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype.name != "uint8":
        raise NoReads(f"the camera gave an unreadable still ({frame.dtype.name}, shape {frame.shape})")
    height, width = frame.shape[:2]
    if width * height > MAX_IMAGE_PIXELS:
        raise NoReads(f"a still of {width} x {height} pixels is too large to read plates in")
    out = []
    for read in reader.read_frame(Image.fromarray(frame)):
        jpeg = crop_jpeg(read)
        x1, y1, x2, y2 = read.box  # corners may lie a little outside a plate at the frame's edge
        box = (max(0, x1), max(0, y1), min(width, x2), min(height, y2))
        try:
            out.append(
                PlateReadOut(
                    text=read.text,
                    confidence=min(1.0, max(0.0, read.confidence)),
                    kind=read.kind,
                    box=box,
                    crop=base64.b64encode(jpeg or b"").decode(),
                )
            )
        except ValidationError as exc:  # a crop that would not fit, a box squeezed to nothing
            logger.warning("plates: a read left out: %s", exc.errors()[0]["msg"])
            continue
        if len(out) == MAX_PLATE_READS:
            break
    return out


async def check_models(models_dir: Path) -> tuple[PartState, str]:
    """Whether the reader loads from ``models_dir``, tried in a process of its own (see the module
    docstring); FAILED with the reason if it does not."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        str(models_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            out, _ = await proc.communicate()
    except TimeoutError:
        return PartState.FAILED, f"the models did not load within {CHECK_TIMEOUT_S:g} s"
    finally:
        if proc.returncode is None:  # timed out, or the unit is stopping
            proc.kill()
            await proc.wait()
    if proc.returncode == 0:
        return PartState.OK, ""
    return PartState.FAILED, out.decode(errors="replace").strip() or f"the model check exited with {proc.returncode}"


class PlateAgent:
    def __init__(
        self, cfg: PlatesSection, spool: Path, camera: Camera, publish: Publish, link_up: asyncio.Event
    ) -> None:
        self._cfg = cfg
        self._spool = spool  # readings made and not yet at the broker, one file each
        self._camera = camera
        self._publish = publish
        self._link_up = link_up
        self._models_dir = cfg.models_dir or MODELS_DIR
        self.reader: PlateReader | None = None
        self._loading = asyncio.Lock()
        # Unknown (left out of the health) until the models are checked; absent when switched off.
        self._state: PartState | None = None if cfg.enabled else PartState.ABSENT
        self._note = ""
        self._requests: set[str] = set()  # request ids answered since start: a repeated request is one
        self._answers: dict[str, asyncio.Event] = {}  # reports whose still waits for the server's answer
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Send the readings an earlier run left, and check the models in the background: the unit
        is ready for a press meanwhile."""
        self._spool.mkdir(parents=True, exist_ok=True)
        for left in sorted(self._spool.glob("*.json")):
            logger.info("plates %s: left from before the unit stopped, sending", left.stem)
            self._spawn(self._deliver(left, left.read_bytes()))
        if self._cfg.enabled:
            self._spawn(self.check())

    async def check(self) -> None:
        """Check the models; models that do not load leave plate reading off, and say why."""
        state, note = await check_models(self._models_dir)
        self._state, self._note = state, self._short(note)
        if self._state is PartState.FAILED:
            logger.error("plate reader off: %s", note)
        else:
            logger.info("plate reader: the models in %s load", self._models_dir)

    async def _reader(self) -> PlateReader:
        async with self._loading:
            if self.reader is None:
                try:
                    self.reader = await asyncio.to_thread(PlateReader, self._models_dir)
                except OcrError as exc:
                    logger.error("plate reader off: %s", exc)
                    self._state, self._note = PartState.FAILED, self._short(str(exc))
                    raise NoReads(f"plate reader off: {self._note}") from exc
                self._state, self._note = PartState.OK, ""
            return self.reader

    def _short(self, reason: str) -> str:
        """``reason`` without the models folder (the configured one, logged in full): the file name
        and what is wrong with it fit in the 120 characters a heartbeat note or a reading has."""
        return reason.replace(f"{self._models_dir}/", "")

    async def stop(self) -> None:
        """Cancel what is under way and wait for it to end: the model check kills and reaps its
        process as it ends, which a cancelled task only does once the loop runs it again."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def in_health(self, health: Health) -> Health:
        """``health`` with the plate reader's state, and its reason among the notes if it is off."""
        notes = list(health.notes)
        if self._state is PartState.FAILED:
            notes = [*notes[:7], f"plate_reader: {self._note}"[:120]]
        return health.model_copy(update={"plate_reader": self._state, "notes": notes})

    # --- readings -------------------------------------------------------------------------------

    def after_report(self, report_id: str) -> None:
        """A report has just been handed to the link: read the plates at the scene once the server
        has answered it, and send them."""
        if self._cfg.enabled and self._cfg.on_report:
            answered = self._answers[report_id] = asyncio.Event()
            self._spawn(self._after_answer(report_id, answered))

    def answered(self, report_id: str) -> None:
        """The server has answered ``report_id``: the still for its plates may be taken now."""
        if (answered := self._answers.get(report_id)) is not None:
            answered.set()

    async def settled(self) -> None:
        """Return once the readings under way have been made and handed to the broker."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _after_answer(self, report_id: str, answered: asyncio.Event) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._cfg.answer_wait_s):
                    await answered.wait()
        finally:
            del self._answers[report_id]
        await self._answer(new_report_id(), "report", report_id)

    def on_command(self, command: Command) -> None:
        """``plates.request``: read the plates in a full-resolution still now, for that case."""
        request_id, report_id = command.upload_id or "", command.report_id or ""
        if request_id in self._requests:
            logger.info("plates %s: repeated request ignored", request_id)
            return
        self._requests.add(request_id)
        logger.info("plates %s: asked for, case %s", request_id, command.case_no)
        self._spawn(self._answer(request_id, "request", report_id))

    async def reading(self, reading_id: str, source: Literal["report", "request"], report_id: str) -> PlateReads:
        """One reading: a still, its plates, or why there are none. Never raises for a bad still."""
        try:
            async with asyncio.timeout(self._cfg.read_timeout_s):
                captured_at, plates = await self._read()
        except NoReads as exc:
            return PlateReads(reading_id=reading_id, source=source, report_id=report_id, error=str(exc)[:120])
        except TimeoutError:
            reason = f"no still read within {self._cfg.read_timeout_s:g} s"
            return PlateReads(reading_id=reading_id, source=source, report_id=report_id, error=reason)
        return PlateReads(
            reading_id=reading_id, source=source, report_id=report_id, captured_at=captured_at, plates=plates
        )

    async def _read(self) -> tuple[datetime, list[PlateReadOut]]:
        if not self._cfg.enabled:
            raise NoReads("plate reading is switched off on this unit")
        reader = await self._reader()
        try:
            frame = await self._camera.still()
        except Exception as exc:  # whatever the camera driver raised, the dispatcher hears why
            logger.warning("plates: no still: %s", exc)
            raise NoReads(f"no still from the camera: {exc}") from exc
        captured_at = datetime.now(UTC)
        try:
            return captured_at, await asyncio.to_thread(reads_in, reader, frame)
        except NoReads:
            raise
        except OcrError as exc:
            raise NoReads(f"plate reader: {exc}") from exc
        except Exception as exc:  # a runtime that fails mid-read must not take the unit down with it
            logger.exception("plates: the read failed")
            raise NoReads(f"the read failed: {type(exc).__name__}: {exc}") from exc

    async def _answer(self, reading_id: str, source: Literal["report", "request"], report_id: str) -> None:
        message = await self.reading(reading_id, source, report_id)
        if message.error is not None:
            logger.warning("plates %s (%s): none read: %s", reading_id, source, message.error)
        else:
            logger.info("plates %s (%s): %d read", reading_id, source, len(message.plates))
        payload = encode(message)
        kept = self._spool / f"{reading_id}.json"  # ids are ULIDs: a safe file name
        await asyncio.to_thread(write_atomically, kept, payload)
        await self._deliver(kept, payload)

    async def _deliver(self, kept: Path, payload: bytes) -> None:
        """Publish ``payload`` at QoS 1 until the broker has it (a link that is down is waited for),
        then forget it."""
        while True:
            await self._link_up.wait()
            if await self._publish(Channel.PLATES, payload):
                break
            await asyncio.sleep(RESEND_S)
        await asyncio.to_thread(kept.unlink, missing_ok=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("plate reading failed", exc_info=task.exception())


def _check(models_dir: Path) -> int:
    """``python -m device.evidence.plates MODELS_DIR``: 0 if the reader loads, else 1 and why."""
    try:
        PlateReader(models_dir)
    except OcrError as exc:
        print(exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_check(Path(sys.argv[1])))
