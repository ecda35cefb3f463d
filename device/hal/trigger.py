"""The two ways a driver starts a report without a screen: the one-key button and the hazards.

Both are plain gpiozero devices on the pin factory from ``device.hal.pins``, so the Pi, the demo
and the tests run this same code; only the pins underneath differ. gpiozero calls back from its
own threads, so every event is handed to the event loop before anything above sees it.

The button is wired to ground with the internal pull-up. A press counts only once it has been
held for ``long_press_s``: a knee or a bag brushing the key in a door pocket must not call the
police. The hazard-warning switch is read through its lamp circuit, which a flasher relay pulses
at about 1.5 Hz while the hazards are on; ``HazardLatch`` turns that pulse train back into one
"switched on".
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from gpiozero import Button, DigitalInputDevice
from gpiozero.pins import Factory

from device.config import GpioSection
from protocol.messages import Trigger

log = logging.getLogger(__name__)


class HazardLatch:
    """One trigger per use of the hazard switch, however often its flasher pulses the line.

    The hazards count as on from the first rising edge; later edges are ignored until the line has
    stayed off for ``release_s`` without a pulse, which a running flasher never does. Times are
    plain seconds on a monotonic clock, so the rule is tested without waiting for it.
    """

    def __init__(self, release_s: float, *, active_now: bool) -> None:
        self._release_s = release_s
        # When the line last went off; None while it is on. Hazards already on at start-up were
        # switched on before the device could see it, so they are not a new trigger.
        self._off_since: float | None = None if active_now else -math.inf

    def edge(self, active: bool, at: float) -> bool:
        """Record an edge of the line at ``at``; True if it means the hazards were switched on."""
        if not active:
            if self._off_since is None:
                self._off_since = at
            return False
        if self._off_since is None:
            return False
        switched_on = at - self._off_since >= self._release_s
        self._off_since = None
        return switched_on


class Triggers:
    """The button and (on in-car units) the hazard input, reported to ``on_trigger`` on the loop.

    Build it inside the running event loop that should receive the triggers.
    """

    def __init__(self, cfg: GpioSection, factory: Factory, on_trigger: Callable[[Trigger], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_trigger = on_trigger
        bounce = cfg.bounce_s or None
        self._button = Button(
            cfg.button_pin,
            pull_up=True,
            bounce_time=bounce,
            # gpiozero's hold thread polls every hold_time while the button is down: at 0 it
            # would spin for as long as a finger rests on it. Without a long press it is unused.
            hold_time=cfg.long_press_s or 1.0,
            pin_factory=factory,
        )
        if cfg.long_press_s > 0:
            self._button.when_held = self._button_pressed
        else:
            self._button.when_pressed = self._button_pressed
        self._hazard: DigitalInputDevice | None = None
        self._latch: HazardLatch | None = None
        if cfg.hazard_pin is not None:
            # The pull holds the line at its "off" level while nothing drives it: pull-down for an
            # active-high lamp feed through a divider, pull-up for an active-low optocoupler.
            self._hazard = DigitalInputDevice(
                cfg.hazard_pin,
                pull_up=not cfg.hazard_active_high,
                bounce_time=bounce,
                pin_factory=factory,
            )
            self._latch = HazardLatch(cfg.hazard_release_s, active_now=bool(self._hazard.is_active))
            self._hazard.when_activated = self._hazard_on
            self._hazard.when_deactivated = self._hazard_off
        log.info(
            "trigger: button on GPIO%s (hold %.1fs), hazard input %s",
            cfg.button_pin,
            cfg.long_press_s,
            "none" if cfg.hazard_pin is None else f"on GPIO{cfg.hazard_pin}",
        )

    def close(self) -> None:
        """Release the pins; no trigger is reported afterwards."""
        self._button.close()
        if self._hazard is not None:
            self._hazard.close()

    # gpiozero threads ------------------------------------------------------------------------

    def _button_pressed(self) -> None:
        self._to_loop(self._report, Trigger.BUTTON)

    def _hazard_on(self) -> None:
        self._to_loop(self._hazard_edge, True, time.monotonic())

    def _hazard_off(self) -> None:
        self._to_loop(self._hazard_edge, False, time.monotonic())

    def _to_loop(self, callback: Callable[..., None], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed under a late edge during shutdown
            log.debug("trigger: event after the loop closed, dropped")

    # event loop ------------------------------------------------------------------------------

    def _hazard_edge(self, active: bool, at: float) -> None:
        if self._latch is not None and self._latch.edge(active, at):
            self._report(Trigger.HAZARD)

    def _report(self, kind: Trigger) -> None:
        log.info("trigger: %s", kind.value)
        self._on_trigger(kind)
