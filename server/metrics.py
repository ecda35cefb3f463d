"""What a worker tells Prometheus and the load balancer: ``/metrics``, ``/healthz`` and ``/readyz``
(docs/operations.md; the alerting rules in server/install/alerts.yml read these names).

Counts that live in the database (cases by status, calls, the outboxes, devices, reviews) are read
once per scrape, so every worker reports the same figures and an alert aggregates them with
``max``; the reports this worker took in and its requests' latencies are its own. ``/metrics`` is
served only to the addresses in ``[metrics] allow_from`` (by default loopback and the private
ranges): it names no person, but it is no business of the public either.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from cryptography import x509
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.state import ServerState
from server.backup import read_stamp
from server.cases import now_utc
from server.config import ServerConfig
from server.db.insurers import WebhookMessage, WebhookStatus
from server.db.models import Call, Case, Device, SmsMessage
from server.db.portal import Review
from server.errors import Forbidden
from server.lifecycles.call import CallState
from server.lifecycles.review import ReviewStatus
from server.retention import RetentionJob

# Which deadline an open review is waiting on, by its stage.
REVIEW_DUE = {
    ReviewStatus.REQUESTED: Review.forward_due,
    ReviewStatus.FORWARDED: Review.decide_due,
    ReviewStatus.ACCEPTED: Review.conclude_due,
}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass
class Snapshot:
    """The database's figures as of the scrape."""

    cases: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    outbox_depth: dict[str, int] = field(default_factory=dict)
    outbox_oldest_s: dict[str, float] = field(default_factory=dict)
    webhooks_dead: int = 0
    devices_online: int = 0
    devices_active: int = 0
    review_due_s: dict[str, float] = field(default_factory=dict)
    disk_free: int = 0
    disk_total: int = 0
    backup_at: float = 0.0
    watched_certs: dict[str, float] = field(default_factory=dict)


async def _counts(session: AsyncSession, column: Any, *where: Any) -> dict[str, int]:
    rows = await session.execute(select(column, func.count()).where(*where).group_by(column))
    return {str(key): int(n) for key, n in rows.all()}


def _age(now: datetime, oldest: datetime | None) -> float:
    return (now - oldest).total_seconds() if oldest is not None else 0.0


async def read_snapshot(state: ServerState, now: datetime) -> Snapshot:
    snap = Snapshot()
    async with state.cases.sessions() as session:
        snap.cases = await _counts(session, Case.status)
        snap.calls = await _counts(session, Call.state, Call.state != CallState.ENDED)
        for name, model, pending in (
            ("sms", SmsMessage, SmsMessage.status == "pending"),
            ("insurers", WebhookMessage, WebhookMessage.status == WebhookStatus.PENDING),
        ):
            depth, oldest = (
                await session.execute(select(func.count(), func.min(model.created_at)).where(pending))
            ).one()
            snap.outbox_depth[name] = int(depth)
            snap.outbox_oldest_s[name] = _age(now, oldest)
        snap.webhooks_dead = int(
            await session.scalar(select(func.count()).where(WebhookMessage.status == WebhookStatus.DEAD)) or 0
        )
        snap.devices_online = int(await session.scalar(select(func.count()).where(Device.online.is_(True))) or 0)
        snap.devices_active = int(await session.scalar(select(func.count()).where(Device.status == "active")) or 0)
        for stage, due in REVIEW_DUE.items():
            nearest = await session.scalar(select(func.min(due)).where(Review.status == stage))
            if nearest is not None:
                snap.review_due_s[stage.value] = (nearest - now).total_seconds()
    snap.disk_free, snap.disk_total = await asyncio.to_thread(_disk_usage, state.cfg.evidence_dir)
    snap.backup_at = await asyncio.to_thread(read_stamp, state.cfg.backup_stamp)
    snap.watched_certs = await asyncio.to_thread(watched_expiry, state.cfg.metrics.watch_cert_files)
    return snap


def certificate_expiry(cfg: ServerConfig) -> dict[str, float]:
    """When each certificate this worker serves or connects with stops being valid (Unix seconds),
    the earliest in its file: an expired intermediate or a second CA breaks the handshake as surely.
    Read as the worker starts, since that is when it loads them: a renewed file counts once the
    worker is restarted to serve it."""
    files = {
        "console": cfg.http.tls_cert_file,
        "insurer_api": cfg.insurer_api.tls_cert_file,
        "insurer_client_ca": cfg.insurer_api.client_ca_file,
        "broker_client": cfg.broker.tls.cert_file if cfg.broker.tls else None,
        "broker_ca": cfg.broker.tls.ca_file if cfg.broker.tls else None,
    }
    found = {}
    for name, path in files.items():
        if path is None:
            continue
        try:
            found[name] = _earliest_expiry(path)
        except (OSError, ValueError):
            continue  # the worker itself refuses to start on such a file, with the reason
    return found


def watched_expiry(files: dict[str, Path]) -> dict[str, float]:
    """The expiry of ``[metrics] watch_cert_files``, certificates the worker does not serve (nginx's,
    when nginx ends TLS), read at every scrape: their owner renews them in place (an ACME client and
    a reload of nginx), without restarting the worker, and the alert must clear once it has. One that
    cannot be read counts as expired long ago (0): it was meant to be watched, and leaving it out
    would look like nothing to worry about."""
    found = {}
    for name, path in files.items():
        try:
            found[name] = _earliest_expiry(path)
        except (OSError, ValueError):
            found[name] = 0.0
    return found


def _earliest_expiry(path: Path) -> float:
    return min(c.not_valid_after_utc for c in x509.load_pem_x509_certificates(path.read_bytes())).timestamp()


