"""Registry records and parties for the case-work tests, dated relative to now so they never age.

The records go in through ``kuaichu registry import``'s own code path, from CSV files.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from server.casework.registry_import import import_file
from server.config import ServerConfig
from server.db.engine import make_engine, make_sessionmaker, upgrade_schema

# (name, ID number, plate, vehicle type, licence classes, policy) — ID numbers with valid check characters.
DRIVER_A = {"name": "李建华", "id_number": "530402196505056620", "plate": "云A5H821", "policy": "PICC2026530100000000"}
DRIVER_B = {"name": "王芳", "id_number": "11010519491231002X", "plate": "云AD12345", "policy": "PAIC2026530100000001"}
DRIVER_C = {"name": "赵强", "id_number": "53011319870721836X", "plate": "云A6A72G", "policy": "CPIC2026530100000002"}


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def registry_files(folder: Path) -> list[Path]:
    """A and B fully valid; C's compulsory insurance expired yesterday."""
    folder.mkdir(parents=True, exist_ok=True)
    today = date.today()
    now = datetime.now(UTC).replace(microsecond=0)
    drivers = [DRIVER_A, DRIVER_B, DRIVER_C]
    licences = [
        {
            "licence_no": d["id_number"],
            "id_number": d["id_number"],
            "name": d["name"],
            "classes": "C1",
            "valid_from": today - timedelta(days=900),
            "valid_until": today + timedelta(days=2000),
            "status": "valid",
        }
        for d in drivers
    ]
    vehicles = [
        {
            "plate": d["plate"],
            "vin": f"LSVAM4187C218452{i}",
            "vehicle_type": "K33",
            "automatic": "no",
            "owner_name": d["name"],
            "registered_on": today - timedelta(days=800),
            "inspection_until": today + timedelta(days=300),
            "status": "normal",
        }
        for i, d in enumerate(drivers)
    ]
    policies = [
        {
            "policy_no": d["policy"],
            "insurer": "中国人民财产保险股份有限公司昆明市分公司",
            "plate": d["plate"],
            "starts_at": (now - timedelta(days=100 if d is not DRIVER_C else 366)).isoformat(),
            "ends_at": (now + timedelta(days=265) if d is not DRIVER_C else now - timedelta(days=1)).isoformat(),
        }
        for d in drivers
    ]
    return [
        _write(folder / "licences.csv", licences),
        _write(folder / "vehicles.csv", vehicles),
        _write(folder / "policies.csv", policies),
    ]


async def seed_registry(url: str, folder: Path) -> None:
    await upgrade_schema(url)
    engine = make_engine(url)
    try:
        for path in registry_files(folder):
            await import_file(make_sessionmaker(engine), path)
    finally:
        await engine.dispose()


def driver(d: dict[str, str], **changes: Any) -> dict[str, Any]:
    """A driver party as the console posts it."""
    body: dict[str, Any] = {
        "role": "driver",
        "name": d["name"],
        "id_number": d["id_number"],
        "phone": "13888000001",
        "licence_no": d["id_number"],
        "plate": d["plate"],
        "vehicle_type": "K33",
        "insurer": "中国人民财产保险股份有限公司昆明市分公司",
        "policy_no": d["policy"],
    }
    return body | changes


def with_font_cache(cfg: ServerConfig, folder: Path) -> ServerConfig:
    return ServerConfig.model_validate(cfg.model_dump() | {"documents": {"font_cache_dir": folder}})


FACTS = {
    "injury": "none",
    "vehicles_movable": True,
    "suspected_impairment": False,
    "hazardous_goods": False,
    "hit_and_run": False,
    "facts_disputed": False,
    "place": "五华区翠湖南路与洪化桥交叉口",
    "weather": "晴",
}


def decision(ids: list[int], shares: tuple[str, str] = ("全部", "无"), **extra: object) -> dict[str, object]:
    return {
        "situation": "rear_end",
        "liabilities": [{"party_id": i, "liability": s} for i, s in zip(ids, shares, strict=True)],
        "facts": "甲驾驶小型轿车沿翠湖南路由东向西行驶，未与前车保持安全距离，追尾乙驾驶的小型轿车，两车受损。",
        "legal_basis": "《中华人民共和国道路交通安全法》第四十三条",
        **extra,
    }
