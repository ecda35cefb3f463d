"""The 18-digit PRC resident identity number (GB 11643-1999): region, birth date, sequence and an
ISO 7064 MOD 11-2 check character.

A mistyped digit is the usual error at the console; the check character catches every single-digit
slip and every swap of two neighbours, so the dispatcher hears about it while the party is still
on the call.
"""

from __future__ import annotations

import re
from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^[1-9]\d{16}[\dX]$")


def check_character(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def id_number_problem(value: str) -> tuple[str, str] | None:
    """(code, message) saying why ``value`` is not a valid ID number, or None when it is."""
    if not _SHAPE.match(value):
        return "invalid_id_number", (
            "身份证号应为18位：前17位是数字，最后一位是数字或X "
            "(an ID number is 18 characters: 17 digits and a digit or X)"
        )
    born_text = f"{value[6:10]}年{value[10:12]}月{value[12:14]}日"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "invalid_id_birth_date", (
            f"身份证号里的出生日期{born_text}不存在，请核对第7到14位 "
            f"(birth date {value[6:14]} in the ID number is not a date)"
        )
    if born.year < 1900 or born > date.today():
        return "invalid_id_birth_date", (
            f"身份证号里的出生日期{born_text}不在合理范围内，请核对第7到14位 "
            f"(birth date {value[6:14]} in the ID number is out of range)"
        )
    if value[17] != check_character(value[:17]):
        return "id_check_digit_mismatch", (
            "身份证号校验位不符，可能有一位输错，请逐位核对 "
            "(ID number check character does not match: a digit is probably mistyped)"
        )
    return None


def id_number_error(value: str) -> str | None:
    """Why ``value`` is not a valid ID number, or None when it is."""
    problem = id_number_problem(value)
    return problem[1] if problem else None
