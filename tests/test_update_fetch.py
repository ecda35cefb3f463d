"""A unit finds and downloads a signed release from the real server's ``/updates/``, and refuses
what TUF says it must: a target whose hash does not match, metadata signed by the wrong key,
metadata or a release older than what it has (rollback), expired metadata (freeze) and a download
larger than allowed. The repository is made by ``kuaichu release init / sign / publish``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tarfile
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Timestamp

from device.update.fetch import Fetcher, Offer, Paused
from device.update.refusals import REASONS, Refusal, UpdateRefused
from tests.conftest import RunningServer
from tests.releases import published, release, release_base, station, trusted_root, update_server, wheelhouse

RUNNING = {"firmware": "0.1.0", "models": None}
__all__ = ["published", "release_base", "station", "update_server"]  # fixtures


def unit(server: RunningServer, station: Path, cache: Path, max_bytes: int = 100 << 20) -> Fetcher:
    return Fetcher(f"{server.url}/updates", trusted_root(station), cache, max_bytes)


async def offers(fetcher: Fetcher, running: dict[str, str | None] = RUNNING) -> list[Offer]:
    return await asyncio.to_thread(fetcher.offers, running)


async def refused(fetcher: Fetcher, running: dict[str, str | None] = RUNNING) -> UpdateRefused:
    with pytest.raises(UpdateRefused) as caught:
        for offer in await offers(fetcher, running):
            await asyncio.to_thread(fetcher.download, offer, lambda: False)
    return caught.value


async def test_a_unit_downloads_the_signed_firmware_and_models_and_resumes_a_cut_download(
    update_server: RunningServer, station: Path, tmp_path: Path
) -> None:
    fetcher = unit(update_server, station, tmp_path / "unit")
    found = {offer.kind: offer for offer in await offers(fetcher)}
    assert {kind: offer.version for kind, offer in found.items()} == {"firmware": "0.2.0", "models": "2026.12.1"}
    assert await offers(fetcher, {"firmware": "0.2.0", "models": "2026.12.1"}) == []  # nothing newer

    # The unit gets busy after the first chunk: the download stops, what it had stays on disk.
    firmware = found["firmware"]
    with pytest.raises(Paused):
        await asyncio.to_thread(fetcher.download, firmware, lambda: True)
    [partial] = (tmp_path / "unit" / "downloads").glob("*.partial")
    had = partial.stat().st_size
    assert 0 < had < firmware.target.length
    head = partial.read_bytes()
    path = await asyncio.to_thread(fetcher.download, firmware, lambda: False)
    assert path.read_bytes()[:had] == head and path.stat().st_size == firmware.target.length
    with tarfile.open(path) as tar:
        names = tar.getnames()
        lock = tar.extractfile("requirements.lock")
        assert lock is not None
        lines = lock.read().decode().splitlines()
    assert "wheels/kuaichu-0.2.0-py3-none-any.whl" in names
    assert any(line.startswith("kuaichu==0.2.0 --hash=sha256:") for line in lines)
    models = await asyncio.to_thread(fetcher.download, found["models"], lambda: False)
    with tarfile.open(models) as tar:
        assert all(name.startswith("models/") and name.endswith(".tflite") for name in tar.getnames())


async def test_a_target_changed_on_the_server_is_refused_and_thrown_away(
    update_server: RunningServer, station: Path, tmp_path: Path
) -> None:
    served = tmp_path / "served" / "targets" / "firmware" / "kuaichu-0.2.0.tar"
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, one byte changed
    served.write_bytes(bytes(data))
    refusal = await refused(unit(update_server, station, tmp_path / "unit"))
    assert refusal.refusal is Refusal.HASH_MISMATCH
    assert refusal.reason.startswith(REASONS[Refusal.HASH_MISMATCH])
    assert list((tmp_path / "unit" / "downloads").iterdir()) == []


async def test_metadata_signed_by_a_key_the_root_does_not_name_is_refused(
    update_server: RunningServer, station: Path, tmp_path: Path
) -> None:
    path = tmp_path / "served" / "metadata" / "timestamp.json"
    forged = Metadata[Timestamp].from_file(str(path))
    forged.signed.version += 1
    forged.signatures.clear()
    forged.sign(CryptoSigner.generate_ed25519())
    forged.to_file(str(path))
    assert (await refused(unit(update_server, station, tmp_path / "unit"))).refusal is Refusal.BAD_SIGNATURE


async def test_older_metadata_or_an_older_release_is_a_rollback(
    update_server: RunningServer, station: Path, release_base: Path, tmp_path: Path
) -> None:
    fetcher = unit(update_server, station, tmp_path / "unit")
    served = tmp_path / "served"
    names = ["metadata/timestamp.json", "metadata/snapshot.json", "metadata/targets.json", "targets/latest.json"]
    old = {name: (served / name).read_bytes() for name in names}
    done = release(station, "sign", "--firmware", str(wheelhouse(release_base, "0.3.0", tmp_path / "wh-0.3.0")))
    assert done.returncode == 0, done.stderr
    assert release(station, "publish", "--to", str(tmp_path / "served")).returncode == 0
    assert [o.version for o in await offers(fetcher) if o.kind == "firmware"] == ["0.3.0"]  # the unit saw v3
    for name, data in old.items():  # the server (or a mirror in between) serves what it had before
        (served / name).write_bytes(data)
    refusal = await refused(fetcher)
    assert refusal.refusal is Refusal.ROLLBACK and "timestamp" in refusal.detail.lower()

    # A unit that already runs a newer release than the one signed as latest refuses it too.
    fresh = unit(update_server, station, tmp_path / "fresh")
    refusal = await refused(fresh, {"firmware": "0.4.0", "models": None})
    assert refusal.refusal is Refusal.ROLLBACK and "0.2.0 offered, 0.4.0 installed" in refusal.detail


async def test_expired_metadata_is_a_freeze_and_is_refused(
    update_server: RunningServer, station: Path, tmp_path: Path
) -> None:
    done = release(station, "publish", "--to", str(tmp_path / "served"), "--timestamp-days=-1")
    assert done.returncode == 0, done.stderr
    timestamp = json.loads((tmp_path / "served" / "metadata" / "timestamp.json").read_text())
    expires = dt.datetime.fromisoformat(timestamp["signed"]["expires"].replace("Z", "+00:00"))
    assert expires < dt.datetime.now(dt.UTC)
    assert (await refused(unit(update_server, station, tmp_path / "unit"))).refusal is Refusal.EXPIRED


async def test_a_download_larger_than_allowed_or_than_signed_is_refused(
    update_server: RunningServer, station: Path, tmp_path: Path
) -> None:
    # Larger than the unit allows: refused before a byte is fetched.
    small = unit(update_server, station, tmp_path / "small", max_bytes=1 << 20)
    refusal = await refused(small)
    assert refusal.refusal is Refusal.TOO_LARGE
    assert not list((tmp_path / "small" / "downloads").glob("*"))

    # The server sends more than the signed length: the download stops there and is thrown away.
    served = tmp_path / "served" / "targets" / "firmware" / "kuaichu-0.2.0.tar"
    with served.open("ab") as f:
        f.write(b"\0" * (1 << 20))
    refusal = await refused(unit(update_server, station, tmp_path / "unit"))
    assert refusal.refusal is Refusal.TOO_LARGE and "more than its signed" in refusal.detail
    assert not list((tmp_path / "unit" / "downloads").glob("*"))
