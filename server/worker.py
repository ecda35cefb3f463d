"""One server worker: database, MQTT intake, the console's HTTP server and the live calls in one
event loop, or those of them its ``[server] runs`` names."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.api.app import create_app, create_insurers_app
from server.api.https import redirect_app
from server.api.state import ServerState
from server.calls.degraded import SceneReceiver
from server.calls.manager import CallManager
from server.calls.participants import PhoneCalls
from server.calls.signalling import CallLink, Signalling
from server.calls.store import CallStore
from server.calls.uploads import UploadReceiver
from server.cases import CaseStore
from server.casework.clearing import ClearingWatch
from server.casework.determination import Determinations
from server.casework.font import DocumentFont
from server.casework.keys import UnitKeys
from server.casework.registry import TableRegistry
from server.casework.store import CaseWork
from server.config import ServerConfig, WorkerPart
from server.db.engine import make_engine, make_sessionmaker, make_sync_engine, upgrade_schema
from server.delivery.outbox import SmsOutbox
from server.delivery.sms import HttpSmsGateway
from server.devices import DeviceStore
from server.geo.fences import FenceSet
from server.insurers.api_access import InsurerApi
from server.insurers.claim_events import OutboxClaimEvents
from server.insurers.claims import Claims
from server.insurers.links import InsurerLinks
from server.insurers.tls import listener_config
from server.insurers.webhooks import WebhookOutbox
from server.intake import Intake, intake_sessions
from server.live_feed import CaseHub
from server.metrics import WorkerMetrics, certificate_expiry
from server.metrics import install as install_metrics
from server.outbound import Outbound
from server.phones.photos import PhotoUploads
from server.phones.reports import PhoneReports
from server.plates import Plates
from server.portal.access import PortalAccess
from server.portal.review_desk import ReviewDesk
from server.portal.reviews import Reviews
from server.portal.views import PortalViews
from server.retention import RetentionJob
from server.rollouts import Rollouts
from server.users import UserStore

logger = logging.getLogger(__name__)


class _EmbeddedHttp(uvicorn.Server):
    """uvicorn inside the worker's event loop: the process, not uvicorn, owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def load_fences(cfg: ServerConfig) -> FenceSet:
    if cfg.geo.districts_file and cfg.geo.city_file:
        return FenceSet.load(cfg.geo.districts_file, cfg.geo.city_file)
    return FenceSet.load_default()


async def _warm_font(state: ServerState) -> None:
    """The determination's font is built once (seconds of CPU) before anyone needs it: on a
    console, the only part that issues determinations."""
    if WorkerPart.CONSOLE not in state.cfg.server.runs:
        return
    try:
        await asyncio.to_thread(state.determinations.fonts.prepare)
    except Exception:
        logger.exception("the determination font could not be built: issuing will fail until it can")


def sms_gateway(cfg: ServerConfig) -> HttpSmsGateway | None:
    if cfg.sms.gateway_url is None or cfg.sms.token_file is None:
        return None
    return HttpSmsGateway(cfg.sms.gateway_url, read_secret(cfg.sms.token_file, "sms.token_file"), cfg.sms.timeout_s)


def read_secret(path: Path, key: str) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RuntimeError(f"{key}: cannot read {path}: {exc.strerror}") from None
    if not secret:
        raise RuntimeError(f"{key}: {path} is empty")
    return secret


@dataclass(frozen=True)
class Receivers:
    """What only a running worker starts: its broker connections in, and what they feed."""

    intake: Intake
    signalling: Signalling | None  # on the worker that takes the live calls


def _calls(
    cfg: ServerConfig, sessions: async_sessionmaker[AsyncSession], hub: CaseHub, stack: AsyncExitStack
) -> tuple[CallManager, UploadReceiver, Signalling, PhoneCalls]:
    """The media worker's calls and uploads, each given the signalling's way out when built."""
    link = CallLink(cfg)
    store = CallStore(sessions, cfg.evidence_dir)
    calls = CallManager(cfg.calls, store, hub, link.publish)
    stack.push_async_callback(calls.close)
    uploads = UploadReceiver(store, hub, link.publish, cfg.server.data_dir / "uploads")
    scenes = SceneReceiver(calls, store, hub, cfg.server.data_dir / "uploads")
    return calls, uploads, Signalling(link, calls, uploads, scenes), PhoneCalls(calls, store)


