"""The plate reader check: the on-device plate model loads and reads a reference plate.

This firmware has no plate reader yet: the model, its runtime and the reader that uses them come
with issue 5 (``models/``). Until then the check fails and says so, because a unit that cannot read
plates must not be reported as one that can. Issue 5 replaces this function's body: load the model
the firmware loads, read the shipped reference plate image, pass when the text comes back.
"""

from __future__ import annotations

from device.selftest.outcome import Outcome

NO_READER = "no plate reader in this firmware (models/ not built yet, issue 5): plates cannot be read on the device"


async def check_plate_reader() -> Outcome:
    return Outcome.failed(NO_READER)
