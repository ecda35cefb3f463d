"""LED and buzzer patterns, read back from gpiozero's MockPin state history."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from device.config import GpioSection
from device.hal.indicators import UNIT_S, Beep, Indicators, Signal
from device.hal.pins import make_pin_factory


class Rig:
    def __init__(self) -> None:
        self.cfg = GpioSection(pin_factory="mock")
        self.factory: Any = make_pin_factory("mock")
        self.indicators = Indicators(self.cfg, self.factory)
        self.led: Any = self.factory.pin(self.cfg.led_pin)
        self.buzzer: Any = self.factory.pin(self.cfg.buzzer_pin)

    def close(self) -> None:
        self.indicators.close()
        self.factory.close()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = Rig()
    yield made
    made.close()


def values(pin: Any) -> list[bool]:
    return [bool(state.state) for state in pin.states]


def lit_times(pin: Any) -> list[float]:
    """How long each completed "on" lasted, from the pin's history."""
    states = pin.states
    return [later.timestamp for earlier, later in itertools.pairwise(states) if earlier.state and not later.state]


async def test_solid_for_connected_and_case_open(rig: Rig) -> None:
    for signal in (Signal.CONNECTED, Signal.CASE_OPEN):
        rig.indicators.show(Signal.REPORTING)
        rig.indicators.show(signal)
        rig.led.clear_states()
        await asyncio.sleep(0.5)
        assert values(rig.led) == [True]


async def test_reporting_blinks_fast_then_idle_heartbeat(rig: Rig) -> None:
    rig.indicators.show(Signal.REPORTING)
    await asyncio.sleep(1.0)
    fast = values(rig.led)
    assert fast[:4] == [False, True, False, True]
    assert len(fast) >= 6
    assert all(a != b for a, b in itertools.pairwise(fast))

    rig.indicators.show(Signal.IDLE)
    rig.led.clear_states()
    await asyncio.sleep(1.0)
    # A heartbeat lights once and then stays dark for most of its period
    assert values(rig.led)[-1] is False
    assert len(values(rig.led)) <= 3


async def test_showing_the_same_signal_does_not_restart_it(rig: Rig) -> None:
    rig.indicators.show(Signal.OFFLINE)
    await asyncio.sleep(0.2)
    rig.led.clear_states()
    rig.indicators.show(Signal.OFFLINE)
    await asyncio.sleep(0.2)
    assert values(rig.led) == [True]  # still in the first second-long "on"
    assert rig.indicators.shown is Signal.OFFLINE


async def test_retrying_double_blinks(rig: Rig) -> None:
    rig.indicators.show(Signal.RETRYING)
    await asyncio.sleep(UNIT_S * 10 * 2 + UNIT_S / 2)  # two full periods
    assert values(rig.led)[:9] == [False, True, False, True, False, True, False, True, False]
    times = [state.timestamp for state in rig.led.states]
    short_gap, long_gap = times[3], times[5]
    assert long_gap > 2 * short_gap


async def test_failed_blinks_sos(rig: Rig) -> None:
    rig.indicators.show(Signal.FAILED)
    await asyncio.sleep(UNIT_S * 28)  # S-O-S is 27 units long
    rig.indicators.show(Signal.CONNECTED)  # stops the pattern
    lit = lit_times(rig.led)[:9]
    assert len(lit) == 9
    dots = lit[0:3] + lit[6:9]
    dashes = lit[3:6]
    assert min(dashes) > 2 * max(dots)


async def test_switching_pattern_stops_the_previous_one(rig: Rig) -> None:
    rig.indicators.show(Signal.FAILED)
    await asyncio.sleep(UNIT_S * 3)
    rig.indicators.show(Signal.CONNECTED)
    rig.led.clear_states()
    await asyncio.sleep(UNIT_S * 8)
    assert values(rig.led) == [True]


async def test_beeps(rig: Rig) -> None:
    rig.indicators.beep(Beep.ACCEPTED)
    await asyncio.sleep(0.5)
    assert values(rig.buzzer) == [False, True, False]
    short = lit_times(rig.buzzer)[0]

    rig.buzzer.clear_states()
    rig.indicators.beep(Beep.CASE_NUMBER)
    await asyncio.sleep(0.7)
    assert values(rig.buzzer) == [False, True, False, True, False]

    rig.buzzer.clear_states()
    rig.indicators.beep(Beep.FAILURE)
    await asyncio.sleep(1.4)
    assert values(rig.buzzer) == [False, True, False]
    assert lit_times(rig.buzzer)[0] > 4 * short


async def test_holding_steady_stops_the_patterns_until_the_next_signal(rig: Rig) -> None:
    rig.indicators.show(Signal.REPORTING)
    rig.indicators.beep(Beep.FAILURE)
    rig.indicators.hold_steady(led=False, buzzer=True)
    rig.led.clear_states()
    rig.buzzer.clear_states()
    await asyncio.sleep(0.5)
    assert (values(rig.led), values(rig.buzzer)) == ([False], [True])  # no blink, no end of the beep

    rig.indicators.hold_steady(led=True, buzzer=False)
    assert (rig.led.state, rig.buzzer.state) == (True, False)
    assert rig.indicators.shown is None
    rig.indicators.show(Signal.REPORTING)  # the pattern shown before is shown again, not skipped
    rig.led.clear_states()
    await asyncio.sleep(0.5)
    assert len(values(rig.led)) >= 4  # blinking again


async def test_close_switches_everything_off() -> None:
    made = Rig()
    made.indicators.show(Signal.CONNECTED)
    made.indicators.beep(Beep.FAILURE)
    await asyncio.sleep(0.05)
    made.indicators.close()
    assert made.led.state is False
    assert made.buzzer.state is False
    made.factory.close()