def _disk_usage(folder: Path) -> tuple[int, int]:
    """Free and total bytes of the disk the evidence goes to, before the first file has made its
    folder too."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    return usage.free, usage.total


def _gauge(name: str, doc: str, values: dict[str, float], label: str) -> GaugeMetricFamily:
    metric = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        metric.add_metric([key], value)
    return metric


class WorkerMetrics(Collector):
    """One worker's registry: its own counters and histogram, and the last snapshot as gauges."""

    def __init__(
        self,
        state: ServerState,
        intake_tally: Counter[tuple[str, str]],
        retention: RetentionJob,
        cert_expiry: dict[str, float],
    ) -> None:
        self.state = state
        self._tally = intake_tally
        self._retention = retention
        self._cert_expiry = cert_expiry
        self._snapshot = Snapshot()
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "kuaichu_http_request_duration_seconds",
            "HTTP requests by method, route template and status class",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(self)
        self._lock = asyncio.Lock()

    async def render(self) -> bytes:
        async with self._lock:  # two scrapes at once read the database once each, not interleaved
            self._snapshot = await read_snapshot(self.state, now_utc())
            return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        snap, worker = self._snapshot, self.state.cfg.server.worker_id
        info = GaugeMetricFamily("kuaichu_worker_info", "this worker and what it runs", labels=["worker_id", "runs"])
        info.add_metric([worker, ",".join(sorted(self.state.cfg.server.runs))], 1)
        yield info
        received = CounterMetricFamily("kuaichu_reports_received", "reports this worker took in, refused ones too")
        received.add_metric([], sum(self._tally.values()))
        yield received
        refused = CounterMetricFamily(
            "kuaichu_reports_refused", "reports this worker refused, by reason", labels=["reason"]
        )
        for (outcome, reason), n in sorted(self._tally.items()):
            if outcome == "refused":
                refused.add_metric([reason], n)
        yield refused
        deleted = CounterMetricFamily(
            "kuaichu_retention_deleted_files", "evidence files this worker's retention deleted"
        )
        deleted.add_metric([], self._retention.deleted_files)
        yield deleted
        yield _gauge("kuaichu_cases", "cases by status", {k: float(v) for k, v in snap.cases.items()}, "status")
        yield _gauge(
            "kuaichu_calls", "calls not ended, by state", {k: float(v) for k, v in snap.calls.items()}, "state"
        )
        yield _gauge("kuaichu_outbox_depth", "messages waiting to be sent", dict(snap.outbox_depth), "outbox")
        yield _gauge(
            "kuaichu_outbox_oldest_seconds",
            "age of the oldest message waiting (0: none)",
            snap.outbox_oldest_s,
            "outbox",
        )
        yield GaugeMetricFamily("kuaichu_insurer_events_dead", "insurers' events given up on", value=snap.webhooks_dead)
        yield GaugeMetricFamily("kuaichu_devices_online", "devices online now", value=snap.devices_online)
        yield GaugeMetricFamily("kuaichu_devices_active", "devices in service", value=snap.devices_active)
        yield _gauge(
            "kuaichu_review_next_due_seconds",
            "time left before the nearest deadline of the open reviews at each stage (negative: overdue)",
            snap.review_due_s,
            "stage",
        )
        yield GaugeMetricFamily("kuaichu_evidence_disk_free_bytes", "free space for evidence", value=snap.disk_free)
        yield GaugeMetricFamily("kuaichu_evidence_disk_total_bytes", "size of the evidence disk", value=snap.disk_total)
        yield GaugeMetricFamily(
            "kuaichu_backup_last_success_timestamp_seconds",
            "when the last scheduled backup of this machine finished (0: never)",
            value=snap.backup_at,
        )
        yield _gauge(
            "kuaichu_tls_cert_not_after_seconds",
            "when each certificate this worker serves, connects with or watches expires",
            self._cert_expiry | snap.watched_certs,
            "cert",
        )


class RequestTimer:
    """Times every HTTP request by its route's template (never the raw path: ids would make a
    series per case)."""

    def __init__(self, app: ASGIApp, metrics: WorkerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.latency.labels(scope["method"], route, f"{status // 100}xx").observe(
                time.perf_counter() - started
            )


router = APIRouter(tags=["operations"])


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """The process answers: for a load balancer's liveness check."""
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """Ready for traffic: the database answers and the broker connection is up."""
    metrics: WorkerMetrics = request.app.state.metrics
    problems = []
    try:
        async with asyncio.timeout(5), metrics.state.cases.sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach it is the answer, not an error of this route
        problems.append(f"数据库无法访问 database unreachable: {type(exc).__name__}")
    # With several brokers, one away is not a reason to take the worker out: the units on the others
    # are served, and every worker would be out at once. It is named, for the alerting.
    down = metrics.state.outbound.down()
    if len(down) == len(metrics.state.outbound.sessions):
        problems.append("未连接消息服务器 broker not connected")
    body = {"status": "ready" if not problems else "not ready", "problems": problems, "brokers_down": down}
    return JSONResponse(body, status_code=200 if not problems else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics_page(request: Request) -> Response:
    metrics: WorkerMetrics = request.app.state.metrics
    client = request.client.host if request.client else ""
    try:
        allowed = any(ip_address(client) in net for net in metrics.state.cfg.metrics.allow_from)
    except ValueError:
        allowed = False
    if not allowed:
        raise Forbidden(
            "只允许监控服务器访问 /metrics：请在 [metrics] allow_from 中加入其地址。(metrics: address not allowed)"
        )
    return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, metrics: WorkerMetrics) -> None:
    """Before the app serves: the routes, and the timer around every request."""
    app.state.metrics = metrics
    app.include_router(router)
    app.add_middleware(RequestTimer, metrics=metrics)
