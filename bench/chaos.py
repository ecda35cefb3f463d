"""A fault campaign: simulated units keep reporting while faults are made at random by the real
processes, then the books are checked: is any press lost or made into two cases, any SMS lost or
sent twice, and how long until reports are handled again after each fault.

Starts the real stack as the other benchmarks do: a provisioned mutual-TLS Mosquitto with its
persistence on, ``--workers`` server workers as ``kuaichu server run`` processes sharing one SQLite
database, or with ``--postgresql`` a throwaway PostgreSQL cluster (the first worker is the media
worker), the SMS provider's stand-in (``tests.sms_provider``,
which keeps every message it took) and ``--units`` simulated units, each a ``bench.simulated_units``
process of its own with its own data folder. Every unit's button is pressed every ``--press-s``
seconds (a press while a report is on its way or a case is held does nothing, as on a real unit),
and a one-time-code SMS is queued every ``--sms-s`` seconds through the portal's own ``queue_sms``.
Then ``--faults`` faults, one after the other, each kind once in every round, in an
order drawn at random (``--seed``), as are the times below:

- ``worker``: kill -9 of a server worker, started again 1-5 s later (systemd's ``Restart=always``);
- ``broker``: kill -9 of Mosquitto, started again on its port 1-5 s later;
- ``unit``: kill -9 of a unit's process 0-0.5 s after a press (mid-report), started again 1-3 s
  later with the same data folder, so its outbox sends again what it had not had answered;
- ``sms``: the SMS provider answers 503 for 5-20 s;
- ``net`` (run as root): a unit cut off from the network for ``--cut-s`` (30-90 s), its traffic
  dropped both ways by blackhole routes, each unit living in a network namespace of its own;
- ``postgres`` (with ``--postgresql``): kill -9 of every process of PostgreSQL's server, started
  again 1-5 s later on the same data folder.

``recovered_s``: from a fault's injection (a cut's end) until every unit has had a report it made after the
fault stored as a case (for ``sms``: until the provider has taken a message again). The next fault
follows 1-3 s after recovery; a fault not recovered within ``--recover-limit-s`` is counted as such.

The books, once the units' outboxes and the SMS outbox are empty (or ``--drain-s`` has passed):
every report id in a unit's own outbox is exactly one case of that unit, with the case number the
unit was told; every case is one of the units' reports; every SMS queued reached the provider
exactly once (counted by the outbox's reference, ``kc-ID``). ``lost``: reports with no case or
never answered, SMS never taken; ``duplicated``: cases no unit made or told differently, SMS taken
more than once. Both are counted from the records, never assumed.

    .venv/bin/python -m bench.chaos [--faults 20] [--seed 1] [--units 4] [--workers 2] [--postgresql] [--limit-s S]

Last line: ``faults=… reports=… lost=0 duplicated=0 recovered_p99_s=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.stack import kuaichu, load_line, percentile, wait_listening, worker_configs
from server.cases import now_utc
from server.config import load_server_config
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Case, SmsMessage
from server.delivery.outbox import REF
from server.portal.access import code_text, queue_sms
from server.worker import open_state
from tests.pki import FleetPki, session_pki
from tests.services import Mosquitto, free_port, postgresql
from tests.sms_provider import RECEIPT_TOKEN, TOKEN, Provider, sms_provider

KINDS = ("worker", "broker", "unit", "sms", "net", "postgres")
SMS_CONFIG = "poll_s = 0.5\nretry_base_s = 0.5\nretry_max_s = 4\ntimeout_s = 5\n"


def unit_id(index: int) -> str:
    return f"bench-{index:03d}"  # bench.simulated_units' naming


def as_utc(at: datetime) -> datetime:
    """SQLite gives the stored times back without their zone; they were written in UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def ip(*args: str) -> None:
    """``ip ARGS`` (iproute2), which must succeed."""
    proc = await asyncio.create_subprocess_exec("ip", *args, stderr=PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {err.decode().strip()}")


class Namespace:
    """A unit's own network: a namespace joined to this machine by a veth pair. Its 127.0.0.1 is
    routed over the pair to this machine's (route_localnet), so the unit's broker address and the
    broker certificate's names stay what they are. A cut drops everything both ways: a blackhole
    route on each side, the kernel's own drop, with no reset for either end to notice."""

    def __init__(self, index: int) -> None:
        tag = os.getpid() % 10000
        self.name = f"kc-chaos-{tag}-{index}"
        self.outer, self.inner = f"kcc{tag}h{index}", f"kcc{tag}n{index}"
        net = f"10.{100 + tag % 100}.{index}"
        self.host, self.unit = f"{net}.1", f"{net}.2"

    async def create(self) -> None:
        await ip("netns", "add", self.name)
        await ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        await ip("link", "set", self.inner, "netns", self.name)
        await ip("addr", "add", f"{self.host}/30", "dev", self.outer)
        await ip("-n", self.name, "addr", "add", f"{self.unit}/30", "dev", self.inner)
        await ip("link", "set", self.outer, "up")
        await ip("-n", self.name, "link", "set", self.inner, "up")
        Path(f"/proc/sys/net/ipv4/conf/{self.outer}/route_localnet").write_text("1")
        for key in ("route_localnet", "rp_filter"):
            await ip(
                "netns",
                "exec",
                self.name,
                "sysctl",
                "-qw",
                f"net.ipv4.conf.{self.inner}.{key}={int(key != 'rp_filter')}",
            )
        await self.restore()

    async def cut(self) -> None:
        await ip("-n", self.name, "route", "replace", "blackhole", "127.0.0.1/32")
        await ip("route", "replace", "blackhole", f"{self.unit}/32")

    async def restore(self) -> None:
        await ip("-n", self.name, "route", "replace", "127.0.0.1/32", "dev", self.inner, "src", self.unit)
        with contextlib.suppress(RuntimeError):  # none before the first cut
            await ip("route", "del", "blackhole", f"{self.unit}/32")

    async def delete(self) -> None:
        """The namespace and its pair (deleting one end deletes both), and any blackhole left."""
        for args in (("route", "del", "blackhole", f"{self.unit}/32"), ("netns", "del", self.name)):
            with contextlib.suppress(RuntimeError):
                await ip(*args)


class Unit:
    """One simulated unit in its own process (in its own network namespace when given one); killed
    and started again with the same data folder."""

    def __init__(
        self, index: int, broker_port: int, device_root: Path, fleet_dir: Path, logs: Path, net: Namespace | None
    ) -> None:
        self.index = index
        self.net = net
        self.prefix = ["ip", "netns", "exec", net.name] if net is not None else []
        self.args = [str(index), "1", str(broker_port), str(device_root), str(fleet_dir)]
        self.outbox = device_root / f"dev{index:03d}" / "outbox.sqlite"
        self.log = logs / f"unit-{index:03d}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.prefix,
                sys.executable,
                "-m",
                "bench.simulated_units",
                *self.args,
                stdin=PIPE,
                stdout=PIPE,
                stderr=log,
            )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        if line.strip() != b"ready":
            raise RuntimeError(f"unit {self.index} did not start; see {self.log}")
        self._drain = asyncio.create_task(self._read(self.proc.stdout))

    @staticmethod
    async def _read(out: asyncio.StreamReader) -> None:
        while await out.readline():
            pass  # the press times: the books come from the unit's outbox, not from these

    async def press(self) -> None:
        if self.proc is None or self.proc.stdin is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ConnectionError):
            self.proc.stdin.write(b"press\n")
            await self.proc.stdin.drain()

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()
        if self._drain is not None:
            await self._drain
        self.proc = None

    async def stop(self) -> None:
        if self.proc is None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # end of input ends the process
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def records(self) -> list[tuple[str, str, str | None]]:
        """(report id, state, case number told) of every report the unit made: its own outbox."""
        with contextlib.closing(sqlite3.connect(f"file:{self.outbox}?mode=ro", uri=True)) as db:
            return list(db.execute("SELECT report_id, state, case_no FROM outbox"))


