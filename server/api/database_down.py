"""A request that finds the database out of reach is answered 503 with ``Retry-After``, not 500.

PostgreSQL restarting (or a failover) is an outage the callers can ride out: the SMS provider
retries a delivery receipt on 503 but may drop it on 500, an insurer's program backs off, and the
console says to try again rather than showing an internal error. A driver that cannot connect
raises a bare ``ConnectionRefusedError`` (asyncpg's connect is not wrapped by SQLAlchemy); one that
loses its connection mid-request raises SQLAlchemy's ``OperationalError``/``InterfaceError`` or
an error marked ``connection_invalidated``. Any other database error (a broken constraint: a bug)
is still a 500, so it is not hidden behind "try later".
"""

from __future__ import annotations

import logging
import traceback

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 10
MESSAGE = "服务器暂时连不上数据库，请稍后再试 (the database is out of reach; try again shortly)"
_DRIVERS = ("/sqlalchemy/", "/asyncpg/", "/aiosqlite/", "/psycopg/")


def is_database_loss(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError):
        return True
    if isinstance(exc, ConnectionError):
        # Only when it came up through the database driver: a unit or a provider out of reach is
        # another matter, answered by the route that called it.
        return any(part in frame.filename for frame in traceback.extract_tb(exc.__traceback__) for part in _DRIVERS)
    return False


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    if not is_database_loss(exc):
        raise exc
    logger.warning("%s %s: database out of reach (%s)", request.method, request.url.path, type(exc).__name__)
    return JSONResponse(
        {"detail": MESSAGE, "code": "database_unavailable"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def answer_database_loss(app: FastAPI) -> None:
    for kind in (DBAPIError, ConnectionError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError):
        app.add_exception_handler(kind, unavailable)
