"""Local HTTP servers playing insurers' webhook endpoints: each keeps every request as it came (the
raw body and the Standard Webhooks headers), and can be down (answer 503, or any status), or hold
requests until released, the way a real insurer's endpoint misbehaves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook

from runtime.local_http import serving
from server.insurers.directory import InsurerSpec, demo_insurers


@dataclass(frozen=True)
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def verifies_with(self, secret: str) -> bool:
        try:
            Webhook(secret).verify(self.body, self.headers)
        except Exception:
            return False
        return True


@dataclass
class Endpoint:
    code: str
    port: int
    answer: int = 200  # what the endpoint answers while it is "down" (any non-2xx) or up
    hold: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: requests wait until it is set
    requests: list[Received] = field(default_factory=list)  # every request, duplicates too
    acknowledged: list[Received] = field(default_factory=list)  # those answered 2xx
    first_ack: dict[str, float] = field(default_factory=dict)  # webhook id -> when first answered 2xx (time.time)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/kuaichu/events"

    def unique(self) -> dict[str, Received]:
        """What the insurer keeps once it deduplicates by ``webhook-id`` (the first acknowledged)."""
        kept: dict[str, Received] = {}
        for r in self.acknowledged:
            kept.setdefault(r.webhook_id, r)
        return kept

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/kuaichu/events")
        async def event(request: Request) -> Response:
            got = Received(request.headers.get("webhook-id", ""), dict(request.headers), await request.body())
            self.requests.append(got)
            await self.hold.wait()
            if 200 <= self.answer < 300:
                self.acknowledged.append(got)
                self.first_ack.setdefault(got.webhook_id, time.time())
            return Response(status_code=self.answer)

        return app


def specs(endpoints: dict[str, Endpoint]) -> list[InsurerSpec]:
    return demo_insurers({code: e.url for code, e in endpoints.items()})


@contextlib.asynccontextmanager
async def insurer_endpoints(ports: dict[str, int]) -> AsyncIterator[dict[str, Endpoint]]:
    """One endpoint per insurer code, each on its own port."""
    endpoints = {code: Endpoint(code, port) for code, port in ports.items()}
    async with contextlib.AsyncExitStack() as stack:
        for e in endpoints.values():
            e.hold.set()
            await stack.enter_async_context(serving(e.app(), e.port))
        yield endpoints
