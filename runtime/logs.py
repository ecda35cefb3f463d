"""Logging set-up for every ``kuaichu`` process: one line per event, to stderr (journald on a Pi)."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | None = None) -> None:
    level = (level or os.environ.get("KUAICHU_LOG_LEVEL") or "INFO").upper()
    # Under systemd the journal adds its own timestamp; elsewhere print one.
    fmt = "%(levelname)s %(name)s: %(message)s"
    if "JOURNAL_STREAM" not in os.environ:
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level, format=fmt)
    for noisy in ("aiosqlite", "websockets", "uvicorn.access", "aioice", "aiortc", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
