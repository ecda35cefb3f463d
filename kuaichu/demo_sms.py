"""The demo's SMS provider, so that a determination issued in ``kuaichu demo`` reaches its parties
and the case ends 'delivered', as it does in service.

It is the provider's side of ``server.delivery.sms``, over real HTTP: the server's gateway POSTs
``{"to", "text", "ref"}`` with its bearer token and gets ``{"id"}``; a moment later the provider
reports the message delivered to the server's ``/api/sms/receipts`` with the receipt token. The
"phones" are a file: each message taken is one JSON line of ``inbox.jsonl`` in the demo folder.
It runs in the demo's own process, beside the processes it supervises.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from runtime.local_http import serving

logger = logging.getLogger(__name__)

INBOX = "inbox.jsonl"
TOKEN_FILE, RECEIPT_TOKEN_FILE = "token", "receipt-token"
RECEIPT_DELAY_S = 1.0  # from taking a message to the phone having it
RECEIPT_TRIES = 5
RECEIPT_RETRY_S = 2.0


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(pattern=r"^1\d{10}$")
    text: str = Field(min_length=1, max_length=1000)
    ref: str = Field(min_length=1, max_length=64)


def write_tokens(folder: Path) -> tuple[Path, Path]:
    """New random tokens for the server and this provider to share, readable by their owner only;
    (the send token's file, the receipt token's file)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = (folder / TOKEN_FILE, folder / RECEIPT_TOKEN_FILE)
    for path in paths:
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n")
    return paths


@dataclass
class DemoSms:
    folder: Path  # where write_tokens put the tokens; the inbox goes there too
    receipts_to: str  # the Kuaichu server's base URL
    taken: int = 0
    _token: str = field(init=False)
    _receipt_token: str = field(init=False)
    _receipts: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._token = (self.folder / TOKEN_FILE).read_text().strip()
        self._receipt_token = (self.folder / RECEIPT_TOKEN_FILE).read_text().strip()

    @property
    def inbox(self) -> Path:
        return self.folder / INBOX

    def app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.post("/send")
        async def send(message: Message, request: Request) -> dict[str, str]:
            if request.headers.get("authorization") != f"Bearer {self._token}":
                raise HTTPException(401, "bad token")
            self.taken += 1
            message_id = f"demo-{self.taken}"
            line = {"id": message_id, "at": datetime.now(UTC).isoformat(timespec="seconds")} | message.model_dump()
            await asyncio.to_thread(_append_line, self.inbox, json.dumps(line, ensure_ascii=False))
            task = asyncio.create_task(self._report(message_id, message.ref))
            self._receipts.add(task)
            task.add_done_callback(self._receipts.discard)
            return {"id": message_id}

        return app

    async def serve(self, port: int, started: asyncio.Event | None = None) -> None:
        """Take messages on 127.0.0.1:``port`` until cancelled."""
        try:
            async with serving(self.app(), port) as running:
                if started is not None:
                    started.set()
                await running
        finally:
            for receipt in list(self._receipts):
                receipt.cancel()

    async def _report(self, message_id: str, ref: str) -> None:
        await asyncio.sleep(RECEIPT_DELAY_S)
        receipt = {"id": message_id, "ref": ref, "status": "delivered"}
        headers = {"Authorization": f"Bearer {self._receipt_token}"}
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(RECEIPT_TRIES):
                try:
                    answer = await client.post(f"{self.receipts_to}/api/sms/receipts", json=receipt, headers=headers)
                    if answer.is_success:
                        return
                    problem = f"the server answered {answer.status_code}"
                except httpx.HTTPError as exc:
                    problem = f"the server is unreachable: {type(exc).__name__}"
                await asyncio.sleep(RECEIPT_RETRY_S)
        logger.warning("demo sms: receipt for %s not taken: %s", message_id, problem)


def _append_line(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as inbox:
        inbox.write(line + "\n")
