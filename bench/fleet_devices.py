"""A share of the fleet benchmark's devices, in a process of its own: the firmware's broker link and
its heartbeat, and nothing else of the firmware.

Each device is the firmware's own ``device.link.Link``: MQTT 5 over mutual TLS with the device's
certificate, a persistent session (clean start off, session expiry), keepalive, the retained
``online`` presence on connect, the ``offline`` last will, and the link's reconnect backoff. Next to
it runs the firmware's heartbeat loop (``device.app``): every HEARTBEAT_S seconds, while the link is
up, a ``Heartbeat`` at QoS 0. The camera, GNSS receiver and GPIO are left out: a whole simulated unit
costs some 44 ms of CPU a second (docs/benchmarks.md), which two cores cannot give thousands of
units, and none of it reaches the server between reports.

Devices are switched on at random moments over BOOT_S seconds, not in the same
millisecond: a fleet is not powered up at once, and thousands of TLS handshakes at one instant on
the benchmark's two cores would time out in the simulation, not in the server. After a broker
restart there is no such spread: every link comes back on its own backoff, which is the storm
being measured. Each heartbeat loop starts after a random part of a period and keeps its phase
across a broker restart, as the firmware's loop does.

Speaks on stdin/stdout. Prints ``ready`` once every device has connected. Then answers each line:
``status`` with ``connected=K all_up_at=EPOCH`` (when the count last became COUNT, 0 if it has not
since the last drop); ``sent T0 T1`` with how many heartbeats it sent whose ``at`` lies between the
two epoch times. Ends on end of input.

    python -m bench.fleet_devices FIRST COUNT BROKER_PORT FLEET_DIR HEARTBEAT_S BOOT_S [OTHER_PORT...]

With further brokers' ports (``bench/broker_failover.py``), each device lists them all, in the order
``kuaichu provision`` would give it (``provisioning.bundle.broker_order``): the fleet sharded.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.stack import bundle_tls, cancel_all
from device.link import Link
from protocol.messages import Ack, Command, DeviceKind, Heartbeat, encode
from protocol.topics import Channel
from provisioning.bundle import broker_order
from runtime import runner
from runtime.mqtt import BrokerAddress, BrokerSection
from runtime.version import FIRMWARE
from tests.reports import in_car_report


def device_id(index: int) -> str:
    return f"fleet-{index:05d}"


def raise_fd_limit() -> int:
    """Each device is a socket; take the hard limit on open files as the soft one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Fleet:
    def __init__(self, count: int) -> None:
        self.count = count
        self.connected = 0
        self.all_up_at = 0.0
        self.sent_at: list[float] = []  # epoch seconds of every heartbeat sent, in order
        self.all_up = asyncio.Event()

    async def on_change(self, up: bool) -> None:
        self.connected += 1 if up else -1
        if self.connected == self.count:
            self.all_up_at = time.time()
            self.all_up.set()
        elif not up:
            self.all_up_at = 0.0

    def sent_between(self, start: float, end: float) -> int:
        return bisect.bisect_right(self.sent_at, end) - bisect.bisect_left(self.sent_at, start)


async def ignore_ack(_: Ack) -> None:
    """The benchmark's devices send no reports, so no acknowledgement is theirs to handle."""


def ignore_command(_: Command) -> None:
    """Nor do they take part in calls, which is what commands are about."""


async def boot(link: Link, fleet: Fleet, ident: str, period: float, after: float) -> None:
    await asyncio.sleep(after)
    async with asyncio.TaskGroup() as group:
        group.create_task(link.run())
        group.create_task(heartbeats(link, fleet, ident, period))


async def heartbeats(link: Link, fleet: Fleet, ident: str, period: float) -> None:
    """``device.app``'s heartbeat loop, with the position and health of a healthy parked unit."""
    report = in_car_report(ident)
    await asyncio.sleep(random.uniform(0, period))
    while True:
        if link.connected.is_set():
            now = datetime.now(UTC)
            heartbeat = Heartbeat(
                at=now,
                device_kind=DeviceKind.IN_CAR,
                app_state="idle",
                outbox_pending=0,
                position=report.position.model_copy(update={"time": now}) if report.position else None,
                health=report.health,
            )
            if await link.publish(Channel.HEARTBEAT, encode(heartbeat), qos=0):
                fleet.sent_at.append(now.timestamp())
        await asyncio.sleep(period)


async def answer(fleet: Fleet) -> None:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "status":
            print(f"connected={fleet.connected} all_up_at={fleet.all_up_at:.3f}", flush=True)
        elif line[0] == "sent":
            print(fleet.sent_between(float(line[1]), float(line[2])), flush=True)


def broker_ports(ident: str, ports: list[int]) -> list[int]:
    """The brokers' ports in the order this device tries them."""
    return [int(port) for port in broker_order(ident, [str(port) for port in ports])]


async def main(first: int, count: int, ports: list[int], fleet_dir: Path, period: float, boot_s: float) -> None:
    fleet = Fleet(count)
    tasks: list[asyncio.Task[None]] = []
    for index in range(first, first + count):
        ident = device_id(index)
        port, *others = broker_ports(ident, ports)
        broker = BrokerSection(
            host="127.0.0.1",
            port=port,
            others=[BrokerAddress(host="127.0.0.1", port=other) for other in others],
            tls=bundle_tls(fleet_dir, ident),
        )
        link = Link(broker, ident, FIRMWARE, ignore_ack, fleet.on_change, ignore_command)
        tasks.append(asyncio.create_task(boot(link, fleet, ident, period, random.uniform(0, boot_s))))
    try:
        await asyncio.wait_for(fleet.all_up.wait(), timeout=boot_s + 60 + count / 20)
        print("ready", flush=True)
        await answer(fleet)
    finally:
        await cancel_all(tasks)


if __name__ == "__main__":
    raise_fd_limit()
    # Every drop and retry of every link, timed: what a storm looks like from the devices' side.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    first, count, port, fleet_dir, period, boot_s, *others = sys.argv[1:]
    ports = [int(port), *(int(other) for other in others)]
    runner.run(main(int(first), int(count), ports, Path(fleet_dir), float(period), float(boot_s)))
