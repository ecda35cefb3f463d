"""The plate's type (GA 36's 号牌种类) from its text, colour and rows, as the reader reports it."""

from __future__ import annotations

import pytest

from protocol.plates import TYPE_NAMES, PlateKind, PlateType, display_text, plate_form, plate_type


@pytest.mark.parametrize(
    ("text", "colour", "double_row", "motorbike", "expected"),
    [
        ("云A5H821", PlateKind.BLUE, False, False, PlateType.SMALL),
        ("云A5H821", None, False, False, PlateType.SMALL),  # an ordinary text is usually blue
        ("云A5H821", PlateKind.YELLOW, False, False, PlateType.LARGE),
        ("云A5H821", PlateKind.YELLOW, True, False, PlateType.LARGE_DOUBLE_ROW),
        ("云A5H821", PlateKind.YELLOW, True, True, PlateType.MOTORBIKE),
        ("云AD12345", PlateKind.GREEN, False, False, PlateType.NEW_ENERGY_SMALL),
        ("云A12345Z", PlateKind.GREEN, False, False, None),  # a large new-energy plate ends in D or F
        ("云A12345D", PlateKind.GREEN, False, False, PlateType.NEW_ENERGY_LARGE),
        ("云A1234学", PlateKind.YELLOW, False, False, PlateType.LEARNER),
        ("云A12B4挂", PlateKind.YELLOW, False, False, PlateType.TRAILER),
        ("云A0123警", PlateKind.WHITE, False, False, PlateType.POLICE),
        ("WJ云12345", PlateKind.WHITE, False, False, PlateType.ARMED_POLICE),
        ("粤Z1A23港", PlateKind.BLACK, False, False, PlateType.HONG_KONG),
        ("粤Z1234澳", PlateKind.BLACK, False, False, PlateType.MACAU),
        ("京A1234使", PlateKind.BLACK, False, False, PlateType.EMBASSY),
        ("使014578", PlateKind.BLACK, False, False, PlateType.EMBASSY),
        ("沪A1234领", PlateKind.BLACK, False, False, PlateType.CONSULATE),
    ],
)
def test_each_type_follows_from_text_colour_and_rows(
    text: str, colour: PlateKind | None, double_row: bool, motorbike: bool, expected: PlateType | None
) -> None:
    assert plate_type(text, colour, double_row=double_row, motorbike=motorbike) is expected


def test_every_type_has_a_chinese_name() -> None:
    assert set(TYPE_NAMES) == set(PlateType)
    assert all("号牌" in name for name in TYPE_NAMES.values())


@pytest.mark.parametrize("text", ["WJ云1234", "WJ云12A45", "WA云12345", "WJ1234567", "JW云12345"])
def test_armed_police_plates_are_wj_a_province_and_five_digits(text: str) -> None:
    assert plate_form(text) is None


def test_the_armed_police_dot_follows_the_province() -> None:
    assert display_text("WJ云12345") == "WJ云·12345"
