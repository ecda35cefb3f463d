"""What a running server stored, read straight from its database."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from server.calls.store import CallStore
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Call, Case, Device, PlateRead, PlateReading
from tests.conftest import RunningServer


async def call_row(server: RunningServer, call_id: str) -> Call | None:
    engine = make_engine(server.cfg.database_url)
    try:
        return await CallStore(make_sessionmaker(engine), server.cfg.evidence_dir).get(call_id)
    finally:
        await engine.dispose()


async def wait_state(server: RunningServer, call_id: str, state: str, within_s: float = 30) -> Call:
    async with asyncio.timeout(within_s):
        while True:
            row = await call_row(server, call_id)
            if row is not None and row.state == state:
                return row
            await asyncio.sleep(0.2)


async def cases_in(url: str) -> list[Case]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.scalars(select(Case).order_by(Case.id))).all())
    finally:
        await engine.dispose()


async def plate_rows(server: RunningServer) -> list[tuple[PlateReading, list[PlateRead]]]:
    engine = make_engine(server.cfg.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            out = []
            for reading in (await session.scalars(select(PlateReading).order_by(PlateReading.id))).all():
                reads = await session.scalars(select(PlateRead).where(PlateRead.reading_id == reading.id))
                out.append((reading, list(reads.all())))
            return out
    finally:
        await engine.dispose()


async def device_row(server: RunningServer, device_id: str) -> Device | None:
    engine = make_engine(server.cfg.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return await session.scalar(select(Device).where(Device.id == device_id))
    finally:
        await engine.dispose()
