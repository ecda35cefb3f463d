"""The broker and test-report checks, and publishing the result, over a connection of the self-test's own.

It uses the device's certificate, so the broker judges exactly what the firmware will present, a
clean start, no session kept and no last will, so the broker does not announce the device offline
when it disconnects. The broker forces a device's client id to its certificate's CN (so that no
unit can take another's, provisioning/broker.py), so this connection has the firmware's id whatever
it asks for: the on-site run needs the firmware stopped (it is, for the GPIO and the camera), and
its clean start drops what the broker had queued for the firmware; the firmware's outbox sends its
unacknowledged reports again when it starts, and the server answers them again (a report is one case
however often it arrives). The remote run uses the firmware's own connection (``device.selftest.live``).

The test report is built as a real one (``device.reports``) with ``trigger: test`` and sent on the
report topic, but never stored in the outbox: nothing could resend it later as a real case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

import aiomqtt

from device.config import DeviceConfig
from device.selftest.certificate import CertificateFacts, read_certificate
from device.selftest.outcome import Outcome
from protocol import ProtocolError
from protocol.messages import Ack, Report, SelfTest, decode, encode
from protocol.topics import Channel, device_topic
from runtime.mqtt import make_client

log = logging.getLogger(__name__)

CLIENT_SUFFIX = "-selftest"


class SelfTestLink:
    """Use as ``async with``; the checks go through it in order: ``check_broker`` first."""

    def __init__(self, cfg: DeviceConfig, ack_timeout_s: float) -> None:
        self._cfg = cfg
        self._device_id = cfg.device.id
        self._ack_timeout_s = ack_timeout_s
        self._client: aiomqtt.Client | None = None
        self._acks: asyncio.Queue[Ack] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self.sent_report = False  # the broker took the test report

    @property
    def where(self) -> str:
        return f"{self._cfg.broker.host}:{self._cfg.broker.port}"

    def topic(self, channel: Channel) -> str:
        return device_topic(self._device_id, channel)

    async def __aenter__(self) -> SelfTestLink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    # checks ------------------------------------------------------------------------------------

    async def check_broker(self) -> Outcome:
        tls = self._cfg.broker.tls
        facts = None
        if tls is not None:
            facts = await asyncio.to_thread(read_certificate, tls, self._device_id, datetime.now(UTC))
        # No session is kept after the run: acks for the firmware must not pile up in it.
        broker = self._cfg.broker.model_copy(update={"session_expiry_s": 0})
        try:
            client = make_client(broker, self._device_id + CLIENT_SUFFIX, clean_start=True)
        except OSError as exc:  # ssl.SSLError is one: a key that does not match its certificate
            return Outcome.failed(f"cannot load the TLS files of [broker.tls] ({exc})" + _because(facts))
        started = time.monotonic()
        try:
            await client.__aenter__()
        except (aiomqtt.MqttError, OSError) as exc:
            return Outcome.failed(f"{self.where} did not accept the connection ({exc})" + _because(facts))
        self._client = client
        ms = round((time.monotonic() - started) * 1000)
        if facts is None:
            return Outcome.passed(f"connected to {self.where} without TLS (allowed on loopback only) in {ms} ms")
        if facts.problems:
            # Connected, but the broker will stop this device at its own topics (or soon refuse it).
            return Outcome.failed(f"{self.where} accepted the connection, but " + "; ".join(facts.problems))
        await client.subscribe(self.topic(Channel.ACK), qos=1)
        self._reader = asyncio.create_task(self._read_acks(client), name="selftest-acks")
        expires = f", expires {facts.expires:%Y-%m-%d}" if facts.expires else ""
        return Outcome.passed(f"{self.where} accepted certificate {facts.holder}{expires}; connected in {ms} ms")

    async def check_test_report(self, report: Report) -> Outcome:
        if self._reader is None or self._client is None:
            return Outcome.failed("not sent: no usable broker connection (see the broker check)")
        started = time.monotonic()
        try:
            await self._client.publish(self.topic(Channel.REPORT), encode(report), qos=1, timeout=10)
        except aiomqtt.MqttError as exc:
            return Outcome.failed(f"the broker did not take the test report: {exc}")
        self.sent_report = True
        try:
            async with asyncio.timeout(self._ack_timeout_s):
                ack = await self._answer_to(report.report_id)
        except TimeoutError:
            return Outcome.failed(
                f"no answer from the server within {self._ack_timeout_s:g} s (the broker took the report): "
                "is the server running and subscribed?"
            )
        ms = round((time.monotonic() - started) * 1000)
        if ack.status == "refused":
            return Outcome.failed(f"the server refused the test report: {ack.reason}")
        if not ack.test:
            return Outcome.failed(f"the server opened case {ack.case_no} for a test report: tell the operator")
        return Outcome.passed(f"acknowledged as a test in {ms} ms, no case opened")

    async def publish_result(self, result: SelfTest) -> str:
        """Send the run's result to the server; what happened, for the technician."""
        topic = self.topic(Channel.SELFTEST)
        if self._reader is None or self._client is None:
            return "Not sent to the server: no usable broker connection."
        try:
            await self._client.publish(topic, encode(result), qos=1, timeout=10)
        except aiomqtt.MqttError as exc:
            return f"Not sent to the server: {exc}"
        return f"Sent to the server on {topic}."

    # acks --------------------------------------------------------------------------------------

    async def _answer_to(self, report_id: str) -> Ack:
        while True:
            ack = await self._acks.get()
            if ack.report_id == report_id:
                return ack

    async def _read_acks(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            try:
                self._acks.put_nowait(decode(Ack, payload))
            except ProtocolError as exc:
                log.error("selftest %s: unreadable ack ignored: %s (%s)", self._device_id, exc.reason, exc.detail)


def _because(facts: CertificateFacts | None) -> str:
    if facts is None or not facts.problems:
        return ""
    return ": " + "; ".join(facts.problems)
