"""The device application: wires the hardware, the reporting state machine, the outbox and the link.

Everything here is the same on a Raspberry Pi, in the demo and in the tests; only the backends
inside ``Hardware`` differ, as configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from device.call.agent import CallAgent
from device.config import DeviceConfig
from device.evidence.agent import EvidenceAgent
from device.evidence.plates import PlateAgent
from device.hal.indicators import Beep, Signal
from device.hardware import Hardware
from device.link import Link
from device.outbox import Outbox
from device.reporting import (
    Accepted,
    AckOverdue,
    AppState,
    CaseClosed,
    CaseHoldExpired,
    Effect,
    Event,
    LinkChanged,
    NewReport,
    Prompt,
    Refused,
    ReportingMachine,
    Say,
    SayCaseNo,
    SelfTestAnswered,
    Show,
    Sound,
    StartCaseHold,
    Triggered,
)
from device.reports import build_heartbeat, build_report
from protocol.ids import new_report_id
from protocol.messages import Ack, CheckStatus, Command, DeviceKind, Health, Trigger, encode
from protocol.topics import Channel
from runtime.version import FIRMWARE

if TYPE_CHECKING:
    from device.update.agent import UpdateAgent

logger = logging.getLogger(__name__)


class DeviceApp:
    def __init__(self, cfg: DeviceConfig, hardware: Hardware) -> None:
        self.cfg = cfg
        self.hw = hardware
        self.machine = ReportingMachine()
        self.outbox = Outbox(cfg.device.data_dir / "outbox.sqlite")
        self.link = Link(cfg.broker, cfg.device.id, FIRMWARE, self._on_ack, self._on_link, self._on_command)
        self.call = CallAgent(cfg, hardware, self.link.publish, self.link.connected)
        self.evidence = EvidenceAgent(cfg, hardware.camera, self.link.publish, self.link.connected)
        self.plates = PlateAgent(
            cfg.plates, cfg.device.data_dir / "plates", hardware.camera, self.link.publish, self.link.connected
        )
        self._lock = asyncio.Lock()  # one event at a time through the machine, effects in order
        self._wake = asyncio.Event()  # the sender has something new to look at
        self._speech: asyncio.Queue[Say | SayCaseNo] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._hold: asyncio.TimerHandle | None = None
        self._beat = asyncio.Event()  # the state changed: the fleet page learns it now, not at the next beat
        self._testing = False  # a remote self-test is running
        self.case_numbers: asyncio.Queue[str] = asyncio.Queue()  # for the demo and tests to watch
        self.ready = asyncio.Event()  # hardware started, state restored: a press now counts
        self._loops: list[asyncio.Task[None]] = []
        self.update: UpdateAgent | None = None
        if cfg.update.url is not None:  # TUF's client and urllib3 are loaded only for units that update
            from device.update.agent import UpdateAgent

            self.update = UpdateAgent(cfg, FIRMWARE, self._busy, self._update_health, self._restart, self._beat.set)

    @property
    def tag(self) -> str:
        return f"device {self.cfg.device.id}"

    @property
    def running(self) -> bool:
        """Started, and every loop still turning: they end only by failing or being stopped, and the
        others may take a while to wind down after one fails. The systemd watchdog asks this."""
        return self.ready.is_set() and bool(self._loops) and not any(loop.done() for loop in self._loops)

    async def run(self) -> None:
        await self.outbox.open()
        try:
            await self.hw.start(self.trigger)
            self.plates.start()
            await self._restore()
            # What start-up loaded lives as long as the firmware: out of the collector's full scans,
            # which take some 80 ms here and many times that on a Pi, whenever they come.
            gc.freeze()
            self.ready.set()
            async with asyncio.TaskGroup() as group:
                self._loops = [
                    group.create_task(self.link.run(), name="link"),
                    group.create_task(self._sender(), name="sender"),
                    group.create_task(self._heartbeats(), name="heartbeat"),
                    group.create_task(self._speaker(), name="speech"),
                    group.create_task(self.evidence.run(), name="evidence"),
                ]
                if self.update is not None:
                    self._loops.append(group.create_task(self.update.run(), name="update"))
        finally:
            await self.plates.stop()
            await self.call.stop()
            await self.hw.stop()
            await self.outbox.close()

    # --- inputs ---------------------------------------------------------------------------

    def trigger(self, kind: Trigger) -> None:
        """Called on the event loop by the trigger hardware (button held, hazards on, kiosk touch)."""
        triggered_at = datetime.now(UTC)
        if kind is Trigger.BUTTON and self.cfg.device.kind is DeviceKind.KIOSK:
            kind = Trigger.KIOSK  # a kiosk's report button is a walk-up report, not a driver's press
        logger.info("%s: trigger %s", self.tag, kind.value)
        self._spawn(self._event(Triggered(kind, new_report_id()), triggered_at))

    async def _on_ack(self, ack: Ack) -> None:
        if ack.report_id is None:
            logger.error("%s: the server refused an unreadable report: %s", self.tag, ack.reason)
            return
        self.plates.answered(ack.report_id)
        if not await self.outbox.answered(ack):
            logger.info("%s: repeated answer for report %s ignored", self.tag, ack.report_id)
            return
        if ack.status == "accepted" and ack.test:
            logger.info("%s: test report %s acknowledged by the server", self.tag, ack.report_id)
            await self._event(SelfTestAnswered(ack.report_id))
        elif ack.status == "accepted" and ack.case_no is not None:
            logger.info(
                "%s: report %s accepted as case %s%s",
                self.tag,
                ack.report_id,
                ack.case_no,
                " (retry of a known report)" if ack.duplicate else "",
            )
            await self._event(Accepted(ack.report_id, ack.case_no))
            self.case_numbers.put_nowait(ack.case_no)
            if self.cfg.webrtc.call_on_accept:
                self.call.start(ack.report_id, ack.case_no)
        elif ack.status == "refused":
            logger.error("%s: report %s refused by the server: %s", self.tag, ack.report_id, ack.reason)
            await self._event(Refused(ack.report_id, ack.reason or ""))

    def _on_command(self, command: Command) -> None:
        if command.type.startswith("call."):
            self.call.on_command(command)
        elif command.type == "plates.request":
            self.plates.on_command(command)
        elif command.type == "road.clear":
            logger.info("%s: case %s: the dispatcher says clear the road", self.tag, command.case_no)
            self.hw.indicators.show(Signal.CLEAR_ROAD)
            self._speech.put_nowait(Say(Prompt.CLEAR_ROAD))
            if self.hw.screen is not None and command.case_no is not None:
                self.hw.screen.clear_road(command.case_no)
        elif command.type == "instruction":
            logger.info("%s: case %s: an instruction from the dispatcher", self.tag, command.case_no)
            self.hw.indicators.beep(Beep.CASE_NUMBER)  # look at the screen, or listen to the call
            if self.hw.screen is not None and command.case_no is not None and command.text is not None:
                self.hw.screen.instruct(command.case_no, command.text)
        elif command.type == "case.closed" and command.case_no is not None:
            logger.info("%s: case %s closed by the server: ready for the next report", self.tag, command.case_no)
            self._spawn(self._case_closed(command.case_no))
        elif command.type == "selftest.run":
            self._spawn(self._remote_selftest())
        elif command.type == "update.check":
            if self.update is None:
                logger.info("%s: update.check, but no [update] url is configured", self.tag)
            else:
                self.update.poke(command.rollout, command.release, command.kind or "firmware")
        elif command.type == "document.ready":
            logger.info("%s: case %s: the determination is issued", self.tag, command.case_no)
            # A unit with no screen beeps; the parties have the link by SMS. A kiosk shows it as a QR code.
            self.hw.indicators.beep(Beep.CASE_NUMBER)
            if self.hw.screen is not None and command.case_no is not None and command.url is not None:
                self._spawn(self.hw.screen.document(command.case_no, command.url))
        else:
            self.evidence.on_command(command)

    async def _case_closed(self, case_no: str) -> None:
        await self.outbox.closed(case_no)
        await self._event(CaseClosed(case_no))

    def _health(self) -> Health:
        health = self.plates.in_health(self.hw.health())
        return health if self.update is None else self.update.in_health(health)

    def _busy(self) -> bool:
        """A report or a call is on: no update is downloaded or installed meanwhile (read from the
        download's thread as well)."""
        return self.machine.state is not AppState.IDLE or self.call.call_id is not None

    async def _update_health(self) -> str | None:
        """What a release on trial must show: the broker reached and the self-test's checks passed."""
        from device.selftest.live import run_live_selftest

        if not self.link.connected.is_set():
            return "未连上消息服务器 (the broker was not reached)"
        result = await run_live_selftest(self.cfg, self.hw, in_case=False)
        failed = [f"{check.name}: {check.detail}" for check in result.checks if check.status is CheckStatus.FAIL]
        return f"自检未通过 (self-test failed): {'; '.join(failed)}" if failed else None

    def _restart(self) -> None:
        """Stop as systemd stops the firmware; ``Restart=always`` starts what ``current`` now names."""
        os.kill(os.getpid(), signal.SIGTERM)

    async def _remote_selftest(self) -> None:
        from device.selftest.live import run_live_selftest

        if self._testing:
            logger.info("%s: remote self-test already running; the request is ignored", self.tag)
            return
        self._testing = True
        try:
            logger.info("%s: remote self-test started", self.tag)
            result = await run_live_selftest(self.cfg, self.hw, self.machine.state is AppState.IN_CASE)
            sent = await self.link.publish(Channel.SELFTEST, encode(result), qos=1)
            logger.info(
                "%s: remote self-test %s%s",
                self.tag,
                "passed" if result.passed else "failed",
                "" if sent else " (not sent: link down)",
            )
        finally:
            self._testing = False

    async def _on_link(self, up: bool) -> None:
        if up:
            self.call.network_changed()
            # Everything still pending goes out now rather than at its backed-off time.
            await self.outbox.reschedule_all(0.0)
            self._wake.set()
        await self._event(LinkChanged(up))

    # --- the machine and its effects ------------------------------------------------------

    async def _restore(self) -> None:
        pending = await self.outbox.pending()
        if pending:
            effects = self.machine.restore(AppState.REPORTING, pending[-1].report.report_id)
            logger.info("%s: %d report(s) still unanswered from before the restart", self.tag, len(pending))
        else:
            last = await self.outbox.last_answer()
            hold = self.cfg.report.case_hold_s
            if last and last[0].case_no and (datetime.now(UTC) - last[1]).total_seconds() < hold:
                effects = self.machine.restore(AppState.IN_CASE, last[0].report_id, last[0].case_no)
            else:
                effects = self.machine.restore(AppState.IDLE, None)
        await self._apply(effects, datetime.now(UTC))

    async def _event(self, event: Event, at: datetime | None = None) -> None:
        async with self._lock:
            before = self.machine.state
            effects = self.machine.handle(event)
            await self._apply(effects, at or datetime.now(UTC))
            if self.machine.state is not before:
                self._beat.set()

    async def _apply(self, effects: list[Effect], at: datetime) -> None:
        for effect in effects:
            match effect:
                case NewReport(kind, report_id):
                    # On disk before anything else happens: from here on the report cannot be lost.
                    report = build_report(
                        self.cfg,
                        report_id,
                        kind,
                        at,
                        self.hw.position(at),
                        self.hw.track_points(self.cfg.report.track_s),
                        self.plates.in_health(self.hw.health()),
                    )
                    # Stored as already being sent: the first attempt goes out right here, and the
                    # sender only takes it up if no answer comes within ack_timeout_s.
                    payload = await self.outbox.add(report, next_attempt=time.time() + self.cfg.report.ack_timeout_s)
                    logger.info("%s: report %s stored, sending", self.tag, report_id)
                    self._spawn(self._send_first(payload))
                    # One turn of the loop hands the report to the link before the video kept from
                    # before the press, the light, the beep and the voice take their share of a small CPU.
                    await asyncio.sleep(0)
                    self.evidence.freeze(report_id, at)
                    self.plates.after_report(report_id)
                    self._wake.set()  # the sender sets its timer for the resend
                case Show(signal):
                    self.hw.indicators.show(signal)
                    if self.hw.screen is not None:
                        self.hw.screen.signal(signal, self.machine.case_no)
                case Sound(beep):
                    self.hw.indicators.beep(beep)
                case Say() | SayCaseNo():
                    self._speech.put_nowait(effect)
                case StartCaseHold(report_id):
                    if self._hold is not None:
                        self._hold.cancel()
                    loop = asyncio.get_running_loop()
                    self._hold = loop.call_later(
                        self.cfg.report.case_hold_s, lambda: self._spawn(self._event(CaseHoldExpired(report_id)))
                    )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- loops ----------------------------------------------------------------------------

    async def _sender(self) -> None:
        """Publish due reports; resend each with growing intervals until the server answers."""
        while True:
            delay = await self._send_due()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _send_first(self, payload: bytes) -> None:
        if not await self.link.publish(Channel.REPORT, payload, qos=1):
            self._wake.set()  # the sender retries it; the link-up handler makes it due at once

    async def _send_due(self) -> float:
        if not self.link.connected.is_set():
            return 3600.0  # woken when the link comes back
        now = time.time()
        due, later = await self.outbox.due(now)
        next_in = 3600.0 if later is None else later - now
        for entry in due:
            if entry.attempts > 0:
                await self._event(AckOverdue(entry.report.report_id))
            if not await self.link.publish(Channel.REPORT, entry.payload, qos=1):
                return 1.0
            report = self.cfg.report
            delay = min(report.retry_max_s, report.ack_timeout_s * 2 ** min(entry.attempts, 16))
            await self.outbox.attempted(entry.report.report_id, time.time() + delay)
            next_in = min(next_in, delay)
        return next_in

    async def _heartbeats(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat.wait(), self.cfg.report.heartbeat_s)
            self._beat.clear()
            if not self.link.connected.is_set():
                continue
            now = datetime.now(UTC)
            await self.hw.refresh_storage()
            heartbeat = build_heartbeat(
                self.cfg,
                now,
                self.machine.state.value,
                await self.outbox.count_pending(),
                self.hw.position(now),
                self._health(),
            )
            await self.link.publish(Channel.HEARTBEAT, encode(heartbeat), qos=0)

    async def _speaker(self) -> None:
        """Prompts play one after another, never over each other."""
        while True:
            item = await self._speech.get()
            try:
                if isinstance(item, SayCaseNo):
                    await self.hw.prompts.say_case_number(item.case_no)
                else:
                    await self.hw.prompts.say(item.prompt.value)
            except Exception:
                logger.exception("%s: voice prompt failed", self.tag)
