"""The simulated device's control socket, pressing the real trigger code through MockFactory pins."""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from device.config import GpioSection
from device.hal.indicators import Indicators, Signal
from device.hal.pins import make_pin_factory
from device.hal.trigger import Triggers
from device.sim.control import MAX_LINE, ControlError, ControlServer, parse_command, send_control, serve_control
from protocol.messages import Trigger

LONG_PRESS_S = 0.3


class Device:
    """The pieces of a simulated device the control socket reaches: its trigger and indicators."""

    def __init__(self, path: Path, cfg: GpioSection) -> None:
        self.path = path
        self.cfg = cfg
        self.factory: Any = make_pin_factory("mock")
        self.seen: asyncio.Queue[Trigger] = asyncio.Queue()
        self.triggers = Triggers(cfg, self.factory, self.seen.put_nowait)
        self.indicators = Indicators(cfg, self.factory)
        self.control = ControlServer(path, self.factory, cfg)

    async def next(self) -> Trigger:
        return await asyncio.wait_for(self.seen.get(), timeout=5)

    async def send(self, **command: Any) -> dict[str, Any]:
        return await send_control(self.path, command)

    async def close(self) -> None:
        self.control.close()
        await self.control.wait_closed()
        self.indicators.close()
        self.triggers.close()
        self.factory.close()


def gpio(**overrides: Any) -> GpioSection:
    values: dict[str, Any] = {
        "pin_factory": "mock",
        "long_press_s": LONG_PRESS_S,
        "hazard_release_s": 1.0,
        "hazard_pin": 27,  # an in-car unit wired to the hazard-warning lamps
    }
    return GpioSection(**(values | overrides))


@pytest.fixture
def sock_path() -> Iterator[Path]:
    # Unix socket paths are limited to about 100 bytes; pytest's tmp_path can be longer
    with tempfile.TemporaryDirectory(prefix="kc-") as folder:
        yield Path(folder) / "control.sock"


@pytest.fixture
async def device(sock_path: Path) -> AsyncIterator[Device]:
    made = Device(sock_path, gpio())
    await made.control.start()
    yield made
    await made.close()


async def raw_exchange(path: Path, data: bytes, count: int) -> list[bytes]:
    """Send raw bytes, then read up to ``count`` answer lines, fewer if the server hangs up."""
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 20)
    writer.write(data)
    await writer.drain()
    lines: list[bytes] = []
    try:
        while len(lines) < count and (line := await asyncio.wait_for(reader.readline(), timeout=5)):
            lines.append(line)
    finally:
        writer.close()
    return lines


async def test_press_goes_through_the_real_long_press(device: Device) -> None:
    answer = await device.send(cmd="press")
    assert answer == {"ok": True, "cmd": "press", "hold_s": LONG_PRESS_S + 0.5}
    assert await device.next() is Trigger.BUTTON
    assert device.seen.empty()


async def test_a_brush_through_the_socket_does_not_report(device: Device) -> None:
    answer = await device.send(cmd="press", hold_s=0.02)
    assert answer["ok"] is True
    await asyncio.sleep(LONG_PRESS_S * 2)
    assert device.seen.empty()


async def test_status_while_pressing_and_after(device: Device) -> None:
    pressing = asyncio.create_task(device.send(cmd="press", hold_s=LONG_PRESS_S * 2))
    assert await device.next() is Trigger.BUTTON  # the trigger fires while the button is still down
    during = await device.send(cmd="status")
    busy = await device.send(cmd="press", hold_s=1)
    assert (await pressing)["ok"] is True
    after = await device.send(cmd="status")
    assert during["button_pressed"] is True
    assert busy == {"ok": False, "error": "the button is already held down"}
    assert after == {"ok": True, "button_pressed": False, "hazard_on": False, "led": False, "buzzer": False}


async def test_status_shows_the_led(device: Device) -> None:
    device.indicators.show(Signal.CONNECTED)
    assert (await device.send(cmd="status"))["led"] is True


async def test_hazards_flash_and_trigger_once(device: Device) -> None:
    assert await device.send(cmd="hazard", on=True) == {"ok": True, "cmd": "hazard", "on": True}
    assert await device.next() is Trigger.HAZARD
    await asyncio.sleep(1.0)  # a second and a half of flashing
    assert (await device.send(cmd="status"))["hazard_on"] is True
    assert device.seen.empty()
    assert (await device.send(cmd="hazard", on=False))["ok"] is True
    assert (await device.send(cmd="status"))["hazard_on"] is False
    assert not device.factory.pin(device.cfg.hazard_pin).state


async def test_active_low_hazards_are_driven_low(sock_path: Path) -> None:
    made = Device(sock_path, gpio(hazard_active_high=False))
    async with made.control:
        try:
            await made.send(cmd="hazard", on=True)
            assert await made.next() is Trigger.HAZARD
            await made.send(cmd="hazard", on=False)
            assert made.factory.pin(made.cfg.hazard_pin).state  # pulled up again: off
        finally:
            await made.close()


