"""STUN/TURN servers as configuration: the same model in ``device.toml`` and ``server.toml``."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from runtime.configfile import ConfigSection

IceUrl = Annotated[str, Field(pattern=r"^(stun|stuns|turn|turns):[^\s/?#]+(\?transport=(udp|tcp))?$")]


class IceServer(ConfigSection):
    """One STUN or TURN server, as WebRTC's RTCIceServer takes it."""

    urls: list[IceUrl] = Field(min_length=1, max_length=4)
    username: str | None = Field(default=None, max_length=128)
    credential: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _turn_has_credentials(self) -> Self:
        if any(u.startswith("turn") for u in self.urls) and (self.username is None or self.credential is None):
            raise ValueError("a TURN server needs username and credential")
        return self
