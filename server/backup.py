"""``kuaichu server backup DIR`` and ``kuaichu server restore DIR``: the database and the server's
files in one folder, with a manifest of SHA-256 hashes that a restore checks before it writes
anything (docs/operations.md).

The database is dumped first, in one snapshot (pg_dump's transaction, or SQLite's online backup),
while the server keeps running; the files are copied after it. Evidence files are written once
and only then recorded, so every file the dump names is already on disk when the copy starts.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from server.cases import LOCAL_TZ, now_utc
from server.casework.audit import file_sha256
from server.config import ServerConfig
from server.db.engine import alembic_config, make_engine, upgrade_schema

FORMAT = "kuaichu-backup/1"
MANIFEST = "manifest.json"
PG_DUMP = "database.pgdump"
SQLITE_COPY = "database.sqlite3"
# What a restored server needs besides its database: the evidence, the issued documents and the
# units' signing keys. Uploads in progress, playable copies and caches are remade.
FOLDERS = ("evidence", "documents", "keys")


class BackupError(Exception):
    """What stopped a backup or a restore, said so an operator knows what to do."""


@dataclass(frozen=True)
class Summary:
    database: str
    files: int
    size_bytes: int


def _is_postgresql(cfg: ServerConfig) -> bool:
    return cfg.database_url.startswith("postgresql")


def _pg_args(cfg: ServerConfig) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump and pg_restore, from the configured URL; the password, if
    any, through the environment rather than the command line anyone can read."""
    url = make_url(cfg.database_url)
    args = ["--dbname", url.database or ""]
    # install-server.sh's URL names the socket folder as ?host=/run/postgresql (peer authentication).
    host = url.host or url.query.get("host")
    port = url.port or url.query.get("port")
    if host:
        args += ["--host", str(host)]
    if port:
        args += ["--port", str(port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


async def _pg_tool(name: str, args: list[str], env: dict[str, str]) -> None:
    binary = shutil.which(name)
    if binary is None:
        raise BackupError(
            f"找不到 {name}：请安装 postgresql-client 软件包。({name} not found: apt-get install postgresql-client)"
        )
    proc = await asyncio.create_subprocess_exec(
        binary, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackupError(
            f"{name} 失败：请检查数据库是否在运行、server.toml 的 [database] url 是否正确，以及运行本命令的用户"
            f"能否连接数据库（sudo -u kuaichu）。({name} failed): {err.decode(errors='replace').strip()[-2000:]}"
        )


def _sqlite_path(cfg: ServerConfig) -> Path:
    return Path(make_url(cfg.database_url).database or "")


def _sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup: one consistent copy while the server writes on."""
    if not source.is_file():
        raise BackupError(f"数据库文件不存在：{source}。请检查 server.toml。(no database at {source})")
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _copy_hashed(source: Path, target: Path) -> tuple[str, int]:
    """Copy one file and hash what was written, so the manifest describes the copy, not a file
    that might change after it was read."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, target.open("xb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest(), size


def _copy_folders(data_dir: Path, out: Path) -> list[dict[str, Any]]:
    entries = []
    for folder in FOLDERS:
        root = data_dir / folder
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = PurePosixPath(folder, *path.relative_to(root).parts)
            try:
                sha, size = _copy_hashed(path, out / "files" / relative)
            except FileNotFoundError:
                continue  # deleted since the listing (a retention round, a masked copy remade)
            entries.append({"path": f"files/{relative}", "sha256": sha, "size": size})
    return entries


def _entry(out: Path, name: str) -> dict[str, Any]:
    path = out / name
    return {"path": name, "sha256": file_sha256(path), "size": path.stat().st_size}


async def _schema_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    finally:
        await engine.dispose()


def _fresh_folder(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} 不是空目录，请换一个新目录。({out} is not empty: give a new folder)")
    out.mkdir(parents=True, exist_ok=True)


async def backup(cfg: ServerConfig, out: Path) -> Summary:
    await asyncio.to_thread(_fresh_folder, out)
    if _is_postgresql(cfg):
        database, name = "postgresql", PG_DUMP
        args, env = _pg_args(cfg)
        await _pg_tool("pg_dump", ["--format=custom", "--no-owner", "--file", str(out / name), *args], env)
    else:
        database, name = "sqlite", SQLITE_COPY
        await asyncio.to_thread(_sqlite_backup, _sqlite_path(cfg), out / name)
    revision = await _schema_revision(cfg.database_url)
    files = [await asyncio.to_thread(_entry, out, name)]
    files += await asyncio.to_thread(_copy_folders, cfg.server.data_dir, out)
    manifest = {
        "format": FORMAT,
        "created_at": now_utc().astimezone(LOCAL_TZ).isoformat(timespec="seconds"),
        "worker_id": cfg.server.worker_id,
        "database": database,
        "schema_revision": revision,
        "files": files,
    }
    await asyncio.to_thread(_write_manifest, out / MANIFEST, manifest)
    return Summary(database, len(files), sum(int(f["size"]) for f in files))


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    with path.open("x", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())


# --- the nightly backup ---------------------------------------------------------------------------

# kuaichu-20261208-023000 (Beijing time), -2, -3... for a second one within the same second.
DATED = re.compile(r"^kuaichu-(\d{8}-\d{6})(?:-(\d+))?$")
PARTIAL = ".partial-"


@dataclass(frozen=True)
class Scheduled:
    folder: Path
    summary: Summary
    removed: list[str]


def _lock(root: Path) -> int:
    """One backup at a time into a folder: the timer's and an operator's by hand would prune each
    other's work."""
    if not root.is_dir():
        raise BackupError(
            f"备份目录 {root} 不存在：请检查备份磁盘是否已挂载，或创建该目录（属主 kuaichu）。"
            f"(backup folder {root} does not exist: mount its disk or create it)"
        )
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BackupError(f"另一次备份正在写入 {root}，请等它结束。(another backup is running into {root})") from None
    return fd


def _start(root: Path, now: datetime) -> str:
    """A name no backup has yet, after clearing what a run killed half-way (power cut, OOM) left."""
    for stale in root.glob(PARTIAL + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    base = f"kuaichu-{now.astimezone(LOCAL_TZ):%Y%m%d-%H%M%S}"
    name, n = base, 1
    while (root / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _finish(staging: Path, final: Path) -> None:
    """The dated name appears only once the manifest is on disk, so a folder by that name is whole."""
    os.rename(staging, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(root: Path, keep: int) -> list[str]:
    dated = []
    for path in root.iterdir():
        if path.is_dir() and (m := DATED.match(path.name)):
            dated.append(((m[1], int(m[2] or 1)), path))
    old = [path for _, path in sorted(dated)[:-keep]]
    for path in old:
        shutil.rmtree(path)
    return [p.name for p in old]


def _write_stamp(stamp: Path, at: datetime, folder: str) -> None:
    staged = stamp.with_name(stamp.name + ".new")
    staged.write_text(json.dumps({"finished_at": at.timestamp(), "folder": folder}), encoding="utf-8")
    os.replace(staged, stamp)


def read_stamp(stamp: Path) -> float:
    """When the last scheduled backup finished, in Unix seconds; 0 if none ever did (or the stamp
    is unreadable), which the alert counts as long ago."""
    try:
        return float(json.loads(stamp.read_text(encoding="utf-8"))["finished_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _failed(exc: Exception) -> BackupError:
    return BackupError(
        f"备份失败，未留下不完整的备份：{exc}。请检查备份磁盘是否已挂载、剩余空间和权限（属主 kuaichu），"
        "以及数据库是否在运行。(backup failed; nothing half-written kept)"
    )


async def scheduled_backup(cfg: ServerConfig) -> Scheduled:
    """A backup into a new dated folder under ``[backup] dir``; only once it is whole, the oldest
    beyond ``[backup] keep`` are deleted and the stamp that ``/metrics`` exports is moved on. A
    failure leaves the folder as it was: no half backup, no good one deleted, the stamp unchanged."""
    root = cfg.backup.dir
    if root is None:
        raise BackupError(
            "未配置备份目录：请在 server.toml 的 [backup] 中填写 dir，或给出目录：kuaichu server backup DIR。"
            "(no backup folder: set [backup] dir, or give one)"
        )
    try:
        fd = await asyncio.to_thread(_lock, root)
    except OSError as exc:
        raise _failed(exc) from None
    try:
        name = await asyncio.to_thread(_start, root, now_utc())
        staging = root / (PARTIAL + name)
        try:
            summary = await backup(cfg, staging)
            await asyncio.to_thread(_finish, staging, root / name)
        except BaseException as exc:
            await asyncio.to_thread(shutil.rmtree, staging, True)
            if isinstance(exc, OSError | SQLAlchemyError):
                raise _failed(exc) from None
            raise
        removed = await asyncio.to_thread(_prune, root, cfg.backup.keep)
        await asyncio.to_thread(_write_stamp, cfg.backup_stamp, now_utc(), name)
    except OSError as exc:
        raise _failed(exc) from None
    finally:
        os.close(fd)
    return Scheduled(root / name, summary, removed)


# --- restore -------------------------------------------------------------------------------------


def _safe(relative: str) -> PurePosixPath:
    """A manifest path that stays inside the backup and names a file the restore knows what to do
    with; anything else is a manifest someone has written by hand."""
    path = PurePosixPath(relative)
    known = path.parts[:1] == ("files",) and len(path.parts) > 2 and path.parts[1] in FOLDERS
    if path.is_absolute() or ".." in path.parts or not (known or relative in (PG_DUMP, SQLITE_COPY)):
        raise BackupError(f"备份清单中有不允许的路径：{relative}。(manifest path not allowed: {relative})")
    return path


def verify(folder: Path) -> dict[str, Any]:
    """The manifest, once every file it lists is in the backup with its size and SHA-256, and the
    backup holds nothing else; otherwise every difference, named."""
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"读不到备份清单 {folder / MANIFEST}：{exc}。(cannot read the manifest)") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{folder} 不是快处备份（格式 {manifest.get('format')!r}）。(not a Kuaichu backup)")
    problems = []
    listed = set()
    for entry in manifest["files"]:
        path = _safe(entry["path"])
        listed.add(path)
        file = folder / path
        if not file.is_file():
            problems.append(f"缺少文件 missing: {path}")
        elif file.stat().st_size != entry["size"] or file_sha256(file) != entry["sha256"]:
            problems.append(f"文件已被改动 altered (SHA-256 differs): {path}")
    found = {PurePosixPath(*p.relative_to(folder).parts) for p in folder.rglob("*") if p.is_file()}
    problems += [f"清单外的文件 not in the manifest: {p}" for p in sorted(found - listed - {PurePosixPath(MANIFEST)})]
    if problems:
        raise BackupError(
            "备份未通过校验，未恢复任何内容 (the backup failed verification; nothing restored):\n" + "\n".join(problems)
        )
    return manifest


def _known_revision(revision: str | None) -> None:
    """A backup from a newer Kuaichu than this one cannot be migrated: say so before writing."""
    if revision is None:
        return
    try:
        ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision)
    except CommandError:
        raise BackupError(
            f"备份来自更新版本的快处（数据库版本 {revision}）：请先把本机升级到同一版本再恢复。"
            f"(the backup's schema {revision} is newer than this Kuaichu: upgrade first)"
        ) from None


async def _case_count(url: str) -> int:
    """Cases in the target database; a database without the table yet is empty."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM cases"))).scalar_one())
    except DBAPIError:
        return 0
    finally:
        await engine.dispose()


def _folders_in_use(data_dir: Path) -> list[str]:
    return [f for f in FOLDERS if (data_dir / f).is_dir() and any((data_dir / f).iterdir())]


async def _refuse_non_empty(cfg: ServerConfig) -> None:
    cases = await _case_count(cfg.database_url)
    full = await asyncio.to_thread(_folders_in_use, cfg.server.data_dir)
    if cases or full:
        held = ([f"{cases} 起案件 cases"] if cases else []) + [f"{f}/" for f in full]
        raise BackupError(
            f"目标服务器不是空的（{'、'.join(held)}）：恢复会覆盖现有数据。确认要覆盖请加 --replace。"
            f"(the target server is not empty; add --replace to overwrite it)"
        )


def _restore_sqlite(backup: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(target.name + ".restoring")
    shutil.copyfile(backup, staged)
    for suffix in ("-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(staged, target)


def _restore_files(folder: Path, manifest: dict[str, Any], data_dir: Path) -> None:
    for name in FOLDERS:
        shutil.rmtree(data_dir / name, ignore_errors=True)
    for entry in manifest["files"]:
        path = PurePosixPath(entry["path"])
        if path.parts[0] == "files":
            target = data_dir.joinpath(*path.parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / path, target)


async def restore(cfg: ServerConfig, folder: Path, *, replace: bool = False) -> Summary:
    """Onto a stopped server: the backup verified, the target found empty (or ``replace``), then
    the database, the files, and the schema brought up to this version's migrations."""
    manifest = await asyncio.to_thread(verify, folder)
    _known_revision(manifest.get("schema_revision"))
    kind = manifest["database"]
    if kind != ("postgresql" if _is_postgresql(cfg) else "sqlite"):
        raise BackupError(
            f"备份来自 {kind} 数据库，而 server.toml 配置的是另一种：请配置同一种数据库再恢复。"
            f"(the backup is of {kind}; configure the same kind of database)"
        )
    if not replace:
        await _refuse_non_empty(cfg)
    if kind == "postgresql":
        args, env = _pg_args(cfg)
        restore_args = ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction"]
        await _pg_tool("pg_restore", [*restore_args, "--exit-on-error", *args, str(folder / PG_DUMP)], env)
    else:
        await asyncio.to_thread(_restore_sqlite, folder / SQLITE_COPY, _sqlite_path(cfg))
    await asyncio.to_thread(_restore_files, folder, manifest, cfg.server.data_dir)
    await upgrade_schema(cfg.database_url)
    files = manifest["files"]
    return Summary(kind, len(files), sum(int(f["size"]) for f in files))
