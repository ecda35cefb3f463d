"""The control socket of a simulated device: a finger on its button and a hand on its hazards.

A device running with ``pin_factory = "mock"`` listens on a Unix socket, and ``kuaichu demo
press`` or the console's demo panel, in other processes, send it commands. The commands drive the
same ``MockFactory`` pins that ``device.hal.trigger`` reads, so a demo press goes through the
real long-press and hazard logic, not around it.

One JSON object per line in, one per line out::

    {"cmd": "press", "hold_s": 2.0}   hold the button down (default: long_press_s + 0.5 s)
    {"cmd": "hazard", "on": true}     switch the hazards on (the line flashes at 1.5 Hz) or off
    {"cmd": "status"}                 the button, hazard, LED and buzzer lines

Every answer has ``"ok"``; a refused command has ``"error"`` too. The socket is the owner's only
(mode 0600): whoever can write to it can call the police.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from device.config import GpioSection

log = logging.getLogger(__name__)

MAX_LINE = 4096
IDLE_TIMEOUT_S = 60.0
MAX_HOLD_S = 30.0
FLASH_HALF_PERIOD_S = 1 / 1.5 / 2  # a flasher relay at 1.5 Hz


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Press(_Command):
    cmd: Literal["press"]
    hold_s: float | None = Field(default=None, ge=0, le=MAX_HOLD_S, allow_inf_nan=False)


class Hazard(_Command):
    cmd: Literal["hazard"]
    on: bool


class Status(_Command):
    cmd: Literal["status"]


Command = Annotated[Press | Hazard | Status, Field(discriminator="cmd")]
_COMMAND: TypeAdapter[Press | Hazard | Status] = TypeAdapter(Command)

Answer = dict[str, Any]


class ControlError(ConnectionError):
    """The control socket gave no usable answer (an ``OSError``, like failing to connect)."""


def parse_command(line: bytes) -> Press | Hazard | Status:
    """One command line, or ``ValueError`` saying what is wrong with it."""
    try:
        return _COMMAND.validate_json(line)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:])
        raise ValueError(f"{where}: {first['msg']}" if where else first["msg"]) from None


class ControlServer:
    """Serves the control socket at ``path`` for the pins of ``factory`` (a ``MockFactory``).

    Closed like an ``asyncio.Server``: ``close()``, then ``await wait_closed()``.
    """

    def __init__(self, path: Path, factory: Any, cfg: GpioSection) -> None:
        from gpiozero.pins.mock import MockFactory

        if not isinstance(factory, MockFactory):
            raise TypeError("the control socket drives MockFactory pins only")
        self._path = path
        self._cfg = cfg
        self._factory = factory
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._pressing = False
        self._flasher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    async def start(self) -> None:
        self._remove_stale_socket()
        self._server = await asyncio.start_unix_server(self._client, path=self._path, limit=MAX_LINE)
        os.chmod(self._path, 0o600)
        log.info("control: listening on %s", self._path)

    def close(self) -> None:
        """Stop listening and hang up on the clients; a held button and flashing hazards let go."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        for task in self._clients:
            task.cancel()
        if self._flasher is not None:
            self._flasher.cancel()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await asyncio.gather(*self._clients, return_exceptions=True)
        await self._stop_flashing()

    def _remove_stale_socket(self) -> None:
        """A socket left by a device that died is removed; any other file there is an error."""
        try:
            mode = self._path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise FileExistsError(f"{self._path} exists and is not a socket")
        self._path.unlink()

    # connections -----------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The work runs in a task of our own: asyncio's stream server logs a cancelled handler as
        # an error, and close() must be able to cancel a client in the middle of a long press.
        serving = asyncio.create_task(self._serve(reader, writer))
        self._clients.add(serving)
        try:
            await asyncio.wait([serving])
        finally:
            serving.cancel()
            self._clients.discard(serving)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT_S):
                        line = await reader.readline()
                except ValueError:  # longer than MAX_LINE: answer, then hang up on it
                    await self._send(writer, {"ok": False, "error": f"line longer than {MAX_LINE} bytes"})
                    break
                if not line:
                    break
                await self._send(writer, await self._answer(line))
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, answer: Answer) -> None:
        writer.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
        await writer.drain()

    async def _answer(self, line: bytes) -> Answer:
        try:
            command = parse_command(line)
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        match command:
            case Press(hold_s=hold_s):
                return await self._press(self._cfg.long_press_s + 0.5 if hold_s is None else hold_s)
            case Hazard(on=on):
                return await self._hazard(on)
            case Status():
                return {"ok": True, **self.status()}

    # the pins --------------------------------------------------------------------------------

    def status(self) -> Answer:
        pin = self._factory.pin
        hazard = None
        if self._cfg.hazard_pin is not None:
            hazard = self._flasher is not None or self._hazard_level(pin(self._cfg.hazard_pin).state)
        return {
            "button_pressed": not pin(self._cfg.button_pin).state,
            "hazard_on": hazard,
            "led": bool(pin(self._cfg.led_pin).state),
            "buzzer": bool(pin(self._cfg.buzzer_pin).state),
        }

    async def _press(self, hold_s: float) -> Answer:
        if self._pressing:
            return {"ok": False, "error": "the button is already held down"}
        button = self._factory.pin(self._cfg.button_pin)
        self._pressing = True
        log.info("control: press for %.1fs", hold_s)
        try:
            button.drive_low()
            await asyncio.sleep(hold_s)
        finally:
            button.drive_high()
            self._pressing = False
        return {"ok": True, "cmd": "press", "hold_s": hold_s}

    async def _hazard(self, on: bool) -> Answer:
        if self._cfg.hazard_pin is None:
            return {"ok": False, "error": "this device has no hazard input"}
        log.info("control: hazards %s", "on" if on else "off")
        if on and self._flasher is None:
            self._flasher = asyncio.create_task(self._flash(self._factory.pin(self._cfg.hazard_pin)))
        elif not on:
            await self._stop_flashing()
        return {"ok": True, "cmd": "hazard", "on": on}

    async def _flash(self, line: Any) -> None:
        """Pulse the hazard line as a flasher relay does, until cancelled; it ends switched off."""
        try:
            while True:
                self._drive_hazard(line, True)
                await asyncio.sleep(FLASH_HALF_PERIOD_S)
                self._drive_hazard(line, False)
                await asyncio.sleep(FLASH_HALF_PERIOD_S)
        finally:
            self._drive_hazard(line, False)

    async def _stop_flashing(self) -> None:
        if self._flasher is not None:
            self._flasher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flasher
            self._flasher = None

    def _drive_hazard(self, line: Any, lit: bool) -> None:
        if lit == self._cfg.hazard_active_high:
            line.drive_high()
        else:
            line.drive_low()

    def _hazard_level(self, state: bool) -> bool:
        return bool(state) == self._cfg.hazard_active_high


async def serve_control(path: Path, factory: Any, cfg: GpioSection) -> ControlServer:
    """A started control socket at ``path`` for the mock pins of ``factory``."""
    server = ControlServer(path, factory, cfg)
    await server.start()
    return server


async def send_control(path: Path, command: dict[str, Any], timeout_s: float = MAX_HOLD_S + 10) -> Answer:
    """Send one command to the control socket at ``path`` and return its answer.

    An answer with ``"ok": false`` is returned as it is; ``ControlError`` means there was none.
    """
    reader, writer = await asyncio.open_unix_connection(path, limit=MAX_LINE)
    try:
        writer.write(json.dumps(command).encode() + b"\n")
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    if not line:
        raise ControlError(f"{path}: closed without an answer")
    try:
        answer = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ControlError(f"{path}: answer is not JSON") from exc
    if not isinstance(answer, dict):
        raise ControlError(f"{path}: answer is not an object")
    return answer
