"""The LED and buzzer: what a driver with no screen can tell from a glance or a beep.

Each state of a report has one LED pattern a driver can learn from the manual ("fast blink: we
are calling", "solid: you are through", "SOS: call 122 yourself"), and the moments that need
attention get a beep. A pattern is a few timed steps played on the event loop: its first step is
written at once and the rest follow on timers, so ``show`` and ``beep`` return at once and a
press starts no thread (gpiozero's own ``blink`` and ``beep`` start one per pattern and join the
one before, which a small Pi feels just when the report should go out). Call them on the loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Iterable, Iterator
from enum import StrEnum

from gpiozero import LED, Buzzer, DigitalOutputDevice
from gpiozero.pins import Factory

from device.config import GpioSection

log = logging.getLogger(__name__)

# One Morse unit. The multi-step patterns are written in units, with Morse's own ratios:
# dot 1, dash 3, gap inside a letter 1, between letters 3, after a word 7.
UNIT_S = 0.15


class Signal(StrEnum):
    IDLE = "idle"  # ready: a short heartbeat blink now and then
    REPORTING = "reporting"  # the report is on its way: fast blink
    CONNECTED = "connected"  # a dispatcher is on the line: solid
    CASE_OPEN = "case-open"  # the report was accepted and has a case number: solid
    RETRYING = "retrying"  # the link dropped, the device keeps trying: double blink
    FAILED = "failed"  # it gave up: SOS, the driver must call 122
    OFFLINE = "offline"  # no link to the server, nothing to report: slow even blink
    CLEAR_ROAD = "clear-road"  # the dispatcher says leave the scene: triple blink


class Beep(StrEnum):
    ACCEPTED = "accepted"  # the press was taken: one short beep
    CASE_NUMBER = "case-number"  # a case number arrived: two short beeps
    FAILURE = "failure"  # the report failed: one long beep


Step = tuple[bool, float]  # a level, and how long it is held (math.inf: until the next pattern)


def _units(units: str) -> tuple[Step, ...]:
    """A pattern written one character per Morse unit, '1' lit and '0' dark."""
    return tuple((unit == "1", len(list(run)) * UNIT_S) for unit, run in itertools.groupby(units))


SOLID: tuple[Step, ...] = ((True, math.inf),)

# Each pattern repeats until another is shown.
_LED: dict[Signal, tuple[Step, ...]] = {
    Signal.IDLE: ((True, 0.1), (False, 2.9)),
    Signal.REPORTING: ((True, 0.1), (False, 0.1)),
    Signal.CONNECTED: SOLID,
    Signal.CASE_OPEN: SOLID,
    Signal.RETRYING: _units("1010000000"),
    Signal.FAILED: _units("10101" + "000" + "11101110111" + "000" + "10101" + "0000000"),
    Signal.OFFLINE: ((True, 1.0), (False, 1.0)),
    Signal.CLEAR_ROAD: _units("10101" + "0000000"),
}

_BUZZER: dict[Beep, tuple[Step, ...]] = {
    Beep.ACCEPTED: ((True, 0.12), (False, 0.12)),
    Beep.CASE_NUMBER: ((True, 0.12), (False, 0.12)) * 2,
    Beep.FAILURE: ((True, 1.0), (False, 0.1)),
}


class Indicators:
    """The status LED and the buzzer on the pin factory from ``device.hal.pins``."""

    def __init__(self, cfg: GpioSection, factory: Factory) -> None:
        self._led = LED(cfg.led_pin, pin_factory=factory)
        self._buzzer = Buzzer(cfg.buzzer_pin, pin_factory=factory)
        self._shown: Signal | None = None
        self._led_steps: asyncio.Task[None] | None = None
        self._buzzer_steps: asyncio.Task[None] | None = None

    @property
    def shown(self) -> Signal | None:
        return self._shown

    def show(self, signal: Signal) -> None:
        """Switch the LED to ``signal``'s pattern; showing the pattern already shown changes nothing."""
        if signal is self._shown:
            return
        log.debug("indicators: %s", signal.value)
        self._shown = signal
        self._led_steps = _play(self._led, self._led_steps, itertools.cycle(_LED[signal]))

    def beep(self, cue: Beep) -> None:
        """Sound ``cue``, cutting short any beep still sounding."""
        self._buzzer_steps = _play(self._buzzer, self._buzzer_steps, iter(_BUZZER[cue]))

    def hold_steady(self, *, led: bool, buzzer: bool) -> None:
        """Hold the LED and the buzzer on or off with no pattern, so that the self-test can read
        each pin back; the next ``show`` or ``beep`` takes over again."""
        self._shown = None
        self._led_steps = _play(self._led, self._led_steps, iter([(led, math.inf)]))
        self._buzzer_steps = _play(self._buzzer, self._buzzer_steps, iter([(buzzer, math.inf)]))

    def close(self) -> None:
        """Stop the patterns, switch both off and release the pins."""
        for steps in (self._led_steps, self._buzzer_steps):
            if steps is not None:
                steps.cancel()
        self._led.off()
        self._buzzer.off()
        self._led.close()
        self._buzzer.close()


def _play(
    device: DigitalOutputDevice, playing: asyncio.Task[None] | None, steps: Iterator[Step]
) -> asyncio.Task[None] | None:
    """Stop what ``device`` is playing, write the first of ``steps`` now and leave the rest to a
    task on the running loop; None when nothing is left to time."""
    if playing is not None:
        playing.cancel()
    level, hold = next(steps)
    device.value = level
    if hold == math.inf:
        return None
    return asyncio.get_running_loop().create_task(_rest(device, hold, steps))


async def _rest(device: DigitalOutputDevice, hold: float, steps: Iterable[Step]) -> None:
    await asyncio.sleep(hold)
    for level, hold_next in steps:
        device.value = level
        if hold_next == math.inf:
            return
        await asyncio.sleep(hold_next)
