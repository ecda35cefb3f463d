"""``kuaichu server backup DIR`` and ``kuaichu server restore DIR`` (server/backup.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> list[argparse.ArgumentParser]:
    """The two actions under ``kuaichu server``; the caller adds ``--config`` to each."""
    backup = sub.add_parser(
        "backup", help="a consistent copy of the database and the evidence, documents and keys, with a manifest"
    )
    backup.add_argument(
        "folder",
        type=Path,
        metavar="DIR",
        nargs="?",
        help="a new or empty folder; none: a dated folder under [backup] dir, keeping the last [backup] keep",
    )
    backup.set_defaults(handler=_backup)
    restore = sub.add_parser("restore", help="verify a backup's manifest, then restore it onto a stopped, empty server")
    restore.add_argument("folder", type=Path, metavar="DIR", help="a folder written by kuaichu server backup")
    restore.add_argument(
        "--replace", action="store_true", help="restore over a server that holds cases: what it holds is lost"
    )
    restore.set_defaults(handler=_restore)
    return [backup, restore]


def _backup(args: argparse.Namespace) -> int:
    from server.backup import BackupError, backup, scheduled_backup
    from server.config import load_server_config

    cfg = load_server_config(args.config)
    removed: list[str] = []
    try:
        if args.folder is None:
            scheduled = asyncio.run(scheduled_backup(cfg))
            folder, done, removed = scheduled.folder, scheduled.summary, scheduled.removed
        else:
            folder, done = args.folder, asyncio.run(backup(cfg, args.folder))
    except BackupError as exc:
        print(f"kuaichu server backup: {exc}", file=sys.stderr)
        return 1
    print(f"备份完成 backup written: {folder} ({done.database}, {done.files} files, {done.size_bytes} bytes)")
    if removed:
        print(f"已删除较早的备份 older backups deleted: {', '.join(removed)}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from server.backup import BackupError, restore
    from server.config import load_server_config

    cfg = load_server_config(args.config)
    try:
        done = asyncio.run(restore(cfg, args.folder, replace=args.replace))
    except BackupError as exc:
        print(f"kuaichu server restore: {exc}", file=sys.stderr)
        return 1
    print(
        f"恢复完成 restored: {done.files} files ({done.database}); 请运行 kuaichu server audit 核对每起案件。"
        "(run kuaichu server audit to verify every case)"
    )
    return 0
