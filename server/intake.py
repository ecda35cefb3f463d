"""The server's MQTT side: reports in, cases out, acknowledgements back to the devices.

One broker connection per worker, or one per broker where the fleet is sharded over several
(``[broker] others``): each broker's units report there, and every worker takes its share of each
broker's reports; answers go back on the broker a report came in on (``server.outbound``).
Reports arrive on a shared subscription, so with several workers
each report is handled by one of them; validation happens as a message arrives, and valid reports
queue for the case writer, which commits everything waiting in one transaction and then answers.
Presence, heartbeats and self-tests are gathered for a second and written in a transaction of
their own: they need no answer, and thousands of devices send them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass

from protocol import ProtocolError
from protocol.ids import REPORT_ID_PATTERN
from protocol.messages import Ack, Heartbeat, Presence, Report, SelfTest, Unit, decode, encode
from protocol.topics import CASE_EVENTS, Channel, device_filter, device_topic, parse_device_topic, shared
from runtime.mqtt import BrokerSection
from runtime.mqtt_session import MqttSession, Subscription, any_connected
from server.cases import CaseStore, Outcome, case_summary, now_utc
from server.config import ServerConfig, WorkerPart
from server.devices import DeviceStore, Status
from server.live_feed import CaseHub
from server.outbound import Outbound
from server.plates import Plates
from server.rollouts import Rollouts

logger = logging.getLogger(__name__)

BATCH_LIMIT = 200
# Reports arriving less than GATHER_GAP_S apart are written in one transaction, for at most
# GATHER_MAX_S after the first (see Intake._gather).
GATHER_GAP_S = 0.003
GATHER_MAX_S = 0.05
# Presence, heartbeats and self-tests wait this long to share one transaction. Written as they came,
# each cost the worker some 4 ms of CPU, so 2,000 devices heartbeating every 10 s took
# most of a core (bench/fleet.py, docs/benchmarks.md); gathered, they cost a fraction of that.
STATUS_GATHER_S = 1.0
# QoS 1 answers in flight at once: the broker's receive maximum (``max_inflight_messages`` in the
# configuration provisioning writes). paho's default of 20 would hold a burst's answers back.
BROKER_RECEIVE_MAXIMUM = 100
# The id of a report that failed validation, so that its refusal can still name it.
_REPORT_ID_IN_RAW = re.compile(rb'"report_id"\s*:\s*"(' + REPORT_ID_PATTERN.strip("^$").encode() + rb')"')
SUBSCRIPTIONS = (
    Subscription(shared(device_filter(Channel.REPORT)), qos=1),
    Subscription(shared(device_filter(Channel.HEARTBEAT)), qos=0),
    Subscription(shared(device_filter(Channel.SELFTEST)), qos=1),
    Subscription(shared(device_filter(Channel.PLATES)), qos=1),
    # Not shared: the broker sends retained presence only to ordinary subscriptions.
    Subscription(device_filter(Channel.STATE), qos=1),
    # no_local: this worker's own events reach its consoles directly, not via the broker.
    Subscription(CASE_EVENTS, qos=1, no_local=True),
)
# A worker that takes no reports ([server] runs without intake) still sends through the broker and
# hears the other workers' case events for its consoles.
CASE_EVENTS_ONLY = SUBSCRIPTIONS[-1:]


def intake_sessions(cfg: ServerConfig) -> list[MqttSession]:
    """The worker's connections for the devices' messages in and its answers out, one per broker."""
    identifier = f"kuaichu-server-{cfg.server.worker_id}"

    def session(broker: BrokerSection) -> MqttSession:
        async def changed(up: bool) -> None:
            if up:
                logger.info("intake %s: connected to broker %s", identifier, broker.address)

        return MqttSession(
            broker,
            identifier,  # one connection to each broker: the same id on each is no clash
            SUBSCRIPTIONS if WorkerPart.INTAKE in cfg.server.runs else CASE_EVENTS_ONLY,
            logger=logger,
            label=f"intake {identifier} ({broker.address})",
            max_inflight=BROKER_RECEIVE_MAXIMUM,
            on_change=changed,
        )

    return [session(broker) for broker in cfg.broker.each()]


@dataclass(frozen=True)
class Refusal:
    device_id: str
    report_id: str | None
    reason: str


class Intake:
    def __init__(
        self,
        cases: CaseStore,
        devices: DeviceStore,
        hub: CaseHub,
        outbound: Outbound,
        plates: Plates,
        rollouts: Rollouts,
    ) -> None:
        self._cases = cases
        self._devices = devices
        self._hub = hub
        self._outbound = outbound
        self._plates = plates  # where the devices' plate readings go
        self._rollouts = rollouts  # where the units' progress with a release goes (in their heartbeats)
        self._queue: asyncio.Queue[Report | Refusal] = asyncio.Queue()
        self._statuses: list[Status] = []
        self._statuses_waiting = asyncio.Event()
        # One writer at a time: SQLite refuses a write to a transaction that read before another
        # connection committed, and the case and status writers use different connections.
        self._writing = asyncio.Lock()
        # Every report taken in, by outcome (accepted, duplicate, test, refused) and refusal reason: /metrics.
        self.tally: Counter[tuple[str, str]] = Counter()

    async def run(self) -> None:
        writers = [
            asyncio.create_task(self._write_loop(), name="case-writer"),
            asyncio.create_task(self._status_loop(), name="status-writer"),
        ]
        try:
            await asyncio.gather(*(self._receive(i, s) for i, s in enumerate(self._outbound.sessions)))
        finally:
            for writer in writers:
                writer.cancel()

    async def wait_connected(self) -> None:
        await any_connected(self._outbound.sessions)

    async def _receive(self, broker: int, session: MqttSession) -> None:
        await session.run(lambda topic, payload: self._on_message(topic, payload, broker))

    def _on_message(self, topic: str, payload: bytes, broker: int) -> None:
        if topic == CASE_EVENTS:
            for line in payload.split(b"\n"):
                try:
                    text = line.decode()
                    self._hub.deliver(json.loads(text)["case"]["unit"]["adcode"], text)
                except (ValueError, KeyError, TypeError):
                    logger.error("case event on %s is malformed; ignored", topic)
            return
        try:
            device_id, channel = parse_device_topic(topic)
        except ProtocolError as exc:
            logger.warning("refused message on unexpected topic: %s", exc.reason)
            return
        if channel is not Channel.STATE:  # a presence may be an old one the broker kept (Whereabouts)
            self._outbound.where.heard(device_id, broker)
        if channel is Channel.REPORT:
            self._on_report(device_id, payload)
        elif channel is Channel.HEARTBEAT:
            self._on_status(device_id, Heartbeat, payload, broker)
        elif channel is Channel.STATE and payload:  # empty = retained state cleared; nothing to record
            self._on_status(device_id, Presence, payload, broker)
        elif channel is Channel.SELFTEST:
            self._on_status(device_id, SelfTest, payload, broker)
        elif channel is Channel.PLATES:
            self._plates.on_message(device_id, payload)

    def _on_report(self, device_id: str, payload: bytes) -> None:
        try:
            report = decode(Report, payload)
        except ProtocolError as exc:
            found = _REPORT_ID_IN_RAW.search(payload[:4096])
            report_id = found.group(1).decode() if found else None
            logger.warning(
                "device %s: report %s refused: %s (%s)", device_id, report_id or "(no id)", exc.reason, exc.detail
            )
            self._queue.put_nowait(Refusal(device_id, report_id, exc.reason))
            return
        if report.device_id != device_id:
            logger.warning(
                "device %s: report %s refused: device_mismatch (payload claims %s)",
                device_id,
                report.report_id,
                report.device_id,
            )
            self._queue.put_nowait(Refusal(device_id, report.report_id, "device_mismatch"))
            return
        self._queue.put_nowait(report)

    def _on_status(
        self,
        device_id: str,
        model: type[Presence] | type[Heartbeat] | type[SelfTest],
        payload: bytes,
        broker: int,
    ) -> None:
        try:
            status = decode(model, payload)
        except ProtocolError as exc:
            logger.warning("device %s: %s refused: %s (%s)", device_id, model.__name__, exc.reason, exc.detail)
            return
        if isinstance(status, Presence) and not self._outbound.where.presence(device_id, broker, status):
            return  # left on a broker the unit has since moved off
        self._statuses.append((device_id, status))
        self._statuses_waiting.set()

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await self._gather(batch)
            try:
                await self._write(batch)
            except Exception:
                # The devices will retry what was not acknowledged; the writer must live on.
                logger.exception("case writer: batch of %d failed; devices will retry", len(batch))

    async def _gather(self, batch: list[Report | Refusal]) -> None:
        """Add to ``batch`` what keeps arriving, until a pause of ``GATHER_GAP_S`` or ``GATHER_MAX_S``
        in all. A burst of reports then costs one transaction rather than a chain of ever larger ones,
        each holding up the next; a lone report waits ``GATHER_GAP_S`` longer."""
        loop = asyncio.get_running_loop()
        until = loop.time() + GATHER_MAX_S
        while len(batch) < BATCH_LIMIT:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            wait = min(GATHER_GAP_S, until - loop.time())
            if wait <= 0:
                return
            try:
                async with asyncio.timeout(wait):
                    batch.append(await self._queue.get())
            except TimeoutError:
                return

    async def _status_loop(self) -> None:
        while True:
            await self._statuses_waiting.wait()
            await asyncio.sleep(STATUS_GATHER_S)
            self._statuses_waiting.clear()
            batch, self._statuses = self._statuses, []
            try:
                async with self._writing:
                    await self._devices.record(batch, now_utc())
            except Exception:
                logger.exception("status writer: %d presence/heartbeat/self-test messages not recorded", len(batch))
            updates = [
                (d, status)
                for d, s in batch
                if isinstance(s, Heartbeat)
                for status in (s.health.update, s.health.models_update)
                if status is not None
            ]
            fresh = self._rollouts.news(updates)
            if fresh:
                try:
                    async with self._writing:
                        changed = await self._rollouts.record(fresh)
                    for rollout_id in sorted(changed):
                        await self._rollouts.advance(rollout_id)
                except Exception:
                    logger.exception("status writer: %d units' update progress not handled", len(fresh))

    async def _write(self, batch: list[Report | Refusal]) -> None:
        now = now_utc()
        reports = [item for item in batch if isinstance(item, Report)]
        sends: list[tuple[str, bytes, int]] = []
        events: list[str] = []
        if reports:
            async with self._writing:
                outcomes = await self._cases.open_cases(reports, now)
            for outcome in outcomes:
                sends.extend(self._answers(outcome, events))
        for item in batch:
            if isinstance(item, Refusal):
                self.tally["refused", item.reason] += 1
                ack = Ack(report_id=item.report_id, status="refused", reason=item.reason)
                sends.append((device_topic(item.device_id, Channel.ACK), encode(ack), 1))
        if events:
            # The other workers get every case of the batch in one message, one event per line.
            sends.append((CASE_EVENTS, "\n".join(events).encode(), 1))
        self._outbound.send(sends)

    def _answers(self, outcome: Outcome, events: list[str]) -> list[tuple[str, bytes, int]]:
        """The device's ack; a new case's event goes to this worker's consoles and onto ``events``."""
        report, case = outcome.report, outcome.case
        topic = device_topic(report.device_id, Channel.ACK)
        if outcome.refusal is not None:
            self.tally["refused", outcome.refusal] += 1
            logger.warning("device %s: report %s refused: %s", report.device_id, report.report_id, outcome.refusal)
            ack = Ack(report_id=report.report_id, status="refused", reason=outcome.refusal)
            return [(topic, encode(ack), 1)]
        if case is None:
            self.tally["test", ""] += 1
            logger.info("device %s: test report %s acknowledged", report.device_id, report.report_id)
            return [(topic, encode(Ack(report_id=report.report_id, status="accepted", test=True)), 1)]
        ack = Ack(
            report_id=report.report_id,
            status="accepted",
            duplicate=outcome.duplicate,
            case_no=case.case_no,
            unit=Unit(adcode=case.unit_adcode, name=case.unit.name),
            flag=case.flag,
        )
        sends = [(topic, encode(ack), 1)]
        self.tally["duplicate" if outcome.duplicate else "accepted", ""] += 1
        if outcome.duplicate:
            logger.info("device %s: report %s is a retry of case %s", report.device_id, report.report_id, case.case_no)
        else:
            logger.info(
                "device %s: report %s opened case %s for unit %s%s",
                report.device_id,
                report.report_id,
                case.case_no,
                case.unit_adcode,
                f" (flag: {case.flag})" if case.flag else "",
            )
            event = json.dumps({"type": "case.new", "case": case_summary(case)}, ensure_ascii=False)
            self._hub.deliver(case.unit_adcode, event)
            events.append(event)
        return sends