async def open_state(cfg: ServerConfig, stack: AsyncExitStack) -> tuple[ServerState, Receivers]:
    """The database-backed stores, with the schema upgraded and the units in place, each built with
    the worker's way out (``Outbound``) it sends through; nothing connects until ``serve`` runs."""
    cfg.server.data_dir.mkdir(parents=True, exist_ok=True)
    if cfg.database.migrate:
        await upgrade_schema(cfg.database_url)
    engine = make_engine(cfg.database_url)
    stack.push_async_callback(engine.dispose)
    writer = make_sync_engine(cfg.database_url)
    stack.callback(writer.dispose)
    sessions = make_sessionmaker(engine)
    cases = CaseStore(sessions, writer, await asyncio.to_thread(load_fences, cfg))
    stack.callback(cases.close)
    await cases.ensure_units()
    devices = DeviceStore(sessions)
    hub = CaseHub()
    outbound = Outbound(intake_sessions(cfg), hub)
    sms = SmsOutbox(
        sessions, sms_gateway(cfg), cfg.sms, cfg.server.worker_id, outbound, cfg.server.data_dir / "sms-taken"
    )
    stack.push_async_callback(sms.close)
    portal = PortalAccess(sessions, cfg.portal, cfg.public_url, sms.wake)
    work = CaseWork(sessions, TableRegistry(sessions), portal)
    keys = UnitKeys(sessions, cfg.server.data_dir / "keys")
    fonts = DocumentFont(cfg.font_cache_dir)
    determinations = Determinations(sessions, keys, cfg.documents_dir, cfg.public_url, fonts, sms, outbound)
    plates = Plates(sessions, outbound)
    rollouts = Rollouts(sessions, outbound, cfg.updates.no_answer_h * 3600)
    reviews = Reviews(sessions, cfg.portal, cfg.evidence_dir, cfg.public_url, sms.wake, outbound.case_changed)
    review_desk = ReviewDesk(sessions, cfg.portal, cfg.public_url, sms.wake, outbound.case_changed)
    # One signer for the links the webhooks send and the API checks: its key is read once.
    links = InsurerLinks(sessions, cfg.public_url, cfg.insurers.link_ttl_s)
    webhooks = WebhookOutbox(sessions, cfg.insurers, links)
    stack.push_async_callback(webhooks.close)
    calls, uploads, signalling, phone_calls = (
        _calls(cfg, sessions, hub, stack) if WorkerPart.MEDIA in cfg.server.runs else (None,) * 4
    )
    state = ServerState(
        cfg=cfg,
        cases=cases,
        users=UserStore(sessions),
        devices=devices,
        hub=hub,
        work=work,
        determinations=determinations,
        sms=sms,
        plates=plates,
        outbound=outbound,
        portal=portal,
        portal_views=PortalViews(sessions),
        reviews=reviews,
        review_desk=review_desk,
        phone_reports=PhoneReports(cases, cfg.phone, hub, outbound),
        photos=PhotoUploads(sessions, cfg.phone, cfg.evidence_dir, cfg.server.data_dir / "photo-uploads", hub),
        webhooks=webhooks,
        insurer_api=InsurerApi(sessions, cfg.insurer_api, links),
        claims=Claims(sessions, OutboxClaimEvents(), sms.wake, outbound.case_changed),
        rollouts=rollouts,
        receipt_token=read_secret(cfg.sms.receipt_token_file, "sms.receipt_token_file")
        if cfg.sms.receipt_token_file
        else None,
        calls=calls,
        uploads=uploads,
        phone_calls=phone_calls,
    )
    return state, Receivers(Intake(cases, devices, hub, outbound, plates, rollouts), signalling)


def _redirect_config(cfg: ServerConfig) -> uvicorn.Config:
    assert cfg.http.redirect_port is not None
    return uvicorn.Config(
        redirect_app(cfg.public_url),
        host=cfg.http.host,
        port=cfg.http.redirect_port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )


