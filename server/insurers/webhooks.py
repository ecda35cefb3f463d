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
from dataclasses import dataclass
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
from server.delivery.claims import claim_many, due_ids
from server.insurers.directory import endpoint_error, valid_secrets
from server.insurers.events import register_sender
from server.insurers.links import InsurerLinks

logger = logging.getLogger(__name__)
IN_FLIGHT = 64  # POSTs one worker has open at once; a round claims no more than the free slots
ROUND_GAP_S = 0.02


@dataclass(frozen=True)
class Target:
    """Where an insurer's events go and what signs them, read once per round."""

    endpoint: str
    active: bool
    keys: list[str]


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
        self._tasks: set[asyncio.Task[None]] = set()
        # Outcomes wait here to be written together: one commit for many events, not one each.
        self._outcomes: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue()
        self._client = httpx.AsyncClient(timeout=cfg.timeout_s, follow_redirects=False)
        # A worker stopped mid-send leaves its claim: another takes the event once a POST that
        # started then has surely ended and its outcome been written.
        self._hold_s = 2 * cfg.timeout_s + 5
        self._unregister: Callable[[], None] = lambda: None
        self._recorder: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        self._unregister()
        stopping = [*self._tasks, *([self._recorder] if self._recorder else [])]
        for task in stopping:
            task.cancel()
        await asyncio.gather(*stopping, return_exceptions=True)
        await self._client.aclose()

    async def run(self) -> None:
        self._unregister = register_sender(self.wake)  # events written in this process wake it
        self._recorder = asyncio.create_task(self._record_outcomes(), name="webhook-outcomes")
        while True:
            try:
                more = await self.send_due()
            except Exception:
                logger.exception("webhook outbox: a round failed; trying again")
                more = False
            if more:
                await asyncio.sleep(ROUND_GAP_S)  # let finished sends free their slots together
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._cfg.poll_s)
            self._wake.clear()

    async def send_due(self) -> bool:
        """Claim as many due events as there are free slots and start sending them; True when
        there may be more due at once (every free slot was filled)."""
        free = IN_FLIGHT - len(self._tasks)
        if free <= 0:
            return True
        now = self._clock()
        due = await due_ids(self._sessions, WebhookMessage, now, free)
        rows = await claim_many(self._sessions, WebhookMessage, due, now, self._hold_s)
        targets = await self._targets({r.insurer_code for r in rows}, now)
        for row in rows:
            task = asyncio.create_task(self._send(row, targets[row.insurer_code]))
            self._tasks.add(task)
            task.add_done_callback(self._finished)
        return len(due) == free

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.wake()

    async def _targets(self, codes: set[str], now: datetime) -> dict[str, Target]:
        async with self._sessions() as session:
            found = {i.code: i for i in await session.scalars(select(Insurer).where(Insurer.code.in_(codes)))}
            return {
                code: Target(
                    found[code].endpoint,
                    found[code].status == InsurerStatus.ACTIVE,
                    await valid_secrets(session, code, now),
                )
                for code in codes
            }

    async def _send(self, row: WebhookMessage, target: Target) -> None:
        error = await self._post(row, target)
        self._outcomes.put_nowait((row.id, error))
        if error is None:
            logger.info("webhook %s (case %d) delivered to %s", row.webhook_id, row.case_id, row.insurer_code)
        else:
            logger.warning("webhook %s (case %d) to %s: %s", row.webhook_id, row.case_id, row.insurer_code, error)

    async def _post(self, row: WebhookMessage, target: Target) -> str | None:
        """One try; the reason it failed, or None once the insurer answered 2xx."""
        if not target.active:
            return "insurer disabled"
        if error := endpoint_error(target.endpoint):
            return error
        if not target.keys:
            return "no valid signing secret: kuaichu insurer rotate-secret"
        now = self._clock()
        body = json.dumps(
            await self.links.signed_body(row.payload, now), ensure_ascii=False, separators=(",", ":")
        ).encode()
        headers = {
            "content-type": "application/json",
            "user-agent": "Kuaichu-Webhooks/1",
            "webhook-id": row.webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(Webhook(k).sign(row.webhook_id, now, body) for k in target.keys),
        }
        try:
            response = await self._client.post(target.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"unreachable: {type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return None
        return f"answered {response.status_code}"

    async def _record_outcomes(self) -> None:
        """Writes what became of each try, as many as have come in per transaction. An outcome lost
        with the worker leaves its event claimed: it goes again once the claim lapses."""
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty() and len(batch) < 500:
                batch.append(self._outcomes.get_nowait())
            try:
                await self._settle(batch)
            except Exception:
                logger.exception("webhook outbox: %d outcomes not written; those events go again", len(batch))

    async def _settle(self, outcomes: list[tuple[int, str | None]]) -> None:
        now = self._clock()
        errors = dict(outcomes)
        async with self._sessions.begin() as session:
            for row in await session.scalars(select(WebhookMessage).where(WebhookMessage.id.in_(errors))):
                error = errors[row.id]
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
