"""``kuaichu server backup`` and ``restore``, on SQLite and PostgreSQL: a backup taken while the
worker runs, restored onto an empty server, audits intact case by case (``kuaichu server audit``),
with the determination as issued and the signing keys back in place; a non-empty target, a used
backup folder and an altered backup are refused, and nothing is written. The nightly backup keeps
the last ones, leaves nothing when it fails, and its time reaches the workers' ``/metrics``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from sqlalchemy import select

from server.backup import BackupError, _lock, backup, read_stamp, restore, scheduled_backup, verify
from server.casework.audit import file_sha256
from server.config import BackupSection, DatabaseSection
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Determination
from tests.cases import new_case
from tests.commands import configured_command, server_command
from tests.conftest import RunningServer, make_server_config
from tests.metrics_text import samples, value
from tests.review_data import JPEG, determined_over_api, party_client
from tests.services import Mosquitto, create_database
from tests.stored import cases_in

PHONES = ("13700003333", "13700004444")
FORM = {"request": "请求重新认定", "reasons": "对方突然变道，我方已减速避让。"}


async def test_a_backup_restored_onto_an_empty_server_audits_intact(
    case_server: RunningServer, broker: Mosquitto, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = case_server
    # A case with a determination (its PDF and the unit's signing key) and a review with a photo
    # (an evidence file), and a second case still new.
    _, case_no, _ = await determined_over_api(server, broker, PHONES)
    party = await party_client(server, case_no, PHONES[0])
    filed = await party.post("/api/portal/review", data=FORM, files=[("files", ("现场.jpg", JPEG, "image/jpeg"))])
    assert filed.status_code == 201, filed.text
    await party.aclose()
    second = await new_case(broker)

    out = tmp_path / "backup"
    done = await asyncio.to_thread(server_command, server, tmp_path / "source.toml", "backup", str(out))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    folders = {f["path"].split("/")[1] for f in manifest["files"] if f["path"].startswith("files/")}
    assert folders == {"evidence", "documents", "keys"}
    assert manifest["created_at"].endswith("+08:00")

    # An empty server: a fresh data folder and a database of its own kind.
    pg = "postgresql" in server.cfg.database_url
    url = create_database(request.getfixturevalue("pg_cluster")) if pg else None
    target = make_server_config(tmp_path / "restored", broker.port, database_url=url)
    await restore(target, out)
    assert [c.case_no for c in await cases_in(target.database_url)] == [case_no, second]

    audit = await asyncio.to_thread(configured_command, target, tmp_path / "restored.toml", "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "2 cases audited: 全部完好 all intact" in audit.stdout
    assert f"case {second}: 1 events, 0 evidence files; intact" in audit.stdout
    assert re.search(rf"case {case_no}: \d+ events, 1 evidence files; intact", audit.stdout), audit.stdout
    # The determination as issued, and the key that signed it, are back where the worker reads them.
    engine = make_engine(target.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            issued = (await session.scalars(select(Determination))).one()
    finally:
        await engine.dispose()
    assert file_sha256(target.documents_dir / issued.path) == issued.sha256
    for folder in ("keys", "documents", "evidence"):
        assert tree(target.server.data_dir / folder) == tree(server.cfg.server.data_dir / folder), folder

    # The target now holds cases: a second restore is refused unless told to replace them.
    with pytest.raises(BackupError, match="--replace") as refused:
        await restore(target, out)
    assert "2 起案件" in str(refused.value)
    await restore(target, out, replace=True)
    assert [c.case_no for c in await cases_in(target.database_url)] == [case_no, second]

    # A backup goes only into a new or empty folder.
    with pytest.raises(BackupError, match="不是空目录"):
        await backup(server.cfg, out)


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): file_sha256(p) for p in folder.rglob("*") if p.is_file()}


async def test_an_altered_backup_is_refused_and_nothing_restored(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    await new_case(broker)
    out = tmp_path / "backup"
    await backup(server.cfg, out)
    target = make_server_config(tmp_path / "restored", broker.port)
    config = tmp_path / "restored.toml"

    database = out / "database.sqlite3"
    original = database.read_bytes()
    database.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    (out / "files" / "evidence").mkdir(parents=True)
    (out / "files" / "evidence" / "planted.jpg").write_bytes(JPEG)
    refused = await asyncio.to_thread(configured_command, target, config, "restore", str(out))
    assert refused.returncode == 1
    assert "altered (SHA-256 differs): database.sqlite3" in refused.stderr
    assert "not in the manifest: files/evidence/planted.jpg" in refused.stderr
    assert not target.server.data_dir.exists()

    # A manifest edited to point outside the backup is refused before any file is read.
    database.write_bytes(original)
    (out / "files" / "evidence" / "planted.jpg").unlink()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    escaping = {"path": "files/evidence/../../../etc/passwd", "sha256": "0" * 64, "size": 1}
    (out / "manifest.json").write_text(json.dumps(manifest | {"files": [*manifest["files"], escaping]}))
    with pytest.raises(BackupError, match="不允许的路径"):
        await restore(target, out)
    assert not target.server.data_dir.exists()

    # A backup from a newer Kuaichu, whose schema this one cannot migrate, is refused before writing.
    (out / "manifest.json").write_text(json.dumps(manifest | {"schema_revision": "0999_from_the_future"}))
    with pytest.raises(BackupError, match="更新版本"):
        await restore(target, out)
    assert not target.server.data_dir.exists()
    (out / "manifest.json").write_text(json.dumps(manifest))
    await restore(target, out)
    assert len(await cases_in(target.database_url)) == 1


async def test_the_nightly_backup_keeps_the_last_ones_and_leaves_nothing_when_it_fails(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    """``kuaichu server backup`` without a folder, as kuaichu-server-backup.service runs it."""
    await new_case(broker)
    root = tmp_path / "backups"
    root.mkdir()
    cfg = server.cfg.model_copy(update={"backup": BackupSection(dir=root, keep=2)})
    tables = f'[backup]\ndir = "{root}"\nkeep = 2\n'
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert value(samples((await http.get("/metrics")).text), "kuaichu_backup_last_success_timestamp_seconds") == 0

        nightly = await asyncio.to_thread(configured_command, cfg, tmp_path / "n.toml", "backup", tables=tables)
        assert nightly.returncode == 0, nightly.stderr
        first = next(n for n in os.listdir(root) if not n.startswith("."))
        assert re.fullmatch(r"kuaichu-\d{8}-\d{6}", first) and f"backup written: {root / first}" in nightly.stdout
        later = [await scheduled_backup(cfg), await scheduled_backup(cfg)]
        assert later[0].removed == [] and later[1].removed == [first]
        kept = sorted(n for n in os.listdir(root) if not n.startswith("."))
        assert kept == [d.folder.name for d in later] and kept[0] < kept[1]
        for name in kept:
            assert verify(root / name)["database"] == "sqlite"
        stamp = json.loads(cfg.backup_stamp.read_text())
        assert stamp["folder"] == kept[1] and abs(stamp["finished_at"] - time.time()) < 60

        # The workers export it, and when the certificates they connect with expire.
        found = samples((await http.get("/metrics")).text)
        assert value(found, "kuaichu_backup_last_success_timestamp_seconds") == stamp["finished_at"]
        tls = cfg.broker.tls
        assert tls is not None
        for label, path in (("broker_client", tls.cert_file), ("broker_ca", tls.ca_file)):
            expires = x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc.timestamp()
            assert value(found, "kuaichu_tls_cert_not_after_seconds", cert=label) == expires

    # A failure: one line saying what to do and exit status 1; no half backup, none deleted, the
    # stamp as it was.
    gone = cfg.model_copy(update={"database": DatabaseSection(url=f"sqlite+aiosqlite:///{tmp_path / 'gone.db'}")})
    failed = await asyncio.to_thread(configured_command, gone, tmp_path / "g.toml", "backup", tables=tables)
    assert failed.returncode == 1 and failed.stderr.startswith("kuaichu server backup: 数据库文件不存在"), failed.stderr
    assert sorted(n for n in os.listdir(root) if n != ".lock") == kept
    assert read_stamp(cfg.backup_stamp) == stamp["finished_at"]
    held = _lock(root)
    try:
        with pytest.raises(BackupError, match="另一次备份正在写入"):
            await scheduled_backup(cfg)
    finally:
        os.close(held)
    unmounted = cfg.model_copy(update={"backup": BackupSection(dir=tmp_path / "unmounted", keep=2)})
    with pytest.raises(BackupError, match="请检查备份磁盘是否已挂载"):
        await scheduled_backup(unmounted)
    assert sorted(n for n in os.listdir(root) if n != ".lock") == kept
