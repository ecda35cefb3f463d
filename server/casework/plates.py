"""The plate text a dispatcher may confirm or correct, checked against the plate grammar the
device's reader uses (``protocol.plates``), so the console accepts exactly the texts a vehicle can
carry."""

from __future__ import annotations

import re

from protocol.plates import FIRST_CHARACTERS, plate_form


def normalise_plate(text: str) -> str:
    """What a dispatcher types, as plates are written: no spaces or dots, upper case."""
    return re.sub(r"[\s·.\-]", "", text).upper()


def plate_error(plate: str) -> str | None:
    """Why ``plate`` is not a plate, or None."""
    if not plate:
        return "plate is empty"
    if plate[0] not in FIRST_CHARACTERS:
        return f"plate {plate!r} does not start with a province character (or 使 for an embassy's car)"
    if plate_form(plate) is None:
        return f"plate {plate!r} is not a valid plate (e.g. 云A5H821, 云AD12345)"
    return None
