"""``kuaichu verify FILE.pdf``: is this determination genuine, unaltered, and the current version?"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("/etc/kuaichu/server.toml")


def register(commands: Any) -> None:
    parser = commands.add_parser("verify", help="check a determination PDF's signature against the units' keys")
    parser.add_argument("file", type=Path, metavar="FILE.pdf")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"server.toml (default {DEFAULT_CONFIG})")
    parser.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    from server.casework.determination import Determinations
    from server.casework.font import DocumentFont
    from server.casework.keys import UnitKeys
    from server.config import load_server_config
    from server.db.engine import make_engine, make_sessionmaker
    from server.intake import intake_sessions
    from server.live_feed import CaseHub
    from server.outbound import Outbound

    cfg = load_server_config(args.config)
    try:
        pdf = args.file.read_bytes()
    except OSError as exc:
        print(f"kuaichu verify: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2

    async def check() -> dict[str, Any]:
        engine = make_engine(cfg.database_url)
        try:
            sessions = make_sessionmaker(engine)
            keys = UnitKeys(sessions, cfg.server.data_dir / "keys")
            # Checking sends nothing: no SMS outbox, and a way out that never connects.
            fonts = DocumentFont(cfg.font_cache_dir)
            outbound = Outbound(intake_sessions(cfg), CaseHub())
            determinations = Determinations(sessions, keys, cfg.documents_dir, cfg.public_url, fonts, None, outbound)
            return await determinations.check(pdf)
        finally:
            await engine.dispose()

    result = asyncio.run(check())
    if not result["genuine"]:
        print(f"{args.file}: NOT genuine: {result['reason']}")
        return 1
    current = "the current version" if result["current"] else "superseded by a later version"
    print(f"{args.file}: genuine and unaltered: case {result['case_no']} version {result['version']}, {current}")
    return 0
