"""The SMS outbox's own rounds against the provider's stand-in over HTTP, with a real SQLite
database: a message that belongs to no case (a one-time code to a phone reporting) that the
provider refuses once is retried, taken, and both steps are logged with its id."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from protocol.messages import Command
from server.cases import now_utc
from server.config import SmsSection
from server.db.engine import make_engine, make_sessionmaker, upgrade_schema
from server.delivery.outbox import SmsOutbox
from server.delivery.sms import HttpSmsGateway
from server.portal.access import code_text, queue_sms
from tests.services import free_port
from tests.sms_provider import TOKEN, sms_provider
from tests.waiting import wait_for


class Consoles:
    """The worker's way out, as far as the outbox uses it: which cases it announced."""

    def __init__(self) -> None:
        self.announced: list[dict[str, Any]] = []

    async def command(self, device_id: str | None, command: Command) -> bool:
        raise AssertionError("the SMS outbox sends no command to a unit")

    async def case_changed(self, summary: dict[str, Any]) -> None:
        self.announced.append(summary)


async def test_a_code_with_no_case_refused_once_is_retried_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'server.db'}"
    await upgrade_schema(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    (tmp_path / "token").write_text(TOKEN)
    try:
        async with sms_provider(free_port(), "http://127.0.0.1:1", fail_next=1) as provider:
            provider.receipts.clear()  # this test is about sending; receipts stay with the provider
            cfg = SmsSection(gateway_url=provider.url, token_file=tmp_path / "token", retry_base_s=0.01)
            consoles = Consoles()
            outbox = SmsOutbox(sessions, HttpSmsGateway(provider.url, TOKEN, 5), cfg, "w1", consoles)
            async with sessions.begin() as session:
                queue_sms(session, "code", "13800001234", code_text("123456", 10), now_utc())
            with caplog.at_level(logging.INFO, logger="server.delivery.outbox"):
                assert await outbox.send_due() == 0
                assert await wait_for("the retry taken", outbox.send_due) == 1
                messages = caplog.messages
            await outbox.close()
        assert [body["ref"] for body in provider.received] == ["kc-1"]
        assert "sms 1 (no case): provider answered 503" in messages
        assert "sms 1 (no case) taken by the provider" in messages
        assert consoles.announced == []  # a message with no case has no console to tell
    finally:
        await engine.dispose()
