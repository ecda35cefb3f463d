"""The button and hazard input, driven through gpiozero's MockFactory pins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gpiozero import Button

from device.config import GpioSection
from device.hal.pins import make_pin_factory
from device.hal.trigger import HazardLatch, Triggers
from protocol.messages import Trigger

LONG_PRESS_S = 0.4
RELEASE_S = 1.0
FLASH_HALF_PERIOD_S = 1 / 1.5 / 2  # a flasher relay at 1.5 Hz


class Rig:
    def __init__(self, cfg: GpioSection) -> None:
        self.cfg = cfg
        self.factory: Any = make_pin_factory("mock")
        self.seen: asyncio.Queue[Trigger] = asyncio.Queue()
        self.triggers = Triggers(cfg, self.factory, self.seen.put_nowait)

    @property
    def button(self) -> Any:
        return self.factory.pin(self.cfg.button_pin)

    @property
    def hazard(self) -> Any:
        return self.factory.pin(self.cfg.hazard_pin)

    async def next(self) -> Trigger:
        return await asyncio.wait_for(self.seen.get(), timeout=5)

    async def settle(self) -> None:
        """Long enough for any hold timer already running to have fired."""
        await asyncio.sleep(LONG_PRESS_S * 2)

    def close(self) -> None:
        self.triggers.close()
        self.factory.close()


def gpio(**overrides: Any) -> GpioSection:
    values: dict[str, Any] = {
        "pin_factory": "mock",
        "long_press_s": LONG_PRESS_S,
        "bounce_s": 0.01,
        "hazard_release_s": RELEASE_S,
        "hazard_pin": 27,  # an in-car unit wired to the hazard-warning lamps
    }
    return GpioSection(**(values | overrides))


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = Rig(gpio())
    yield made
    made.close()


async def test_short_press_does_not_trigger(rig: Rig) -> None:
    rig.button.drive_low()
    await asyncio.sleep(LONG_PRESS_S / 8)
    rig.button.drive_high()
    await rig.settle()
    assert rig.seen.empty()


async def test_long_press_triggers_once(rig: Rig) -> None:
    rig.button.drive_low()
    assert await rig.next() is Trigger.BUTTON
    await asyncio.sleep(LONG_PRESS_S * 3)  # still held: no repeat
    rig.button.drive_high()
    await rig.settle()
    assert rig.seen.empty()


async def test_each_long_press_triggers(rig: Rig) -> None:
    for _ in range(2):
        rig.button.drive_low()
        assert await rig.next() is Trigger.BUTTON
        rig.button.drive_high()
    assert rig.seen.empty()


async def test_bounce_is_ignored(rig: Rig) -> None:
    # Contact bounce on the way in and out of one long press
    for _ in range(6):
        rig.button.drive_low()
        await asyncio.sleep(0.003)
        rig.button.drive_high()
        await asyncio.sleep(0.003)
    rig.button.drive_low()
    assert await rig.next() is Trigger.BUTTON
    for _ in range(6):
        rig.button.drive_high()
        await asyncio.sleep(0.003)
        rig.button.drive_low()
        await asyncio.sleep(0.003)
    rig.button.drive_high()
    await rig.settle()
    assert rig.seen.empty()


async def test_brushes_alone_never_trigger(rig: Rig) -> None:
    for _ in range(20):
        rig.button.drive_low()
        await asyncio.sleep(0.005)
        rig.button.drive_high()
        await asyncio.sleep(0.02)
    await rig.settle()
    assert rig.seen.empty()


async def test_plain_press_counts_without_long_press() -> None:
    made = Rig(gpio(long_press_s=0))
    try:
        made.button.drive_low()
        assert await made.next() is Trigger.BUTTON
        made.button.drive_high()
        await made.settle()
        assert made.seen.empty()
    finally:
        made.close()


async def flash(pin: Any, cycles: int) -> None:
    for _ in range(cycles):
        pin.drive_high()
        await asyncio.sleep(FLASH_HALF_PERIOD_S)
        pin.drive_low()
        await asyncio.sleep(FLASH_HALF_PERIOD_S)


async def test_flashing_hazards_trigger_once_until_off_long_enough(rig: Rig) -> None:
    await flash(rig.hazard, 2)
    assert await rig.next() is Trigger.HAZARD
    assert rig.seen.empty()
    await asyncio.sleep(RELEASE_S * 1.5)  # hazards switched off
    await flash(rig.hazard, 1)
    assert await rig.next() is Trigger.HAZARD
    assert rig.seen.empty()


async def test_active_low_hazard_input() -> None:
    made = Rig(gpio(hazard_active_high=False))
    try:
        made.hazard.drive_low()
        assert await made.next() is Trigger.HAZARD
        made.hazard.drive_high()
        made.hazard.drive_low()
        await made.settle()
        assert made.seen.empty()
    finally:
        made.close()


async def test_kiosk_has_no_hazard_input() -> None:
    made = Rig(gpio(hazard_pin=None))
    try:
        made.factory.pin(27).drive_high()
        await made.settle()
        assert made.seen.empty()
    finally:
        made.close()


async def test_close_releases_the_pins() -> None:
    made = Rig(gpio())
    made.triggers.close()
    made.button.drive_low()
    await made.settle()
    assert made.seen.empty()
    again = Button(made.cfg.button_pin, pin_factory=made.factory)  # would raise if still reserved
    again.close()
    made.factory.close()


def test_latch_sees_one_switch_on_per_use_at_1_5_hz() -> None:
    latch = HazardLatch(3.0, active_now=False)
    half = 1 / 1.5 / 2
    fired = []
    t = 100.0
    for _ in range(15):  # 10 s of flashing
        fired.append(latch.edge(True, t))
        fired.append(latch.edge(False, t + half))
        t += 2 * half
    assert fired.count(True) == 1
    assert fired[0] is True
    last_off = t - half
    assert latch.edge(True, last_off + 2.9) is False  # a pulse after 2.9 s off: still the same use
    assert latch.edge(False, last_off + 3.0) is False
    assert latch.edge(True, last_off + 6.0) is True  # off for 3 s: a new use


def test_latch_ignores_hazards_already_on_at_start() -> None:
    latch = HazardLatch(3.0, active_now=True)
    assert latch.edge(True, 0.0) is False
    assert latch.edge(False, 0.2) is False
    assert latch.edge(True, 0.5) is False
    assert latch.edge(False, 1.0) is False
    assert latch.edge(True, 4.0) is True


def test_latch_counts_off_time_from_the_first_off_edge() -> None:
    latch = HazardLatch(3.0, active_now=False)
    assert latch.edge(True, 0.0) is True
    assert latch.edge(False, 1.0) is False
    assert latch.edge(False, 2.0) is False  # a repeated off edge does not restart the clock
    assert latch.edge(True, 4.0) is True
