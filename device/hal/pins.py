"""The gpiozero pin factory the trigger and indicators share, chosen by ``[gpio] pin_factory``.

Each backend is imported only when chosen: ``lgpio`` and ``RPi.GPIO`` exist only on a Pi, and the
mock factory must not need them. The factory is passed to every device with ``pin_factory=``
instead of being set on gpiozero's class-level ``Device.pin_factory``, so two simulated devices
(or a test and the code under test) never share pins by accident.
"""

from __future__ import annotations

from typing import Literal

from gpiozero.pins import Factory

PinFactoryName = Literal["lgpio", "rpigpio", "native", "mock"]


def make_pin_factory(name: PinFactoryName) -> Factory:
    """A new pin factory; the caller closes it when the device shuts down.

    "mock" gives a ``MockFactory`` with plain ``MockPin`` pins: they honour pull-ups, so an idle
    pull-up button reads high, and ``drive_low()`` / ``drive_high()`` press and release it.
    """
    if name == "lgpio":
        from gpiozero.pins.lgpio import LGPIOFactory

        return LGPIOFactory()
    if name == "rpigpio":
        from gpiozero.pins.rpigpio import RPiGPIOFactory

        return RPiGPIOFactory()
    if name == "native":
        from gpiozero.pins.native import NativeFactory

        return NativeFactory()
    if name == "mock":
        from gpiozero.pins.mock import MockFactory, MockPin

        return MockFactory(pin_class=MockPin)
    raise ValueError(f"unknown pin factory {name!r}")
