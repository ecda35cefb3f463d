"""``kuaichu server backup`` and ``restore``, on SQLite and PostgreSQL: a backup taken while the
worker runs, restored onto an empty server, audits intact case by case and its determination still
verifies there; a non-empty target and an altered backup are refused, and nothing is written."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cases import new_case
from tests.commands import configured_command, server_command
from tests.conftest import RunningServer, make_server_config
from tests.review_data import determined_over_api, party_client
from tests.services import Mosquitto, create_database
from tests.stored import cases_in

PHONES = ("13700003333", "13700004444")
JPEG = b"\xff\xd8\xff\xe0" + b"scene" * 100
FORM = {"request": "请求重新认定", "reasons": "对方突然变道，我方已减速避让。"}


def verify_pdf(config: Path, pdf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuaichu.cli", "verify", str(pdf), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


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
    config = tmp_path / "restored.toml"
    restored = await asyncio.to_thread(configured_command, target, config, "restore", str(out))
    assert restored.returncode == 0, restored.stderr
    assert [c.case_no for c in await cases_in(target.database_url)] == [case_no, second]

    audit = await asyncio.to_thread(configured_command, target, config, "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    source_audit = await asyncio.to_thread(server_command, server, tmp_path / "source.toml", "audit")
    assert audit.stdout == source_audit.stdout
    assert "2 cases audited: 全部完好 all intact" in audit.stdout
    assert f"case {case_no}: " in audit.stdout and "1 evidence files; intact" in audit.stdout

    pdf = next((target.documents_dir / case_no).glob("*.pdf"))
    checked = await asyncio.to_thread(verify_pdf, config, pdf)
    assert checked.returncode == 0 and "genuine and unaltered" in checked.stdout, checked.stdout + checked.stderr

    # The target now holds cases: a second restore is refused unless told to replace them.
    again = await asyncio.to_thread(configured_command, target, config, "restore", str(out))
    assert again.returncode == 1 and "--replace" in again.stderr and "2 起案件" in again.stderr
    replaced = await asyncio.to_thread(configured_command, target, config, "restore", str(out), "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert (await asyncio.to_thread(configured_command, target, config, "audit")).stdout == source_audit.stdout

    # A backup goes only into a new or empty folder.
    busy = await asyncio.to_thread(server_command, server, tmp_path / "source.toml", "backup", str(out))
    assert busy.returncode == 1 and "不是空目录" in busy.stderr


async def test_an_altered_backup_is_refused_and_nothing_restored(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    await new_case(broker)
    out = tmp_path / "backup"
    done = await asyncio.to_thread(server_command, server, tmp_path / "source.toml", "backup", str(out))
    assert done.returncode == 0, done.stderr
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
    manifest["files"].append({"path": "files/evidence/../../../etc/passwd", "sha256": "0" * 64, "size": 1})
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    escaped = await asyncio.to_thread(configured_command, target, config, "restore", str(out))
    assert escaped.returncode == 1 and "不允许的路径" in escaped.stderr
    assert not target.server.data_dir.exists()
