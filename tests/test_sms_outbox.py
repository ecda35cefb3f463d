"""The SMS outbox's own rounds against the provider's stand-in over HTTP, with a real SQLite
database: a message that belongs to no case (a one-time code to a phone reporting) that the
provider refuses once is retried, taken, and both steps are logged with its id. A message the
provider took just before the database was lost (noted in the shared folder, never recorded) is
recorded as taken when claimed again, not sent a second time."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from protocol.messages import Command
from server.cases import now_utc
from server.config import SmsSection
from server.db.engine import make_engine, make_sessionmaker, upgrade_schema
from server.db.models import SmsMessage
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
            gateway = HttpSmsGateway(provider.url, TOKEN, 5)
            outbox = SmsOutbox(sessions, gateway, cfg, "w1", consoles, tmp_path / "sms-taken")
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
        assert list((tmp_path / "sms-taken").iterdir()) == []  # recorded in the database: the note goes
    finally:
        await engine.dispose()


async def test_a_message_taken_before_the_database_was_lost_is_not_sent_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'server.db'}"
    await upgrade_schema(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    (tmp_path / "token").write_text(TOKEN)
    taken = tmp_path / "sms-taken"
    try:
        async with sms_provider(free_port(), "http://127.0.0.1:1") as provider:
            provider.receipts.clear()
            cfg = SmsSection(gateway_url=provider.url, token_file=tmp_path / "token")
            async with sessions.begin() as session:
                queue_sms(session, "code", "13800001234", code_text("123456", 10), now_utc())
                queue_sms(session, "code", "13800005678", code_text("654321", 10), now_utc())
            # What a worker leaves when the provider took kc-1 and the database went before the commit.
            taken.mkdir()
            (taken / "kc-1").write_text("p-earlier")
            outbox = SmsOutbox(sessions, HttpSmsGateway(provider.url, TOKEN, 5), cfg, "w2", Consoles(), taken)
            assert await outbox.send_due() == 2
            await outbox.close()
        assert [body["ref"] for body in provider.received] == ["kc-2"]  # kc-1 went once, before
        async with sessions() as session:
            rows = {m.id: m for m in (await session.scalars(select(SmsMessage))).all()}
        assert rows[1].status == "sent" and rows[1].provider_id == "p-earlier"
        assert rows[2].status == "sent" and rows[2].provider_id == "p-1"
        assert list(taken.iterdir()) == []
    finally:
        await engine.dispose()
