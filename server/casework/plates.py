"""The plate text a dispatcher may confirm or correct, checked against the plate grammar the
device's reader uses (``protocol.plates``), so the console accepts exactly the texts a vehicle can
carry."""

from __future__ import annotations

import re

from protocol.plates import FIRST_CHARACTERS, plate_form


def normalise_plate(text: str) -> str:
    """What a dispatcher types, as plates are written: no spaces or dots, upper case."""
    return re.sub(r"[\s·.\-]", "", text).upper()


def plate_problem(plate: str) -> tuple[str, str] | None:
    """(code, message) saying why ``plate`` is not a plate, or None. The message never repeats the
    text: it is shown beside the field that holds it."""
    if not plate:
        return "required", "请填写车牌号 (plate is empty)"
    if plate[0] not in FIRST_CHARACTERS:
        return "invalid_plate", (
            "车牌号应以省份简称开头，如云A5H821；使馆车以“使”开头，武警车以WJ开头 "
            "(a plate starts with a province character, 使 for an embassy's car, WJ for the armed police)"
        )
    if plate_form(plate) is None:
        return "invalid_plate", (
            "车牌号格式不对：蓝牌如云A5H821（7位），新能源如云AD12345（8位），请照车牌核对 "
            "(not a valid plate, e.g. 云A5H821, 云AD12345)"
        )
    return None


def plate_error(plate: str) -> str | None:
    """Why ``plate`` is not a plate, or None."""
    problem = plate_problem(plate)
    return problem[1] if problem else None
