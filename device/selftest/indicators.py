"""The LED and buzzer checks: each is switched on and off through the firmware's ``Indicators`` and
its GPIO pin read back, which on a Pi reads the output latch and on MockFactory pins the mock's state.

A pin that reads back right proves the firmware drives the line; whether the lamp lights and the
buzzer sounds is for the technician to see and hear while it is on, so the prompt says when.
"""

from __future__ import annotations

import asyncio
from typing import Any

from device.hal.indicators import Indicators
from device.selftest.outcome import Outcome

ON_S = 1.0


async def check_output(indicators: Indicators, pins: Any, part: str, pin_number: int) -> Outcome:
    """``part`` is "led" or "buzzer"; the other one stays off."""
    pin = pins.pin(pin_number)
    indicators.hold_steady(led=part == "led", buzzer=part == "buzzer")
    await asyncio.sleep(ON_S)
    level_on = int(pin.state)
    indicators.hold_steady(led=False, buzzer=False)
    level_off = int(pin.state)
    if (level_on, level_off) != (1, 0):
        return Outcome.failed(f"GPIO{pin_number} read back {level_on} when switched on and {level_off} when off")
    return Outcome.passed(f"GPIO{pin_number} switched on for {ON_S:g} s and off; the pin read back 1, then 0")