async def serve(cfg: ServerConfig, ready: asyncio.Event | None = None) -> None:
    async with AsyncExitStack() as stack:
        state, receivers = await open_state(cfg, stack)
        intake, signalling = receivers.intake, receivers.signalling
        if state.calls is not None:
            await state.calls.recover()
        retention = RetentionJob(
            state.cases.sessions, cfg.retention, cfg.evidence_dir, cfg.server.data_dir / "playable"
        )
        app = create_app(state)
        certs = await asyncio.to_thread(certificate_expiry, cfg)
        install_metrics(app, WorkerMetrics(state, intake.tally, retention, certs))
        http = _EmbeddedHttp(
            uvicorn.Config(
                app,
                host=cfg.http.host,
                port=cfg.http.port,
                ssl_certfile=cfg.http.tls_cert_file,
                ssl_keyfile=cfg.http.tls_key_file,
                log_config=None,
                access_log=False,
                lifespan="off",
                ws_ping_interval=20,
                # A console event is a kilobyte or so: deflating each one for each console cost
                # the worker's event loop more than sending it as it is.
                ws_per_message_deflate=False,
                # A console socket or request still open when the worker is told to stop gets this
                # long, then is cut: systemd (and a test) must not wait on a browser.
                timeout_graceful_shutdown=5,
            )
        )
        tasks = [
            asyncio.create_task(intake.run(), name="intake"),
            asyncio.create_task(http.serve(), name="http"),
        ]
        servers = [http]
        if cfg.http.redirect_port is not None:  # plain HTTP that only sends browsers to HTTPS
            servers.append(_EmbeddedHttp(_redirect_config(cfg)))
            tasks.append(asyncio.create_task(servers[-1].serve(), name="http"))
        if cfg.insurer_api.tls_port is not None:  # the insurers' own mutual-TLS port
            servers.append(_EmbeddedHttp(listener_config(cfg.insurer_api, create_insurers_app(state))))
            tasks.append(asyncio.create_task(servers[-1].serve(), name="http"))
        clearing = ClearingWatch(state.cases.sessions, cfg.clearing, state.outbound.case_changed)
        tasks.append(asyncio.create_task(clearing.run(), name="clearing"))
        tasks.append(asyncio.create_task(retention.run(), name="retention"))
        tasks.append(asyncio.create_task(state.plates.run(), name="plates"))
        tasks.append(asyncio.create_task(state.rollouts.run(), name="rollouts"))
        tasks.append(asyncio.create_task(state.webhooks.run(), name="webhooks"))
        warm_font = asyncio.create_task(_warm_font(state), name="font")
        if state.sms.configured:
            tasks.append(asyncio.create_task(state.sms.run(), name="sms"))
        else:
            logger.warning("no SMS gateway configured ([sms] gateway_url): messages wait in the outbox")
        if signalling is not None:
            tasks.append(asyncio.create_task(signalling.run(), name="calls"))
        if state.uploads is not None:
            tasks.append(asyncio.create_task(state.uploads.run(), name="uploads"))
        try:
            # Everything loaded at start-up lives as long as the worker: keep it out of the
            # collector's full scans, which otherwise stall intake for tens of milliseconds.
            gc.freeze()
            if ready is not None:
                await intake.wait_connected()
                if signalling is not None:
                    await signalling.wait_connected()
                while not all(server.started for server in servers):  # noqa: ASYNC110 - uvicorn exposes only a flag
                    await asyncio.sleep(0.02)
                ready.set()
            logger.info(
                "server worker %s (%s): HTTP on %s://%s:%d/",
                cfg.server.worker_id,
                ", ".join(sorted(cfg.server.runs)),
                "https" if cfg.http.tls else "http",
                cfg.http.host,
                cfg.http.port,
            )
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for server in servers:
                server.should_exit = True
            for task in tasks:
                # uvicorn closes its own sockets (should_exit); every other task is cancelled, so a
                # task added later cannot keep the worker from stopping.
                if task.get_name() != "http":
                    task.cancel()
            warm_font.cancel()
            await asyncio.gather(*tasks, warm_font, return_exceptions=True)
