"""Variants of a test server's configuration: clearing and SMS delivery."""

from __future__ import annotations

from pathlib import Path

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
