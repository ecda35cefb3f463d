"""Determinations fanned out to three insurers while one of them is down: is anything lost or
delivered twice, and how long from an event written to the insurer's acknowledgement.

Starts the real stack as the other benchmarks do (a provisioned mutual-TLS Mosquitto, ``--workers``
server workers as ``kuaichu server run`` processes sharing one SQLite database, each running its
webhook sender) and three local HTTP servers playing PICC, PAIC and CPIC's endpoints, which check
every signature with ``standardwebhooks``. ``--cases`` delivered cases are written at ``--rate``
a second, each with two parties insured by two of the three companies, and their events queued
by ``queue_determination``: the call the SMS outbox makes in the transaction that marks a case
delivered. PAIC answers 503 for the first ``--outage-s`` seconds.

    .venv/bin/python -m bench.insurers [--cases 1000] [--rate 100] [--outage-s 20] [--workers 2]

``p*_s``: from the event's row being written (its ``created_at``) to the insurer's first 2xx.
``lost``: events never acknowledged; ``duplicates``: an event acknowledged more than once, or one
case version reaching an insurer under two webhook ids. Last line:
``deliveries=… lost=0 duplicates=0 p99_s=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.stack import kuaichu, load_line, percentile, wait_listening, worker_configs
from server.cases import now_utc
from server.config import load_server_config
from server.db.engine import make_engine, make_sessionmaker
from server.db.insurers import WebhookMessage, WebhookStatus
from server.db.models import Case, Device, Party, UnitKey, User
from server.insurers.directory import add_insurer
from server.insurers.events import queue_determination
from server.worker import open_state
from tests.insurer_endpoints import Endpoint, insurer_endpoints, specs
from tests.pki import session_pki
from tests.review_data import issue
from tests.services import free_port

CODES = ("PICC", "PAIC", "CPIC")
PAIRS = (("PICC", "PAIC"), ("PAIC", "CPIC"), ("CPIC", "PICC"))  # each case's two parties' insurers
INSURERS_CONFIG = "\n[insurers]\npoll_s = 0.5\nretry_first_s = 1\nretry_max_s = 8\ntimeout_s = 5\n"


async def _fixtures(sessions: async_sessionmaker[AsyncSession]) -> int:
    """What a determination row refers to: a device, an officer, a unit key."""
    at = now_utc()
    async with sessions.begin() as session:
        session.add(Device(id="car-bench", kind="car", status="active"))
        officer = User(username="bench-officer", password_hash="x", role="officer", display_name="o", created_at=at)
        session.add(officer)
        await session.flush()
        session.add(UnitKey(key_id="k1", unit_adcode="530102", public_key="x", created_at=at))
        return officer.id


async def _deliver(sessions: async_sessionmaker[AsyncSession], n: int, officer: int) -> int:
    """Case ``n`` delivered, its events queued in the same transaction; how many were queued."""
    at = now_utc()
    first, second = PAIRS[n % len(PAIRS)]
    async with sessions.begin() as session:
        case = Case(
            case_no=f"5301022026120{n:05d}",
            report_id=f"bench{n:021d}",
            device_id="car-bench",
            unit_adcode="530102",
            status="delivered",
            trigger="button",
            triggered_at=at - timedelta(hours=1),
            received_at=at - timedelta(hours=1),
            delivered_at=at,
            position_source="gnss",
            report={"device_kind": "car", "health": {}},
        )
        session.add(case)
        await session.flush()
        for position, (name, code) in enumerate((("张三", first), ("李四", second)), start=1):
            session.add(
                Party(
                    case_id=case.id,
                    position=position,
                    role="driver",
                    name=name,
                    id_number="530102199001011234",
                    phone=f"1380000{n % 10000:04d}",
                    policy_no=f"{code}2026{n:08d}{position}",
                    updated_at=at,
                    updated_by=officer,
                )
            )
        await session.flush()
        determination = await issue(session, case, officer, 1, at)
        return await queue_determination(session, case, determination.id, now_utc())


async def _pending(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        count = await session.scalar(select(func.count()).where(WebhookMessage.status != WebhookStatus.DELIVERED))
    return int(count or 0)


async def _written(sessions: async_sessionmaker[AsyncSession]) -> dict[str, float]:
    async with sessions() as session:
        rows = await session.execute(select(WebhookMessage.webhook_id, WebhookMessage.created_at))
        return {webhook_id: created.timestamp() for webhook_id, created in rows}


def _duplicates(endpoints: dict[str, Endpoint]) -> int:
    twice = sum(len(e.acknowledged) - len(e.unique()) for e in endpoints.values())
    for e in endpoints.values():
        versions: dict[tuple[str, str, int], set[str]] = {}
        for r in e.acknowledged:
            data = r.event["data"]
            versions.setdefault((data["case_no"], r.event["type"], data["determination"]["version"]), set()).add(
                r.webhook_id
            )
        twice += sum(len(ids) - 1 for ids in versions.values())
    return twice


async def run(cases: int, rate: float, outage_s: float, workers: int, limit_s: float) -> None:
    print(load_line(), flush=True)
    root = Path(tempfile.mkdtemp(prefix="kc-bench-insurers-"))
    ports = {code: free_port() for code in CODES}
    with session_pki() as pki, pki.mosquitto(root / "mosquitto.log") as broker:
        configs = worker_configs(root, pki, broker.port, workers, INSURERS_CONFIG)
        cfg = load_server_config(configs[0])
        async with contextlib.AsyncExitStack() as stack:
            await open_state(cfg, stack)  # the schema and the units, as the first start makes them
        engine = make_engine(cfg.database_url)
        sessions = make_sessionmaker(engine)
        async with insurer_endpoints(ports) as endpoints:
            secrets = {s.code: (await add_insurer(sessions, s, now_utc())).secret for s in specs(endpoints)}
            officer = await _fixtures(sessions)
            log = (root / "workers.log").open("w")  # their warnings (each 503) go here, not into the figures
            servers = [await kuaichu("server", "run", "--config", str(c), stderr=log.fileno()) for c in configs]
            try:
                for proc, c in zip(servers, configs, strict=True):
                    await wait_listening(load_server_config(c).http.port, proc)
                endpoints["PAIC"].answer = 503
                started = time.monotonic()
                back = asyncio.get_running_loop().call_later(outage_s, setattr, endpoints["PAIC"], "answer", 200)
                queued = 0
                for n in range(cases):
                    queued += await _deliver(sessions, n, officer)
                    await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
                written_s = time.monotonic() - started
                while await _pending(sessions) and time.monotonic() - started < limit_s:
                    await asyncio.sleep(0.5)
                back.cancel()
                written = await _written(sessions)
            finally:
                for proc in servers:
                    proc.terminate()
                for proc in servers:
                    await proc.wait()
                await engine.dispose()
                log.close()
            acked = {wid: at for e in endpoints.values() for wid, at in e.first_ack.items()}
            lost = sum(1 for wid in written if wid not in acked)
            latency = sorted(acked[wid] - created for wid, created in written.items() if wid in acked)
            by_insurer = {
                e.code: sorted(at - written[wid] for wid, at in e.first_ack.items() if wid in written)
                for e in endpoints.values()
            }
            requests = sum(len(e.requests) for e in endpoints.values())
            bad = sum(1 for e in endpoints.values() for r in e.acknowledged if not r.verifies_with(secrets[e.code]))
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(
        f"cases={cases} written in {written_s:.1f} s ({rate:g}/s); workers={workers}; "
        f"PAIC answered 503 for the first {outage_s:g} s; POSTs={requests}; bad signatures={bad}"
    )
    if latency:
        print(
            f"p50_s={percentile(latency, 0.5):.2f} p95_s={percentile(latency, 0.95):.2f} "
            f"max_s={latency[-1]:.2f} (event written -> first 2xx)"
        )
        print("p99_s by insurer: " + " ".join(f"{c}={percentile(v, 0.99):.2f}" for c, v in by_insurer.items() if v))
    print(f"worker logs: {root / 'workers.log'}")
    p99 = percentile(latency, 0.99) if latency else float("nan")
    print(f"deliveries={queued} lost={lost} duplicates={_duplicates(endpoints)} p99_s={p99:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100, help="cases delivered a second")
    parser.add_argument("--outage-s", type=float, default=20, help="PAIC answers 503 this long")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes, each with its sender")
    parser.add_argument("--limit-s", type=float, default=300, help="give up waiting for the last deliveries")
    args = parser.parse_args()
    asyncio.run(run(args.cases, args.rate, args.outage_s, args.workers, args.limit_s))


if __name__ == "__main__":
    main()
