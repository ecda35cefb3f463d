"""``kuaichu server run | add-user | migrate | audit | plate-reads | backup | restore``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import signal
import sys
from pathlib import Path
from typing import Any

from runtime.runner import run

DEFAULT_CONFIG = Path("/etc/kuaichu/server.toml")


def register(commands: Any) -> None:
    parser = commands.add_parser("server", help="the central server")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    run = sub.add_parser("run", help="run one server worker (MQTT intake + console)")
    run.set_defaults(handler=_run)

    add = sub.add_parser("add-user", help="create a console operator")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["dispatcher", "officer", "reviewer", "admin"])
    add.add_argument("--unit", action="append", default=[], metavar="ADCODE", help="a unit served (repeatable)")
    add.add_argument(
        "--display-name",
        "--name",
        dest="name",
        help="display name, as pages and documents show it (default: the username)",
    )
    add.add_argument("--police-no", metavar="NUMBER", help="an officer's police number (警号, six digits)")
    add.add_argument(
        "--password-file", type=Path, help="read the password from this file (default: prompt, or stdin if piped)"
    )
    add.set_defaults(handler=_add_user)

    migrate = sub.add_parser("migrate", help="upgrade the database schema and exit")
    migrate.set_defaults(handler=_migrate)

    audit = sub.add_parser("audit", help="verify a case's event chain and every evidence file's hash")
    audit.add_argument("case", metavar="CASE", nargs="?", help="case number (or id); default: every case")
    audit.set_defaults(handler=_audit)

    plates = sub.add_parser(
        "plate-reads", help="write the plate reads dispatchers confirmed or corrected, with their crops, for training"
    )
    plates.add_argument("out_dir", type=Path, metavar="DIR", help="crops/ID.jpg and labels.csv go here")
    plates.set_defaults(handler=_plate_reads)

    from kuaichu.commands import backup

    for p in (run, add, migrate, audit, plates, *backup.register(sub)):
        p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"server.toml (default {DEFAULT_CONFIG})")


def _run(args: argparse.Namespace) -> int:
    from server.config import load_server_config
    from server.worker import serve

    cfg = load_server_config(args.config)

    async def until_signalled() -> None:
        task = asyncio.create_task(serve(cfg))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    run(until_signalled())
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        return str(args.password_file.read_text(encoding="utf-8").strip())
    if "KUAICHU_PASSWORD" in os.environ:
        return os.environ["KUAICHU_PASSWORD"]
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("passwords differ")
    return first


def _add_user(args: argparse.Namespace) -> int:
    from contextlib import AsyncExitStack

    from server.config import load_server_config
    from server.users import Role, UserError
    from server.worker import open_state

    cfg = load_server_config(args.config)
    password = _read_password(args)

    async def add() -> None:
        async with AsyncExitStack() as stack:
            state, _ = await open_state(cfg, stack)
            await state.users.add_user(args.username, password, Role(args.role), args.unit, args.name, args.police_no)

    try:
        asyncio.run(add())
    except UserError as exc:
        print(f"kuaichu server add-user: {exc}", file=sys.stderr)
        return 1
    print(f"user {args.username} ({args.role}) created")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from server.config import load_server_config
    from server.db.engine import upgrade_schema

    cfg = load_server_config(args.config)
    asyncio.run(upgrade_schema(cfg.database_url))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from server.casework.audit import AuditReport, audit_case, case_numbers
    from server.config import load_server_config
    from server.db.engine import make_engine, make_sessionmaker

    cfg = load_server_config(args.config)

    async def check() -> list[AuditReport | None]:
        engine = make_engine(cfg.database_url)
        sessions = make_sessionmaker(engine)
        try:
            refs = [args.case] if args.case is not None else await case_numbers(sessions)
            return [await audit_case(sessions, cfg.evidence_dir, ref) for ref in refs]
        finally:
            await engine.dispose()

    reports = asyncio.run(check())
    if args.case is not None and reports[0] is None:
        print(f"kuaichu server audit: no case {args.case}", file=sys.stderr)
        return 2
    found = [r for r in reports if r is not None]
    for report in found:
        for problem in report.problems:
            print(f"FAIL {problem}")
        verdict = "intact" if report.whole else f"NOT intact: {len(report.problems)} problem(s)"
        print(f"case {report.case_no}: {report.events} events, {report.evidence} evidence files; {verdict}")
    broken = sum(not r.whole for r in found)
    if args.case is None:
        verdict = "全部完好 all intact" if not broken else f"{broken} 起有问题 NOT intact"
        print(f"{len(found)} cases audited: {verdict}")
    return 1 if broken else 0


def _plate_reads(args: argparse.Namespace) -> int:
    from server.config import load_server_config
    from server.db.engine import make_engine, make_sessionmaker
    from server.plates import reviewed, write_training_set

    cfg = load_server_config(args.config)

    async def export() -> tuple[int, int]:
        engine = make_engine(cfg.database_url)
        try:
            rows = await reviewed(make_sessionmaker(engine))
        finally:
            await engine.dispose()
        await asyncio.to_thread(write_training_set, rows, args.out_dir)
        return len(rows), sum(read.confirmed_text != read.text for read, _ in rows)

    count, corrected = asyncio.run(export())
    print(f"{count} reviewed plate reads ({corrected} corrected) written to {args.out_dir}")
    return 0
