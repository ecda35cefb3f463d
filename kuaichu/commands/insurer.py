"""``kuaichu insurer add | list | rotate-secret | disable``: the directory of insurers the server
pushes determinations to (docs/insurers.md). Secrets are printed once, when made."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

DEFAULT_CONFIG = Path("/etc/kuaichu/server.toml")
T = TypeVar("T")


def register(commands: Any) -> None:
    parser = commands.add_parser("insurer", help="insurers that receive determinations and claims")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = sub.add_parser("add", help="add an insurer; prints its webhook secret (and API key) once")
    add.add_argument("code", metavar="CODE", help="short and stable: PICC, PAIC, CPIC ...")
    add.add_argument("--name", required=True, help="中国人民财产保险股份有限公司")
    add.add_argument("--endpoint", required=True, help="the HTTPS URL events are POSTed to")
    add.add_argument(
        "--policy-prefix", action="append", default=[], metavar="PREFIX", help="policy numbers starting so (repeatable)"
    )
    add.add_argument(
        "--registry-name", action="append", default=[], metavar="NAME", help="the insurer as the registry writes it"
    )
    add.add_argument("--contact", required=True, help="the insurer's operator: name, phone, e-mail")
    add.add_argument("--auth", required=True, choices=["api_key", "mtls"], help="how the insurer calls the API")
    add.add_argument("--cert", type=Path, metavar="FILE", help="mtls: the insurer's client certificate (PEM or DER)")
    add.set_defaults(handler=_add)

    listing = sub.add_parser("list", help="the insurers, their status and secrets' validity")
    listing.set_defaults(handler=_list)

    rotate = sub.add_parser("rotate-secret", help="a new webhook secret; the old stays valid for the overlap")
    rotate.add_argument("code", metavar="CODE")
    rotate.add_argument("--overlap-h", type=float, default=24, help="hours the old secret stays valid (default 24)")
    rotate.set_defaults(handler=_rotate)

    disable = sub.add_parser("disable", help="stop events to an insurer and its API access")
    disable.add_argument("code", metavar="CODE")
    disable.set_defaults(handler=_disable)

    for p in (add, listing, rotate, disable):
        p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"server.toml (default {DEFAULT_CONFIG})")


def _with_database(args: argparse.Namespace, work: Callable[[Any], Awaitable[T]]) -> T:
    from server.config import load_server_config
    from server.db.engine import make_engine, make_sessionmaker, upgrade_schema

    cfg = load_server_config(args.config)

    async def go() -> T:
        if cfg.database.migrate:
            await upgrade_schema(cfg.database_url)
        engine = make_engine(cfg.database_url)
        try:
            return await work(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _refused(action: str, exc: Exception) -> int:
    print(f"kuaichu insurer {action}: {exc}", file=sys.stderr)
    return 1


def _add(args: argparse.Namespace) -> int:
    from server.cases import now_utc
    from server.db.insurers import InsurerAuth
    from server.errors import DomainError
    from server.insurers.directory import InsurerSpec, add_insurer

    try:
        cert = None if args.cert is None else args.cert.read_bytes()
    except OSError as exc:
        return _refused("add", exc)
    spec = InsurerSpec(
        code=args.code,
        name=args.name,
        endpoint=args.endpoint,
        contact=args.contact,
        auth=InsurerAuth(args.auth),
        policy_prefixes=tuple(args.policy_prefix),
        registry_names=tuple(args.registry_name),
        cert_pem=cert,
    )
    try:
        made = _with_database(args, lambda sessions: add_insurer(sessions, spec, now_utc()))
    except DomainError as exc:
        return _refused("add", exc)
    print(f"insurer {args.code} added. Give these to the insurer now; they are not shown again:")
    print(f"webhook secret: {made.secret}")
    if made.api_key is not None:
        print(f"API key: {made.api_key}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from server.cases import now_utc
    from server.insurers.directory import listing

    rows = _with_database(args, lambda sessions: listing(sessions, now_utc()))
    for i in rows:
        ends = ", ".join("current" if s is None else f"until {s}" for s in i["secrets_valid_until"]) or "none"
        policies = " ".join(i["policy_prefixes"] + [f"“{n}”" for n in i["registry_names"]])
        print(f"{i['code']}\t{i['status']}\t{i['auth']}\t{i['name']}\t{i['endpoint']}\tsecrets: {ends}\t{policies}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from server.cases import now_utc
    from server.errors import DomainError
    from server.insurers.directory import rotate_secret

    overlap = timedelta(hours=args.overlap_h)
    try:
        secret = _with_database(args, lambda sessions: rotate_secret(sessions, args.code, overlap, now_utc()))
    except DomainError as exc:
        return _refused("rotate-secret", exc)
    print(f"new webhook secret for {args.code} (the old one stays valid {args.overlap_h:g} h): {secret}")
    return 0


def _disable(args: argparse.Namespace) -> int:
    from server.cases import now_utc
    from server.errors import DomainError
    from server.insurers.directory import disable

    try:
        _with_database(args, lambda sessions: disable(sessions, args.code, now_utc()))
    except DomainError as exc:
        return _refused("disable", exc)
    print(f"insurer {args.code} disabled: no more events, no API access")
    return 0
