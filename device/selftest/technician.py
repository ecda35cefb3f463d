"""The checks a technician takes part in: pressing the one-key button and switching on the hazards.

Both go through the firmware's own trigger code (``device.hal.trigger``): the button counts only
after the configured long press, the hazards only as the flasher's pulses switching on, so a pass
here is a press the firmware would have reported. Requests are printed and, where the device has a
clip for them, spoken, because an in-car unit may be tested with nobody watching a terminal.
"""

from __future__ import annotations

import asyncio
import logging
import time

from device.config import DeviceConfig
from device.hal.audio import AudioError
from device.hal.prompts import PromptError, Prompts
from device.selftest.outcome import Outcome
from protocol.messages import DeviceKind, Trigger

log = logging.getLogger(__name__)


class Technician:
    """The person at the unit: told things on stdout, asked to act, and timed."""

    def __init__(self, prompts: Prompts, triggers: asyncio.Queue[Trigger]) -> None:
        self._prompts = prompts
        self._triggers = triggers

    @staticmethod
    def tell(text: str) -> None:
        print(f"    {text}", flush=True)

    async def ask_for(self, kind: Trigger, request: str, clip: str, timeout_s: float) -> float | None:
        """Print and say ``request``; the seconds until the trigger ``kind`` came, or None at the timeout."""
        while not self._triggers.empty():
            self._triggers.get_nowait()  # a press before the request is not an answer to it
        started = time.monotonic()
        print(f">>> {request} (within {timeout_s:g} s)", flush=True)
        speech = asyncio.create_task(self._say(clip))
        try:
            async with asyncio.timeout(timeout_s):
                while await self._triggers.get() is not kind:
                    pass
            return time.monotonic() - started
        except TimeoutError:
            return None
        finally:
            # Played out, never cut short: a sound card keeps playing what it was given anyway.
            await speech

    async def _say(self, clip: str) -> None:
        try:
            await self._prompts.say(clip)
        except (PromptError, AudioError) as exc:
            log.warning("selftest: request not spoken (%s); it is printed", exc)


async def check_button(technician: Technician, cfg: DeviceConfig, timeout_s: float) -> Outcome:
    gpio = cfg.gpio
    hold = f" for {gpio.long_press_s:g} s" if gpio.long_press_s > 0 else ""
    waited = await technician.ask_for(
        Trigger.BUTTON, f"Press and hold the report button{hold}", "selftest_button", timeout_s
    )
    if waited is None:
        return Outcome.failed(f"no press{hold} on GPIO{gpio.button_pin} within {timeout_s:g} s")
    return Outcome.passed(f"pressed{hold} on GPIO{gpio.button_pin}, {waited:.1f} s after the request")


async def check_hazard(technician: Technician, cfg: DeviceConfig, timeout_s: float) -> Outcome:
    gpio = cfg.gpio
    if cfg.device.kind is DeviceKind.KIOSK:
        return Outcome.skipped("a kiosk has no hazard-warning input")
    if gpio.hazard_pin is None:
        return Outcome.skipped("no hazard-warning input wired ([gpio] hazard_pin is not set)")
    waited = await technician.ask_for(
        Trigger.HAZARD, "Switch the hazard warning lights on", "selftest_hazard", timeout_s
    )
    if waited is None:
        return Outcome.failed(
            f"hazards not seen switching on at GPIO{gpio.hazard_pin} within {timeout_s:g} s (if they were on "
            f"already, switch them off for {gpio.hazard_release_s:g} s first; else check the lamp-circuit wiring)"
        )
    technician.tell("Hazards seen: switch them off again.")
    return Outcome.passed(f"switched on at GPIO{gpio.hazard_pin}, {waited:.1f} s after the request")
