"""The webhook outbox's sender: every worker runs one, claims due events (``server/delivery/claims``)
and POSTs each to its insurer signed the Standard Webhooks way, with every secret valid at the
time (so an insurer mid-rotation verifies with either). Delivery is at least once: the same
``webhook-id`` goes again until the insurer answers 2xx, after failures with doubling, jittered
waits, for ``retry_for_h`` at least; then the event is a dead letter an operator may resend.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from runtime.backoff import retry_delay
from server.cases import now_utc
from server.config import InsurersSection
from server.db.insurers import Insurer, InsurerStatus, WebhookMessage, WebhookStatus
from server.db.models import Case
from server.delivery.claims import claim, due_ids
from server.insurers.directory import endpoint_error, valid_secrets
from server.insurers.events import register_sender
from server.insurers.links import InsurerLinks

logger = logging.getLogger(__name__)
BATCH = 200  # events looked at per round
IN_FLIGHT = 32  # POSTs one worker has open at once


class WebhookOutbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cfg: InsurersSection,
        links: InsurerLinks,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._sessions = sessions
        self._cfg = cfg
        self.links = links
        self._clock = clock
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(timeout=cfg.timeout_s, follow_redirects=False)
        # A worker stopped mid-send leaves its claim: another takes the event once a POST that
        # started then has surely ended.
        self._hold_s = 2 * cfg.timeout_s + 5
        self._unregister: Callable[[], None] = lambda: None

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        self._unregister()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    async def run(self) -> None:
        self._unregister = register_sender(self.wake)  # events written in this process wake it
        while True:
            try:
                full = await self.send_due() >= BATCH
            except Exception:
                logger.exception("webhook outbox: a round failed; trying again")
                full = False
            if not full:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._cfg.poll_s)
            self._wake.clear()

    async def send_due(self) -> int:
        """Start sending every due event no other worker holds; returns how many were looked at."""
        now = self._clock()
        due = await due_ids(self._sessions, WebhookMessage, now, BATCH)
        for row_id in due:
            await self._slots.acquire()  # before the claim: a claim never waits for a free slot
            row = await claim(self._sessions, WebhookMessage, row_id, self._clock(), self._hold_s)
            if row is None:
                self._slots.release()
                continue
            task = asyncio.create_task(self._send(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def _send(self, row: WebhookMessage) -> None:
        try:
            error = await self._post(row)
            if error is None:
                await self._settle(row.id, None)
                logger.info("webhook %s (case %d) delivered to %s", row.webhook_id, row.case_id, row.insurer_code)
            else:
                await self._settle(row.id, error)
                logger.warning("webhook %s (case %d) to %s: %s", row.webhook_id, row.case_id, row.insurer_code, error)
        finally:
            self._slots.release()

    async def _post(self, row: WebhookMessage) -> str | None:
        """One try; the reason it failed, or None once the insurer answered 2xx."""
        now = self._clock()
        async with self._sessions() as session:
            insurer = await session.get(Insurer, row.insurer_code)
            keys = await valid_secrets(session, row.insurer_code, now)
        if insurer is None or insurer.status != InsurerStatus.ACTIVE:
            return "insurer disabled"
        if error := endpoint_error(insurer.endpoint):
            return error
        if not keys:
            return "no valid signing secret: kuaichu insurer rotate-secret"
        body = json.dumps(
            await self.links.signed_body(row.payload, now), ensure_ascii=False, separators=(",", ":")
        ).encode()
        headers = {
            "content-type": "application/json",
            "user-agent": "Kuaichu-Webhooks/1",
            "webhook-id": row.webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(Webhook(k).sign(row.webhook_id, now, body) for k in keys),
        }
        try:
            response = await self._client.post(insurer.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"unreachable: {type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return None
        return f"answered {response.status_code}"

    async def _settle(self, row_id: int, error: str | None) -> None:
        now = self._clock()
        async with self._sessions.begin() as session:
            row = await session.get(WebhookMessage, row_id)
            assert row is not None
            row.attempts += 1
            row.claimed_until = None
            row.last_error = None if error is None else error[:300]
            if error is None:
                row.status, row.delivered_at = WebhookStatus.DELIVERED, now
            elif row.attempts >= self._cfg.min_attempts and now - row.created_at >= self._retry_for:
                row.status, row.dead_at = WebhookStatus.DEAD, now
            else:
                delay = retry_delay(row.attempts, self._cfg.retry_first_s, self._cfg.retry_max_s)
                row.next_attempt_at = now + timedelta(seconds=delay)

    @property
    def _retry_for(self) -> timedelta:
        return timedelta(hours=self._cfg.retry_for_h)

    async def resend(self, row_id: int) -> bool:
        """An operator's resend: a dead letter (or an event waiting for its next try) goes now, with
        its webhook id, and gets ``min_attempts`` tries again; False when there is no such event
        waiting or dead."""
        async with self._sessions.begin() as session:
            row = await session.get(WebhookMessage, row_id, with_for_update=True)
            if row is None or row.status == WebhookStatus.DELIVERED:
                return False
            if row.status == WebhookStatus.DEAD:
                row.attempts = 0
            row.status, row.dead_at, row.next_attempt_at = WebhookStatus.PENDING, None, self._clock()
        self.wake()
        return True

    async def listing(self, status: WebhookStatus, limit: int = 200) -> list[dict[str, Any]]:
        """Events waiting or dead, the oldest first, for the operators' page."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(WebhookMessage, Case.case_no)
                    .join(Case, Case.id == WebhookMessage.case_id)
                    .where(WebhookMessage.status == status)
                    .order_by(WebhookMessage.id)
                    .limit(limit)
                )
            ).all()
        return [
            {
                "id": m.id,
                "webhook_id": m.webhook_id,
                "insurer": m.insurer_code,
                "case_no": case_no,
                "type": m.event_type,
                "version": m.payload["data"]["determination"]["version"],
                "status": m.status,
                "attempts": m.attempts,
                "last_error": m.last_error,
                "created_at": m.created_at.isoformat(),
                "next_attempt_at": m.next_attempt_at.isoformat(),
                "dead_at": None if m.dead_at is None else m.dead_at.isoformat(),
            }
            for m, case_no in rows
        ]

    async def counts(self) -> dict[str, dict[str, int]]:
        """Insurer code -> how many of its events are pending, delivered, dead."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(WebhookMessage.insurer_code, WebhookMessage.status, func.count()).group_by(
                    WebhookMessage.insurer_code, WebhookMessage.status
                )
            )
            out: dict[str, dict[str, int]] = {}
            for code, status, count in rows:
                out.setdefault(code, {})[status] = count
        return out
