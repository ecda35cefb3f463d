"""Typed configuration files: TOML in, a validated pydantic model out, or an error naming file and key.

Device and server configuration are declared once as models (``device.config``,
``server.config``); this module only reads the file and turns validation errors into messages a
technician can act on, e.g. ``/etc/kuaichu/device.toml: gpio.button_pin: Input should be less
than or equal to 27``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigSection(BaseModel):
    """Base for every config model: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)


class ConfigError(Exception):
    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{path}: {key}: {msg}" if key else f"{path}: {msg}" for key, msg in problems]
        super().__init__("\n".join(lines))


def load_config(model: type[M], path: Path) -> M:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [("", f"cannot read: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, [("", f"not valid TOML: {exc}")]) from None
    return validate_config(model, data, path)


def validate_config(model: type[M], data: object, path: Path) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append((key, msg))
        raise ConfigError(path, problems) from None
