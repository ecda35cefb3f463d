"""The LED and buzzer: what a driver with no screen can tell from a glance or a beep.

Each state of a report has one LED pattern a driver can learn from the manual ("fast blink: we
are calling", "solid: you are through", "SOS: call 122 yourself"), and the moments that need
attention get a beep. Patterns run on gpiozero's own background threads (``blink``, ``beep`` and
``source``), so ``show`` and ``beep`` return at once and never hold up the event loop.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from gpiozero import LED, Buzzer
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


class Beep(StrEnum):
    ACCEPTED = "accepted"  # the press was taken: one short beep
    CASE_NUMBER = "case-number"  # a case number arrived: two short beeps
    FAILURE = "failure"  # the report failed: one long beep


@dataclass(frozen=True)
class _Blink:
    on_s: float
    off_s: float


@dataclass(frozen=True)
class _Units:
    """A repeating pattern, one character per Morse unit: '1' lit, '0' dark."""

    units: str

    def values(self) -> Iterator[int]:
        return itertools.cycle(int(unit) for unit in self.units)


_LedPattern = Literal["solid"] | _Blink | _Units

_LED: dict[Signal, _LedPattern] = {
    Signal.IDLE: _Blink(0.1, 2.9),
    Signal.REPORTING: _Blink(0.1, 0.1),
    Signal.CONNECTED: "solid",
    Signal.CASE_OPEN: "solid",
    Signal.RETRYING: _Units("1010000000"),
    Signal.FAILED: _Units("10101" + "000" + "11101110111" + "000" + "10101" + "0000000"),
    Signal.OFFLINE: _Blink(1.0, 1.0),
}


@dataclass(frozen=True)
class _Beeps:
    on_s: float
    off_s: float
    n: int


_BUZZER: dict[Beep, _Beeps] = {
    Beep.ACCEPTED: _Beeps(0.12, 0.12, 1),
    Beep.CASE_NUMBER: _Beeps(0.12, 0.12, 2),
    Beep.FAILURE: _Beeps(1.0, 0.1, 1),
}


class Indicators:
    """The status LED and the buzzer on the pin factory from ``device.hal.pins``."""

    def __init__(self, cfg: GpioSection, factory: Factory) -> None:
        self._led = LED(cfg.led_pin, pin_factory=factory)
        self._led.source_delay = UNIT_S
        self._buzzer = Buzzer(cfg.buzzer_pin, pin_factory=factory)
        self._shown: Signal | None = None

    @property
    def shown(self) -> Signal | None:
        return self._shown

    def show(self, signal: Signal) -> None:
        """Switch the LED to ``signal``'s pattern; showing the pattern already shown changes nothing."""
        if signal is self._shown:
            return
        log.debug("indicators: %s", signal.value)
        self._shown = signal
        self._led.source = None
        match _LED[signal]:
            case "solid":
                self._led.on()
            case _Blink(on_s, off_s):
                self._led.blink(on_time=on_s, off_time=off_s)
            case _Units() as units:
                self._led.off()
                self._led.source = units.values()

    def beep(self, cue: Beep) -> None:
        """Sound ``cue``, cutting short any beep still sounding."""
        pattern = _BUZZER[cue]
        self._buzzer.beep(on_time=pattern.on_s, off_time=pattern.off_s, n=pattern.n)

    def hold_steady(self, *, led: bool, buzzer: bool) -> None:
        """Hold the LED and the buzzer on or off with no pattern, so that the self-test can read
        each pin back; the next ``show`` or ``beep`` takes over again."""
        self._shown = None
        self._led.source = None
        if led:
            self._led.on()
        else:
            self._led.off()
        if buzzer:
            self._buzzer.on()
        else:
            self._buzzer.off()

    def close(self) -> None:
        """Stop the patterns, switch both off and release the pins."""
        self._led.source = None
        self._led.off()
        self._buzzer.off()
        self._led.close()
        self._buzzer.close()