async def test_kiosk_has_no_hazards(sock_path: Path) -> None:
    made = Device(sock_path, gpio(hazard_pin=None))
    async with made.control:
        try:
            assert await made.send(cmd="hazard", on=True) == {"ok": False, "error": "this device has no hazard input"}
            assert (await made.send(cmd="status"))["hazard_on"] is None
        finally:
            await made.close()


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"press\n", "Invalid JSON"),
        (b"\n", "Invalid JSON"),
        (b"\xff\xfe\x00garbage\n", "Invalid JSON"),
        (b"[1, 2]\n", "object"),
        (b'{"cmd": "explode"}\n', "does not match"),
        (b'{"hold_s": 2}\n', "cmd"),
        (b'{"cmd": "press", "hold_s": 31}\n', "hold_s: Input should be less than or equal to 30"),
        (b'{"cmd": "press", "hold_s": -1}\n', "hold_s: Input should be greater than or equal to 0"),
        (b'{"cmd": "press", "hold_s": "2"}\n', "hold_s"),
        (b'{"cmd": "press", "hold_s": NaN}\n', "hold_s"),
        (b'{"cmd": "press", "hold_s": 1e999}\n', "hold_s"),
        (b'{"cmd": "press", "finger": "index"}\n', "finger"),
        (b'{"cmd": "hazard", "on": "yes"}\n', "on"),
        (b'{"cmd": "hazard"}\n', "on: Field required"),
    ],
)
async def test_hostile_lines_get_an_error_answer(device: Device, line: bytes, error: str) -> None:
    answers = await raw_exchange(device.path, line, 1)
    answer = json.loads(answers[0])
    assert answer["ok"] is False
    assert error in answer["error"]
    assert (await device.send(cmd="status"))["ok"] is True
    assert device.seen.empty()


async def test_a_huge_line_is_refused_and_the_connection_closed(device: Device) -> None:
    answers = await raw_exchange(device.path, b"{" + b" " * (MAX_LINE * 4) + b"}\n" + b'{"cmd": "status"}\n', 2)
    assert [json.loads(line)["ok"] for line in answers] == [False]  # and then it hung up
    assert "longer than" in json.loads(answers[0])["error"]
    assert (await device.send(cmd="status"))["ok"] is True


async def test_several_commands_on_one_connection(device: Device) -> None:
    answers = await raw_exchange(device.path, b'{"cmd": "status"}\nnope\n{"cmd": "status"}\n', 3)
    assert [json.loads(line)["ok"] for line in answers] == [True, False, True]


async def test_a_client_that_hangs_up_mid_press_does_not_leave_the_button_down(device: Device) -> None:
    _, writer = await asyncio.open_unix_connection(device.path)
    writer.write(b'{"cmd": "press", "hold_s": 0.5}\n')
    await writer.drain()
    writer.close()
    assert await device.next() is Trigger.BUTTON
    for _ in range(50):
        if not (await device.send(cmd="status"))["button_pressed"]:
            break
        await asyncio.sleep(0.1)
    assert (await device.send(cmd="status"))["button_pressed"] is False


async def test_close_releases_a_held_button_and_removes_the_socket(device: Device) -> None:
    pressing = asyncio.create_task(device.send(cmd="press", hold_s=20))
    assert await device.next() is Trigger.BUTTON
    device.control.close()
    await device.control.wait_closed()
    assert device.factory.pin(device.cfg.button_pin).state  # released
    assert not device.path.exists()
    with pytest.raises(ControlError):  # hung up on without an answer
        await pressing


async def test_a_stale_socket_is_replaced_but_other_files_are_not(sock_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock_path))
    stale.close()
    made = Device(sock_path, gpio())
    async with made.control:
        assert (await made.send(cmd="status"))["ok"] is True
    await asyncio.to_thread(sock_path.write_text, "not a socket")
    with pytest.raises(FileExistsError):
        await made.control.start()
    await made.close()
    assert await asyncio.to_thread(sock_path.read_text) == "not a socket"


async def test_the_socket_is_the_owners_only(device: Device) -> None:
    assert device.path.stat().st_mode & 0o777 == 0o600


def test_parse_command_defaults() -> None:
    assert parse_command(b'{"cmd": "press"}').hold_s is None  # type: ignore[union-attr]


async def test_refuses_real_pins(sock_path: Path) -> None:
    with pytest.raises(TypeError):
        ControlServer(sock_path, object(), gpio())


async def test_serve_control_is_closed_like_an_asyncio_server(sock_path: Path) -> None:
    factory: Any = make_pin_factory("mock")
    server = await serve_control(sock_path, factory, gpio())
    assert (await send_control(sock_path, {"cmd": "status"}))["ok"] is True
    server.close()
    await server.wait_closed()
    assert not await asyncio.to_thread(sock_path.exists)
    with pytest.raises(OSError):
        await send_control(sock_path, {"cmd": "status"})
    factory.close()
