"""The firmware's half of systemd's notify protocol, against a real datagram socket standing in for
systemd's: ready, watchdog pings from the event loop, stopping, and nothing at all outside systemd."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.sd_notify import Notifier
from provisioning.bundle import to_toml
from tests.devices import device_config, running_device
from tests.services import Mosquitto

UCRED = struct.Struct("iII")  # pid, uid, gid: what SO_PASSCRED attaches to each datagram


class FakeManager:
    """The receiving end of NOTIFY_SOCKET, as systemd binds it; it learns each sender's pid from the
    kernel, as systemd does to enforce NotifyAccess=main."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)

    def receive(self, timeout: float) -> tuple[int, dict[str, str]]:
        """(sender pid, fields) of the next datagram."""
        self.sock.settimeout(timeout)
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(UCRED.size))
        pid = -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = UCRED.unpack(payload[: UCRED.size])[0]
        fields = dict(line.split("=", 1) for line in data.decode().split("\n"))
        return pid, fields

    async def next(self, timeout: float = 30) -> tuple[int, dict[str, str]]:
        return await asyncio.to_thread(self.receive, timeout)

    def pending(self) -> list[dict[str, str]]:
        """Whatever has arrived and not been read, without waiting."""
        found = []
        while True:
            try:
                found.append(self.receive(0.001)[1])
            except TimeoutError:
                return found

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            Path(self.address).unlink(missing_ok=True)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[FakeManager]:
    fake = FakeManager(str(tmp_path / "notify"))
    yield fake
    fake.close()


def test_outside_systemd_nothing_is_sent_and_nothing_fails() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert notifier.send("READY=1") is False
    notifier.stopping()
    notifier.close()


def test_the_watchdog_is_only_pinged_for_this_process_and_a_valid_timeout() -> None:
    ours = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "2000000"}
    assert Notifier.from_environment(ours).watchdog_interval == 1.0
    assert Notifier.from_environment({**ours, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 1.0
    # Inherited from a parent that systemd watches: the pings are not ours to send.
    assert Notifier.from_environment({**ours, "WATCHDOG_PID": str(os.getppid())}).watchdog_interval is None
    for usec in ("0", "soon", ""):
        assert Notifier.from_environment({**ours, "WATCHDOG_USEC": usec}).watchdog_interval is None
    # No socket to ping, or one that is neither a path nor abstract: nothing is sent.
    assert Notifier.from_environment({"WATCHDOG_USEC": "2000000"}).watchdog_interval is None
    relative = Notifier.from_environment({"NOTIFY_SOCKET": "run/notify", "WATCHDOG_USEC": "2000000"})
    assert not relative.enabled and relative.watchdog_interval is None


def test_a_socket_that_goes_away_costs_messages_not_the_firmware(manager: FakeManager) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": manager.address})
    notifier.ready("device car-0001 idle,\nconnected")
    pid, fields = manager.receive(5)
    assert pid == os.getpid()
    assert fields == {"READY": "1", "STATUS": "device car-0001 idle, connected"}

    manager.close()
    assert notifier.send("WATCHDOG=1") is False  # no reader: refused, not raised
    again = FakeManager(manager.address)
    try:
        assert notifier.send("WATCHDOG=1") is True
        assert again.receive(5)[1] == {"WATCHDOG": "1"}
        notifier.stopping()
        notifier.stopping()  # said once, however many ways the firmware is stopped
        assert again.receive(5)[1] == {"STOPPING": "1", "STATUS": "stopping"}
        assert again.pending() == []
    finally:
        notifier.close()
        again.close()


async def test_pings_stop_when_one_of_the_apps_loops_ends(broker: Mosquitto, tmp_path: Path) -> None:
    """A loop that ends leaves the event loop turning; the watchdog must notice the app, not the loop."""
    manager = FakeManager(f"@kuaichu-test-{uuid.uuid4().hex}")
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": manager.address, "WATCHDOG_USEC": "200000"})
    try:
        async with running_device(device_config(tmp_path / "car", broker.port, "car-wd-01")) as device:
            assert device.app.running
            pings = asyncio.create_task(notifier.keep_alive(lambda: device.app.running, lambda: "status"))
            assert (await manager.next())[1] == {"WATCHDOG": "1", "STATUS": "status"}
            for _ in range(3):
                assert (await manager.next())[1] == {"WATCHDOG": "1"}
            [heartbeat] = [t for t in asyncio.all_tasks() if t.get_name() == "heartbeat"]
            heartbeat.cancel()
            await asyncio.wait_for(pings, 5)  # keep_alive returned by itself
            assert not device.app.running
            assert not device.task.done()  # the rest of the app still turns: only the watchdog can tell
            manager.pending()
            await asyncio.sleep(notifier.watchdog_interval or 0)
            assert manager.pending() == []
    finally:
        notifier.close()
        manager.close()


def start_under_systemd(config: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``kuaichu device run`` with the environment systemd gives a Type=notify service."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kuaichu.cli", "device", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )


async def test_the_firmware_process_notifies_ready_pings_and_stopping(broker: Mosquitto, tmp_path: Path) -> None:
    cfg = device_config(tmp_path / "car", broker.port, "car-notify-01")
    config = tmp_path / "device.toml"
    config.write_text(to_toml(cfg))
    manager = FakeManager(f"@kuaichu-test-{uuid.uuid4().hex}")  # systemd's own socket is abstract too
    log = tmp_path / "device.log"
    proc = start_under_systemd(config, log, {"NOTIFY_SOCKET": manager.address, "WATCHDOG_USEC": "2000000"})
    try:
        pid, ready = await manager.next(60)
        assert pid == proc.pid, log.read_text()  # NotifyAccess=main: only the main process counts
        assert ready["READY"] == "1"
        assert ready["STATUS"].startswith("device car-notify-01 idle")

        pings = 0
        connected = False
        while pings < 4 or not connected:
            pid, fields = await manager.next(10)
            assert pid == proc.pid
            assert fields.pop("WATCHDOG") == "1", fields
            pings += 1
            if "STATUS" in fields:
                connected = fields.pop("STATUS") == f"device car-notify-01 idle, connected to 127.0.0.1:{broker.port}"
            assert fields == {}

        proc.send_signal(signal.SIGTERM)
        while True:
            pid, fields = await manager.next(10)
            if "STOPPING" in fields:
                break
            assert fields == {"WATCHDOG": "1"}  # one may have been on its way
        assert fields == {"STOPPING": "1", "STATUS": "stopping"}
        assert await asyncio.to_thread(proc.wait, 30) == 0, log.read_text()
        assert manager.pending() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        manager.close()