class Worker:
    """One ``kuaichu server run`` process; killed and started again as its service manager would."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.port = load_server_config(config).http.port
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = await kuaichu("server", "run", "--config", str(self.config), stderr=log.fileno())
        await wait_listening(self.port, self.proc, timeout=180)  # a loaded machine starts a worker slowly

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


def persistent_broker(pki: FleetPki, root: Path) -> Mosquitto:
    """The fleet's broker configuration with persistence on, saved every few seconds (a kill -9
    loses what came since the last save, as it would in the field)."""
    port, server_port = free_port(), free_port()
    conf = pki.broker_conf(port, server_port)
    store = root / "mosquitto-store"
    store.mkdir()
    store.chmod(0o777)  # the broker may drop to its own user
    persisted = f"persistence true\npersistence_location {store}/\nautosave_interval 5\n"
    conf.write_text(conf.read_text().replace("persistence false\n", persisted))
    return Mosquitto(port, conf, root / "mosquitto.log", server_port)


class Postgres:
    """PostgreSQL's server, found by the port it listens on; killed with every process it started
    and started again with the postmaster's own command line, as its service manager would."""

    def __init__(self, url: str, log: Path) -> None:
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])
        self.log = log
        postmaster = psutil.Process(self._postmaster())
        self.command = postmaster.cmdline()
        # PostgreSQL refuses to run as root: as root, the cluster is the postgres user's (tests.services).
        self.prefix = ["runuser", "-u", postmaster.username(), "--"] if psutil.Process().username() == "root" else []
        self.proc: asyncio.subprocess.Process | None = None

    def _postmaster(self) -> int:
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == self.port and conn.pid is not None:
                return int(conn.pid)
        raise RuntimeError(f"nothing listens on PostgreSQL's port {self.port}")

    async def kill(self) -> None:
        postmaster = psutil.Process(self._postmaster())
        everything = [postmaster, *postmaster.children(recursive=True)]
        for proc in everything:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        await asyncio.to_thread(psutil.wait_procs, everything, 10)
        if self.proc is not None:
            await self.proc.wait()

    async def start(self) -> None:
        """Started again; tried again while the old server's shared memory is still being let go."""
        async with asyncio.timeout(60):
            while True:
                with self.log.open("ab") as log:
                    self.proc = await asyncio.create_subprocess_exec(
                        *self.prefix, *self.command, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
                    )
                while self.proc.returncode is None:
                    with contextlib.suppress(OSError):
                        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                        writer.close()
                        return
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.5)


