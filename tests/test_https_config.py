"""The console's HTTPS settings: a certificate, key or setting that cannot work is refused when the
worker starts, with the file and the key to fix, instead of failing later in every browser."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.configfile import ConfigError
from server.config import load_server_config
from tests.configs import WebCert, web_cert

SERVER_TOML = """\
[server]
data_dir = "{data}"

[broker]
host = "localhost"
port = 1883

[http]
host = "0.0.0.0"
port = 8443
{http}
"""


@pytest.fixture
def cert(tmp_path: Path) -> WebCert:
    return web_cert(tmp_path / "web", "kuaichu.example.cn")


def write_config(tmp_path: Path, http: str) -> Path:
    path = tmp_path / "server.toml"
    path.write_text(SERVER_TOML.format(data=tmp_path / "data", http=http), encoding="utf-8")
    return path


def tls_keys(cert: Path, key: Path) -> str:
    return f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_server_config(path)
    assert caught.value.path == path
    ((key, message),) = caught.value.problems
    return f"{key}: {message}"


def test_a_key_of_another_certificate_is_refused_naming_both_files(tmp_path: Path, cert: WebCert) -> None:
    other = web_cert(tmp_path / "other", "kuaichu.example.cn")
    path = write_config(tmp_path, tls_keys(cert.cert, other.key))
    assert f"tls_key_file: {other.key} 与证书 {cert.cert} 不配对" in refusal(path)


def test_a_missing_certificate_is_named(tmp_path: Path, cert: WebCert) -> None:
    absent = tmp_path / "absent.crt"
    path = write_config(tmp_path, tls_keys(absent, cert.key))
    assert refusal(path).startswith(f"http: Value error, tls_cert_file: 无法读取 {absent}")


def test_files_swapped_are_named(tmp_path: Path, cert: WebCert) -> None:
    """The key where the certificate belongs, and then the certificate where the key belongs."""
    path = write_config(tmp_path, tls_keys(cert.key, cert.key))
    assert f"tls_cert_file: {cert.key} 不是 PEM 格式的证书" in refusal(path)
    path = write_config(tmp_path, tls_keys(cert.cert, cert.cert))
    assert f"tls_key_file: {cert.cert} 不是未加密的 PEM 私钥" in refusal(path)


@pytest.mark.parametrize(
    ("http", "words"),
    [
        ('tls_cert_file = "{cert}"\n', "tls_cert_file 和 tls_key_file 要么都填"),
        ("redirect_port = 80\n", "redirect_port 只用于 HTTPS"),
        ('{both}public_url = "http://kuaichu.example.cn"\n', "启用 TLS 时 public_url 必须以 https:// 开头"),
        ("{both}redirect_port = 8443\n", "redirect_port 不能与 port 相同"),
    ],
    ids=["cert without key", "redirect without TLS", "plain public address", "one port for both"],
)
def test_settings_that_cannot_work_together(tmp_path: Path, cert: WebCert, http: str, words: str) -> None:
    path = write_config(tmp_path, http.format(cert=cert.cert, both=tls_keys(cert.cert, cert.key)))
    assert refusal(path).startswith(f"http: Value error, {words}")


def test_plain_cookies_with_tls_are_refused(tmp_path: Path, cert: WebCert) -> None:
    text = SERVER_TOML.replace('"0.0.0.0"', '"127.0.0.1"')
    path = tmp_path / "server.toml"
    path.write_text(text.format(data=tmp_path, http=tls_keys(cert.cert, cert.key) + "secure_cookies = false\n"))
    assert refusal(path).startswith("http: Value error, 启用 TLS 时 secure_cookies 不能为 false")


def test_with_tls_the_default_public_address_is_https(tmp_path: Path, cert: WebCert) -> None:
    cfg = load_server_config(write_config(tmp_path, tls_keys(cert.cert, cert.key)))
    assert cfg.http.tls and cfg.public_url == "https://0.0.0.0:8443"
    plain = load_server_config(write_config(tmp_path, ""))
    assert not plain.http.tls and plain.public_url == "http://0.0.0.0:8443"


def test_server_run_refuses_a_mismatched_key_before_starting(tmp_path: Path, cert: WebCert) -> None:
    """The operator's view: the command exits at once with the file, the key and both files named."""
    other = web_cert(tmp_path / "other", "kuaichu.example.cn")
    path = write_config(tmp_path, tls_keys(cert.cert, other.key))
    kuaichu = shutil.which("kuaichu", path=str(Path(sys.executable).parent))
    assert kuaichu is not None
    done = subprocess.run([kuaichu, "server", "run", "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"{path}: http: Value error, tls_key_file: {other.key} 与证书 {cert.cert} 不配对" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing was started
