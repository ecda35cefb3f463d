"""Variants of a test server's configuration: clearing, SMS delivery, HTTPS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioning import ca
from server.config import ServerConfig
from tests.sms_provider import RECEIPT_TOKEN, TOKEN


def clearing(cfg: ServerConfig, move_off_s: float) -> ServerConfig:
    values = {"move_off_m": 30, "move_off_s": move_off_s, "check_every_s": 0.2}
    return ServerConfig.model_validate(cfg.model_dump() | {"clearing": values})


def sms_config(cfg: ServerConfig, folder: Path, font_cache: Path, provider_port: int) -> ServerConfig:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "token").write_text(TOKEN + "\n")
    (folder / "receipt-token").write_text(RECEIPT_TOKEN + "\n")
    return ServerConfig.model_validate(
        cfg.model_dump()
        | {
            "documents": {"font_cache_dir": font_cache},
            "sms": {
                "gateway_url": f"http://127.0.0.1:{provider_port}/send",
                "token_file": folder / "token",
                "receipt_token_file": folder / "receipt-token",
                "timeout_s": 2,
                "retry_base_s": 0.2,
                "retry_max_s": 1,
                "poll_s": 0.1,
            },
        }
    )


@dataclass(frozen=True)
class WebCert:
    ca: Path
    cert: Path
    key: Path


def web_cert(folder: Path, *hosts: str, days: int = ca.LEAF_DAYS) -> WebCert:
    """A console certificate for ``hosts`` from a CA made here, as an operator's own CA (or a public
    one) would issue it; ``ca`` is what a browser must trust."""
    authority = ca.create_authority("Kuaichu test web CA")
    cert, key = ca.issue(authority, hosts[0], ca.Usage.SERVER, hosts=list(hosts), days=days)
    folder.mkdir(parents=True, exist_ok=True)
    made = WebCert(folder / "ca.crt", folder / "console.crt", folder / "console.key")
    ca.write_cert(made.ca, authority.cert)
    ca.write_cert(made.cert, cert)
    ca.write_key(made.key, key)
    return made


def https(cfg: ServerConfig, cert: WebCert, **http: Any) -> ServerConfig:
    """``cfg`` serving the console over TLS with ``cert``, plus any other ``[http]`` keys."""
    values = cfg.model_dump()
    values["http"] |= {"secure_cookies": True, "tls_cert_file": cert.cert, "tls_key_file": cert.key} | http
    return ServerConfig.model_validate(values)
