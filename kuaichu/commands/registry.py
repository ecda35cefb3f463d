"""``kuaichu registry import FILE.csv``: load the driver, vehicle and insurance registry tables."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("/etc/kuaichu/server.toml")


def register(commands: Any) -> None:
    parser = commands.add_parser("registry", help="the registry the automatic checks ask")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = sub.add_parser("import", help="load licences, vehicles or policies from CSV (the header tells which)")
    load.add_argument("files", nargs="+", type=Path, metavar="FILE.csv")
    load.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"server.toml (default {DEFAULT_CONFIG})")
    load.set_defaults(handler=_import)


def _import(args: argparse.Namespace) -> int:
    from server.casework.registry_import import ImportError_, import_file
    from server.config import load_server_config
    from server.db.engine import make_engine, make_sessionmaker, upgrade_schema

    cfg = load_server_config(args.config)

    async def load() -> list[tuple[str, int]]:
        if cfg.database.migrate:
            await upgrade_schema(cfg.database_url)
        engine = make_engine(cfg.database_url)
        try:
            return [await import_file(make_sessionmaker(engine), path) for path in args.files]
        finally:
            await engine.dispose()

    try:
        done = asyncio.run(load())
    except ImportError_ as exc:
        print(f"kuaichu registry import: {exc}", file=sys.stderr)
        return 1
    for (table, count), path in zip(done, args.files, strict=True):
        print(f"{path}: {count} rows into {table}")
    return 0