@dataclass
class Fault:
    kind: str
    at: float  # epoch seconds of the injection
    detail: str
    recovered_s: float | None = None


@dataclass
class Books:
    reports: int = 0
    reports_lost: int = 0
    reports_duplicated: int = 0
    sms: int = 0
    sms_lost: int = 0
    sms_duplicated: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.reports_lost + self.sms_lost

    @property
    def duplicated(self) -> int:
        return self.reports_duplicated + self.sms_duplicated


@dataclass
class Campaign:
    units: list[Unit]
    workers: list[Worker]
    broker: Mosquitto
    postgres: Postgres | None
    provider: Provider
    sessions: async_sessionmaker[AsyncSession]
    rng: random.Random
    recover_limit_s: float
    cut_s: tuple[float, float]
    faults: list[Fault] = field(default_factory=list)
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    def later(self, delay: float, action: Callable[[], Awaitable[object]]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await action()

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settled(self) -> None:
        """Every restart scheduled so far has happened."""
        while self._background:
            await asyncio.gather(*self._background)

    async def inject(self, kind: str) -> Fault:
        at = time.time()
        if kind == "worker":
            worker = self.rng.choice(self.workers)
            await worker.kill()
            back = self.rng.uniform(1, 5)
            self.later(back, worker.start)
            return Fault(kind, at, f"worker on :{worker.port} killed, started again after {back:.1f} s")
        if kind == "broker":
            assert self.broker.proc is not None
            self.broker.proc.kill()
            await asyncio.to_thread(self.broker.proc.wait)
            back = self.rng.uniform(1, 5)
            self.later(back, lambda: asyncio.to_thread(self.broker.start))
            return Fault(kind, at, f"broker killed, started again after {back:.1f} s")
        if kind == "unit":
            unit = self.rng.choice(self.units)
            await unit.press()
            after = self.rng.uniform(0, 0.5)
            await asyncio.sleep(after)
            await unit.kill()
            back = self.rng.uniform(1, 3)
            self.later(back, unit.start)
            # From the kill: the press before it may have made its case already.
            return Fault(
                kind, time.time(), f"{unit_id(unit.index)} killed {after:.2f} s after a press, back after {back:.1f} s"
            )
        if kind == "net":
            unit = self.rng.choice(self.units)
            assert unit.net is not None
            cut = self.rng.uniform(*self.cut_s)
            await unit.net.cut()
            await asyncio.sleep(cut)
            through = await self._received_from(unit_id(unit.index), at + 1, time.time())  # 1 s: in flight at the cut
            await unit.net.restore()
            # From the cut's end: the unit cannot report before it, by design.
            detail = f"{unit_id(unit.index)} cut off the network for {cut:.1f} s ({through} cases came through it)"
            return Fault(kind, time.time(), detail)
        if kind == "postgres":
            assert self.postgres is not None
            await self.postgres.kill()
            back = self.rng.uniform(1, 5)
            self.later(back, self.postgres.start)
            return Fault(kind, at, f"PostgreSQL killed, started again after {back:.1f} s")
        outage = self.rng.uniform(5, 20)
        self.provider.fail_next = 10**9
        self.later(outage, self._sms_back)
        return Fault(kind, at, f"SMS provider answering 503 for {outage:.1f} s")

    async def _sms_back(self) -> None:
        self.provider.fail_next = 0

    async def recovery(self, fault: Fault) -> float | None:
        """Seconds from the fault until reports (or SMS) are handled again; None past the limit."""
        started = time.monotonic()
        while time.monotonic() - started < self.recover_limit_s:
            if fault.kind == "sms":
                taken = [at for at in self.provider.taken_at if at > fault.at]
                if taken:
                    return min(taken) - fault.at
            else:
                with contextlib.suppress(SQLAlchemyError, OSError):  # the database itself may be down
                    firsts = await self._first_cases_since(fault.at)
                    if len(firsts) == len(self.units):
                        return max(firsts.values()) - fault.at
            await asyncio.sleep(0.25)
        return None

    async def _received_from(self, device_id: str, start: float, end: float) -> int:
        """How many of the unit's cases the server received between two epoch times."""
        async with self.sessions() as session:
            rows = await session.scalars(select(Case.received_at).where(Case.device_id == device_id))
            return sum(1 for at in rows if start <= as_utc(at).timestamp() <= end)

    async def _first_cases_since(self, since: float) -> dict[str, float]:
        """Per unit, when the first case of a press made after ``since`` was received."""
        after = datetime.fromtimestamp(since, UTC)
        firsts: dict[str, float] = {}
        async with self.sessions() as session:
            rows = await session.execute(select(Case.device_id, Case.triggered_at, Case.received_at))
            for device_id, triggered_at, received_at in rows:
                if device_id is not None and as_utc(triggered_at) > after:
                    at = as_utc(received_at).timestamp()
                    firsts[device_id] = min(firsts.get(device_id, at), at)
        return firsts


async def pressing(units: list[Unit], every_s: float) -> None:
    while True:
        for unit in units:
            await unit.press()
        await asyncio.sleep(every_s)


async def queueing_sms(sessions: async_sessionmaker[AsyncSession], every_s: float) -> None:
    n = 0
    while True:
        n += 1
        # One that cannot be written (the database down) was never queued, and is not in the books.
        with contextlib.suppress(SQLAlchemyError, OSError):
            async with sessions.begin() as session:
                queue_sms(session, "code", f"1380000{n % 10000:04d}", code_text(f"{n % 1000000:06d}", 10), now_utc())
        await asyncio.sleep(every_s)


async def drained(units: list[Unit], sessions: async_sessionmaker[AsyncSession], limit_s: float) -> bool:
    """Wait until no unit has a report waiting and no SMS waits to be sent."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        records = [r for u in units for r in await asyncio.to_thread(u.records)]
        async with sessions() as session:
            waiting = (await session.scalars(select(SmsMessage.id).where(SmsMessage.status == "pending"))).all()
        if not waiting and all(state != "pending" for _, state, _ in records):
            return True
        await asyncio.sleep(0.5)
    return False


async def books(units: list[Unit], sessions: async_sessionmaker[AsyncSession], provider: Provider) -> Books:
    out = Books()
    told: dict[str, tuple[str, str, str | None]] = {}  # report id: (unit, state, case number told)
    for unit in units:
        for report_id, state, case_no in await asyncio.to_thread(unit.records):
            told[report_id] = (unit_id(unit.index), state, case_no)
    out.reports = len(told)
    async with sessions() as session:
        cases = (await session.execute(select(Case.report_id, Case.device_id, Case.case_no))).all()
        sms_ids = (await session.scalars(select(SmsMessage.id))).all()
    per_report = Counter(report_id for report_id, _, _ in cases)
    stored = {report_id: (device_id, case_no) for report_id, device_id, case_no in cases}
    for report_id, (device, state, case_no) in told.items():
        if report_id not in stored:
            out.reports_lost += 1
            out.notes.append(f"report {report_id} of {device} ({state}): no case")
        elif state != "accepted":
            out.reports_lost += 1
            out.notes.append(f"report {report_id} of {device}: stored but the unit was never answered ({state})")
        elif stored[report_id] != (device, case_no):
            out.reports_duplicated += 1
            out.notes.append(f"report {report_id} of {device}: told {case_no}, stored as {stored[report_id]}")
    for report_id, count in per_report.items():
        if count > 1:
            out.reports_duplicated += count - 1
            out.notes.append(f"report {report_id}: {count} cases")
        if report_id not in told:
            out.reports_duplicated += 1
            out.notes.append(f"case of report {report_id}: no unit made it")
    taken = Counter(int(m.group(1)) for body in provider.received if (m := REF.fullmatch(str(body.get("ref")))))
    out.sms = len(sms_ids)
    for sms_id in sms_ids:
        if taken[sms_id] == 0:
            out.sms_lost += 1
            out.notes.append(f"SMS kc-{sms_id}: never reached the provider")
        elif taken[sms_id] > 1:
            out.sms_duplicated += taken[sms_id] - 1
            out.notes.append(f"SMS kc-{sms_id}: taken {taken[sms_id]} times")
    return out


async def run(args: argparse.Namespace) -> Books:
    print(load_line(), flush=True)
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="kc-bench-chaos-"))
    logs = root / "logs"
    logs.mkdir()
    shm = Path("/dev/shm")
    device_root = Path(tempfile.mkdtemp(prefix="kc-bench-chaos-units-", dir=shm if shm.is_dir() else None))
    with contextlib.ExitStack() as cleanup:
        pki = cleanup.enter_context(session_pki())
        database = cleanup.enter_context(postgresql()) if args.postgresql else None
        postgres = Postgres(database, logs / "postgresql.log") if database is not None else None
        cuts = args.cut_s is not None and os.geteuid() == 0
        kinds = tuple(k for k in KINDS if (k != "postgres" or postgres) and (k != "net" or cuts))
        nets = [Namespace(i) for i in range(args.units)] if cuts else []
        broker = persistent_broker(pki, root)
        await asyncio.to_thread(broker.start)
        for i in range(args.units):  # issued here: the unit processes only read their bundles
            pki.device_tls(unit_id(i))
        provider_port = free_port()
        (root / "sms-token").write_text(TOKEN)
        (root / "receipt-token").write_text(RECEIPT_TOKEN)
        sms = (
            f'\n[sms]\ngateway_url = "http://127.0.0.1:{provider_port}/send"\ntoken_file = "{root / "sms-token"}"\n'
            f'receipt_token_file = "{root / "receipt-token"}"\n' + SMS_CONFIG
        )
        pg = f'\n[database]\nurl = "{database}"\n' if database is not None else ""
        configs = worker_configs(root, pki, broker.port, args.workers, pg + sms)
        cfg = load_server_config(configs[0])
        async with contextlib.AsyncExitStack() as stack:
            await open_state(cfg, stack)  # the schema and the units, as the first start makes them
        engine = make_engine(cfg.database_url)
        sessions = make_sessionmaker(engine)
        workers = [Worker(c, logs / f"worker-{n + 1}.log") for n, c in enumerate(configs)]
        units = [
            Unit(i, broker.port, device_root, pki.layout.root, logs, nets[i] if nets else None)
            for i in range(args.units)
        ]
        background: list[asyncio.Task[None]] = []
        try:
            async with sms_provider(
                provider_port, f"http://127.0.0.1:{workers[0].port}", receipt_delay_s=0.0
            ) as provider:
                for net in nets:
                    await net.create()
                await asyncio.gather(*(w.start() for w in workers))
                for unit in units:
                    await unit.start()
                campaign = Campaign(
                    units,
                    workers,
                    broker,
                    postgres,
                    provider,
                    sessions,
                    rng,
                    args.recover_limit_s,
                    tuple(args.cut_s or (0, 0)),
                )
                background = [
                    asyncio.create_task(pressing(units, args.press_s)),
                    asyncio.create_task(queueing_sms(sessions, args.sms_s)),
                ]
                print(
                    f"{args.units} simulated units (each its own process), {args.workers} server workers on "
                    f"{'PostgreSQL' if postgres else 'SQLite'}, "
                    f"a persistent broker, the SMS stand-in; {args.faults} faults, seed {args.seed}",
                    flush=True,
                )
                started = time.time()
                await asyncio.sleep(rng.uniform(2, 4))
                deck: list[str] = []
                for n in range(args.faults):
                    if args.limit_s is not None and time.time() - started > args.limit_s:
                        print(f"--limit-s {args.limit_s:g} reached after {n} faults", flush=True)
                        break
                    deck = deck or rng.sample(kinds, len(kinds))
                    fault = await campaign.inject(deck.pop())
                    fault.recovered_s = await campaign.recovery(fault)
                    await campaign.settled()
                    campaign.faults.append(fault)
                    took = "not recovered" if fault.recovered_s is None else f"recovered in {fault.recovered_s:.1f} s"
                    print(
                        f"fault {n + 1:3d} at {fault.at - started:6.1f} s: {fault.kind:8s} {fault.detail}; {took}",
                        flush=True,
                    )
                    await asyncio.sleep(rng.uniform(1, 3))
                for task in background:
                    task.cancel()
                empty = await drained(units, sessions, args.drain_s)
                result = await books(units, sessions, provider)
                if not empty:
                    result.notes.append(f"outboxes not empty after {args.drain_s:g} s")
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*(u.stop() for u in units))
            await asyncio.gather(*(w.stop() for w in workers))
            for net in nets:
                await net.delete()
            await engine.dispose()
            broker.stop()
    faults = campaign.faults
    recovered = sorted(f.recovered_s for f in faults if f.recovered_s is not None)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print("faults by kind: " + " ".join(f"{k}={sum(1 for f in faults if f.kind == k)}" for k in kinds))
    for kind in kinds:
        times = sorted(f.recovered_s for f in faults if f.kind == kind and f.recovered_s is not None)
        if times:
            print(f"  {kind:8s} recovered median {percentile(times, 0.5):5.1f} s  max {times[-1]:5.1f} s")
    print(f"not recovered within {args.recover_limit_s:g} s: {len(faults) - len(recovered)}")
    print(
        f"reports: {result.reports} made, lost {result.reports_lost}, duplicated {result.reports_duplicated}; "
        f"SMS: {result.sms} queued, lost {result.sms_lost}, duplicated {result.sms_duplicated}"
    )
    for note in result.notes[:50]:
        print("  " + note)
    print(f"logs: {logs}")
    p99 = percentile(recovered, 0.99) if recovered else float("nan")
    print(
        f"faults={len(faults)} reports={result.reports} lost={result.lost} duplicated={result.duplicated} "
        f"recovered_p99_s={p99:.1f}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--units", type=int, default=4, help="simulated units, each in its own process")
    parser.add_argument("--workers", type=int, default=2, help="server workers sharing one SQLite database")
    parser.add_argument("--limit-s", type=float, help="make no new fault after this long; the books follow")
    parser.add_argument("--postgresql", action="store_true", help="a throwaway PostgreSQL cluster, killed too")
    parser.add_argument(
        "--cut-s",
        type=float,
        nargs=2,
        default=(30, 90),
        metavar=("LEAST", "MOST"),
        help="a network cut lasts this long (needs root: network namespaces)",
    )
    parser.add_argument("--no-cuts", dest="cut_s", action="store_const", const=None, help="no network cuts")
    parser.add_argument("--press-s", type=float, default=1.5, help="every unit's button is pressed this often")
    parser.add_argument("--sms-s", type=float, default=2.0, help="a one-time-code SMS is queued this often")
    parser.add_argument("--recover-limit-s", type=float, default=120, help="a fault not recovered by then is counted")
    parser.add_argument("--drain-s", type=float, default=120, help="at the end, wait this long for outboxes to empty")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
