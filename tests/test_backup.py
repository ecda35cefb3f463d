"""``kuaichu server backup`` and ``restore``, on SQLite and PostgreSQL: a backup taken while the
worker runs, restored onto an empty server, audits intact case by case (``kuaichu server audit``),
with the determination as issued and the signing keys back in place; a non-empty target, a used
backup folder and an altered backup are refused, and nothing is written."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from server.backup import BackupError, backup, restore
from server.casework.audit import file_sha256
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Determination
from tests.cases import new_case
from tests.commands import configured_command, server_command
from tests.conftest import RunningServer, make_server_config
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
