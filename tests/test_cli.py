"""The ``kuaichu`` command as an operator types it."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.commands import kuaichu, write_server_toml
from tests.conftest import RunningServer


async def test_add_user_creates_an_operator_who_can_log_in(server: RunningServer, tmp_path: Path) -> None:
    config = write_server_toml(server, tmp_path / "server.toml")
    done = kuaichu(
        "server",
        "add-user",
        "li.wei",
        "--role",
        "dispatcher",
        "--unit",
        "530102",
        "--name",
        "李伟",
        "--config",
        str(config),
        stdin="a long enough secret\n",
    )
    assert done.returncode == 0, done.stderr
    assert "li.wei" in done.stdout
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post("/api/login", json={"username": "li.wei", "password": "a long enough secret"})
        assert response.status_code == 200
        assert response.json()["display_name"] == "李伟"
        assert response.json()["units"] == ["530102"]


def test_add_user_refuses_bad_input_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n\n[broker]\nhost = "127.0.0.1"\nport = 1\n')
    short = kuaichu(
        "server",
        "add-user",
        "a",
        "--role",
        "dispatcher",
        "--unit",
        "530102",
        "--config",
        str(config),
        env={"KUAICHU_PASSWORD": "short"},
    )
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    no_unit = kuaichu(
        "server",
        "add-user",
        "b",
        "--role",
        "officer",
        "--config",
        str(config),
        env={"KUAICHU_PASSWORD": "long enough password"},
    )
    assert no_unit.returncode == 1 and "at least one unit" in no_unit.stderr
    bad_unit = kuaichu(
        "server",
        "add-user",
        "c",
        "--role",
        "dispatcher",
        "--unit",
        "110101",
        "--config",
        str(config),
        env={"KUAICHU_PASSWORD": "long enough password"},
    )
    assert bad_unit.returncode == 1 and "unknown unit(s): 110101" in bad_unit.stderr
    twice = [
        kuaichu(
            "server",
            "add-user",
            "d",
            "--role",
            "admin",
            "--config",
            str(config),
            env={"KUAICHU_PASSWORD": "long enough password"},
        )
        for _ in range(2)
    ]
    assert twice[0].returncode == 0 and twice[1].returncode == 1 and "exists already" in twice[1].stderr


def test_gnss_replay_prints_one_fix_per_line() -> None:
    track = Path(__file__).parents[1] / "device" / "sim" / "kunming_track.nmea"
    done = kuaichu("device", "gnss-replay", str(track), "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) > 500
    import json

    first = json.loads(lines[0])
    fields = {"time", "lat", "lon", "alt", "speed", "track", "mode", "sats", "hdop", "trusted", "reason"}
    assert set(first) == fields | {"date_from_clock"}
    assert first["time"].endswith("Z") and first["mode"] in (2, 3)
