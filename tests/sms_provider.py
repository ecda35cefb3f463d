"""A local HTTP server playing the SMS provider: takes messages (or fails on purpose), and reports
delivery back to the Kuaichu server's receipt endpoint, as a real provider would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request

from runtime.local_http import serving

TOKEN = "provider-token-for-tests"
RECEIPT_TOKEN = "receipt-token-for-tests"


@dataclass
class Provider:
    port: int
    receipts_to: str  # the Kuaichu server's base URL
    fail_next: int = 0  # answer 503 to this many requests first
    receipt_delay_s: float = 0.1  # from taking a message to reporting it delivered
    receipt_first: bool = False  # report delivery before even answering the send
    # Awaited with each message before it is taken: a test makes the provider slow here.
    before_taking: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    receipts: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: receipts wait for it
    received: list[dict[str, Any]] = field(default_factory=list)
    taken_at: list[float] = field(default_factory=list)  # epoch seconds each of ``received`` was taken
    requests: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/send")
        async def send(request: Request) -> dict[str, str]:
            self.requests += 1
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                raise HTTPException(401, "bad token")
            if self.fail_next > 0:
                self.fail_next -= 1
                raise HTTPException(503, "busy")
            body = await request.json()
            if self.before_taking is not None:
                await self.before_taking(body)
            self.received.append(body)
            self.taken_at.append(time.time())
            message_id = f"p-{len(self.received)}"
            if self.receipt_first:
                await self._deliver(message_id, body["ref"])
                return {"id": message_id}
            task = asyncio.create_task(self._deliver(message_id, body["ref"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return {"id": message_id}

        return app

    async def _deliver(self, message_id: str, ref: str) -> None:
        await asyncio.sleep(self.receipt_delay_s)
        await self.receipts.wait()
        async with httpx.AsyncClient() as client:
            # A provider tries a receipt again while the server cannot be reached (a worker
            # restarting), as real ones do; it is given up when the provider stops.
            while True:
                try:
                    await client.post(
                        f"{self.receipts_to}/api/sms/receipts",
                        json={"id": message_id, "ref": ref, "status": "delivered"},
                        headers={"Authorization": f"Bearer {RECEIPT_TOKEN}"},
                    )
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.5)


@asynccontextmanager
async def sms_provider(
    port: int, receipts_to: str, fail_next: int = 0, receipt_delay_s: float = 0.1, receipt_first: bool = False
) -> AsyncIterator[Provider]:
    provider = Provider(port, receipts_to, fail_next, receipt_delay_s, receipt_first)
    provider.receipts.set()
    async with serving(provider.app(), port):
        try:
            yield provider
        finally:
            for pending in list(provider._tasks):
                pending.cancel()
