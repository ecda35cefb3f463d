"""Reconnect delays: bounded, doubling to a ceiling, back to the start after a success, and spread
across a fleet so a broker restart is not met by every unit at the same instant."""

from __future__ import annotations

import random

from runtime.backoff import Backoff


def test_each_delay_lies_within_its_doubling_step_up_to_the_ceiling() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(1))
    steps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    delays = [backoff.next() for _ in steps]
    for step, delay in zip(steps, delays, strict=True):
        assert step / 2 <= delay <= step
    backoff.reset()
    assert backoff.next() <= 0.5


def test_a_fleet_of_units_does_not_retry_in_step() -> None:
    units = [Backoff(0.5, 30.0, random.Random(seed)) for seed in range(200)]
    for _ in range(5):  # the fifth retry: steps of 8 s
        retries = sorted(u.next() for u in units)
    assert retries[-1] - retries[0] > 3.0  # spread over most of the 4-8 s window
    assert len({round(r, 2) for r in retries}) > 150
