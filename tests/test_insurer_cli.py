"""``kuaichu insurer add | list | rotate-secret | disable`` as an operator runs them: secrets printed
once and only their hashes kept where signing does not need them, HTTPS endpoints only, a rotation
that keeps the old secret for its overlap, a disabled insurer."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.commands import ROOT


def _insurer(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuaichu.cli", "insurer", *args, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _certificate(path: Path) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PAIC claims gateway")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return cert.public_bytes(Encoding.DER)


def test_the_directory_from_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n\n[broker]\nhost = "127.0.0.1"\nport = 1\n')
    (tmp_path / "data").mkdir()
    common = ["--name", "中国人民财产保险股份有限公司", "--contact", "张工 13800000000", "--policy-prefix", "PICC"]

    plain = _insurer(config, "add", "PICC", *common, "--endpoint", "http://insurer.example/hook", "--auth", "api_key")
    assert plain.returncode == 1 and "HTTPS" in plain.stderr

    added = _insurer(config, "add", "PICC", *common, "--endpoint", "https://insurer.example/hook", "--auth", "api_key")
    assert added.returncode == 0, added.stderr
    secret = next(line.split(": ")[1] for line in added.stdout.splitlines() if line.startswith("webhook secret"))
    api_key = next(line.split(": ")[1] for line in added.stdout.splitlines() if line.startswith("API key"))
    assert secret.startswith("whsec_") and api_key.startswith("kcik_")
    again = _insurer(config, "add", "PICC", *common, "--endpoint", "https://insurer.example/hook", "--auth", "api_key")
    assert again.returncode == 1 and "已存在" in again.stderr

    der = _certificate(tmp_path / "paic.pem")
    mtls = _insurer(
        config,
        *("add", "PAIC", "--name", "中国平安财产保险股份有限公司", "--contact", "李工"),
        *("--endpoint", "https://paic.example/kuaichu", "--auth", "mtls", "--cert", str(tmp_path / "paic.pem")),
        *("--registry-name", "中国平安财产保险股份有限公司"),
    )
    assert mtls.returncode == 0, mtls.stderr
    assert "API key" not in mtls.stdout
    no_cert = _insurer(config, "add", "CPIC", *common, "--endpoint", "https://c.example/", "--auth", "mtls")
    assert no_cert.returncode == 1 and "--cert" in no_cert.stderr

    rotated = _insurer(config, "rotate-secret", "PICC", "--overlap-h", "2")
    assert rotated.returncode == 0, rotated.stderr
    new_secret = rotated.stdout.rsplit(": ", 1)[1].strip()
    assert new_secret.startswith("whsec_") and new_secret != secret
    assert _insurer(config, "disable", "PAIC").returncode == 0
    assert _insurer(config, "disable", "NOPE").returncode == 1

    listed = _insurer(config, "list")
    assert listed.returncode == 0, listed.stderr
    paic, picc = listed.stdout.splitlines()  # by code
    assert picc.startswith("PICC\tactive\tapi_key") and "current" in picc and "until" in picc
    assert paic.startswith("PAIC\tdisabled\tmtls") and "“中国平安财产保险股份有限公司”" in paic
    assert api_key not in listed.stdout and secret not in listed.stdout

    with sqlite3.connect(tmp_path / "data" / "kuaichu.db") as db:
        stored = dict(db.execute("SELECT code, coalesce(api_key_hash, cert_fingerprint) FROM insurers").fetchall())
        secrets = [s for (s,) in db.execute("SELECT secret FROM insurer_secrets WHERE insurer_code = 'PICC'")]
    assert stored == {"PICC": hashlib.sha256(api_key.encode()).hexdigest(), "PAIC": hashlib.sha256(der).hexdigest()}
    assert sorted(secrets) == sorted([secret, new_secret])
