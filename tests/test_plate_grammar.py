"""The plate grammar: every GA 36 form accepted, impossible texts refused, the best valid read chosen."""

from __future__ import annotations

import random

import pytest

from device.sim.plates import PlateKind, random_plate, render_plate
from protocol.plates import ALPHABET, LETTERS, PROVINCES, SUFFIXES, best_valid, plate_form, plate_kind, plate_kinds

VALID = [
    ("云A5H821", PlateKind.BLUE, "ordinary"),
    ("京AD12345", PlateKind.GREEN, "new-energy small"),
    ("沪AFA1234", PlateKind.GREEN, "new-energy small"),
    ("粤B12345D", PlateKind.GREEN, "new-energy large"),
    ("云A1234学", PlateKind.YELLOW, "coach or trailer"),
    ("川A12B4挂", PlateKind.YELLOW, "coach or trailer"),
    ("云A0123警", PlateKind.WHITE, "police"),
    ("粤Z1A23港", PlateKind.BLACK, "Hong Kong or Macau"),
    ("粤Z1234澳", PlateKind.BLACK, "Hong Kong or Macau"),
    ("沪A1234领", PlateKind.BLACK, "embassy or consulate"),
    ("京A1234使", PlateKind.BLACK, "embassy or consulate"),
    ("使014578", PlateKind.BLACK, "embassy"),
]


@pytest.mark.parametrize(("text", "kind", "form"), VALID)
def test_every_form_is_accepted(text: str, kind: PlateKind, form: str) -> None:
    assert plate_kind(text) is kind
    found = plate_form(text)
    assert found is not None and found.name == form


@pytest.mark.parametrize(
    "text",
    [
        "云A5HI21",  # I is never used
        "云O5H821",  # nor O
        "云AAB8C1",  # three letters in the serial
        "AA5H821",  # no province first
        "云A5H82",  # too short
        "云A12345Z",  # large new-energy ends in D or F
        "云AX12345",  # small new-energy starts its serial with D or F
        "云AD1A34B",  # small new-energy ends in four digits
        "云A1234港",  # Hong Kong plates are 粤Z
        "云A12A4领",  # consulate serials are digits
        "云警12345",  # the special character only ends a plate
        "使01457A",  # an embassy's car carries digits only
        "使01457",  # and six of them
        "京014578",  # with 使 first, not a province
        "",
    ],
)
def test_impossible_texts_are_refused(text: str) -> None:
    assert plate_kind(text) is None
    assert plate_kinds(text) == ()


def test_an_ordinary_text_can_be_blue_or_yellow() -> None:
    assert plate_kinds("云A5H821") == (PlateKind.BLUE, PlateKind.YELLOW)


def test_alphabet_holds_every_plate_character_once() -> None:
    assert len(PROVINCES) == 31 and len(set(ALPHABET)) == len(ALPHABET)
    assert "I" not in LETTERS and "O" not in LETTERS
    assert set(SUFFIXES) == set("学警挂港澳使领")


def _one_hot(text: str, confidence: float = 0.9) -> list[list[float]]:
    rows = []
    for c in text:
        row = [(1 - confidence) / (len(ALPHABET) - 1)] * len(ALPHABET)
        row[ALPHABET.index(c)] = confidence
        rows.append(row)
    return rows


def test_best_valid_keeps_a_valid_read() -> None:
    read = best_valid(_one_hot("云A5H821"))
    assert read is not None and read.text == "云A5H821"
    assert all(abs(c - 0.9) < 1e-9 for c in read.char_confidences)


def test_best_valid_replaces_an_impossible_character_with_the_next_best() -> None:
    probs = _one_hot("云A5H821")
    # The reader thinks position 2 is most likely O (not on plates) but sees 0 as a close second.
    probs[2] = [0.0] * len(ALPHABET)
    probs[2][ALPHABET.index("Q")] = 0.55  # a letter is allowed there...
    probs[2][ALPHABET.index("0")] = 0.45
    read = best_valid(probs)
    assert read is not None and read.text == "云AQH821"  # ...and wins while the letter count allows it
    probs[3] = _one_hot("B")[0]
    probs[5] = _one_hot("C")[0]  # now Q would be a third letter in the serial
    read = best_valid(probs)
    assert read is not None and read.text == "云A0B8C1"


def test_best_valid_applies_the_green_plate_rules() -> None:
    probs = _one_hot("云AD12345")
    probs[2] = [0.0] * len(ALPHABET)
    probs[2][ALPHABET.index("0")] = 0.7  # a small new-energy plate has D or F here
    probs[2][ALPHABET.index("D")] = 0.3
    read = best_valid(probs, PlateKind.GREEN)
    assert read is not None and read.text == "云AD12345"
    assert read.form.name == "new-energy small"


def test_best_valid_refuses_a_read_of_the_wrong_length_or_colour() -> None:
    assert best_valid(_one_hot("云A5H82")) is None
    assert best_valid(_one_hot("云A5H821"), PlateKind.WHITE) is None  # police plates end in 警
    assert best_valid([]) is None


@pytest.mark.parametrize("kind", list(PlateKind))
def test_random_plates_of_every_kind_are_valid_and_drawable(kind: PlateKind) -> None:
    rng = random.Random(11)
    for _ in range(50):
        text = random_plate(rng, kind)
        assert kind in plate_kinds(text), text
    art = render_plate(text, px_per_mm=0.5, kind=kind, double_row=kind is PlateKind.YELLOW and len(text) == 7)
    assert art.mode == "RGBA"


def test_double_rows_only_for_seven_character_yellow_plates() -> None:
    assert render_plate("云A5H821", px_per_mm=1.0, kind=PlateKind.YELLOW, double_row=True).size == (440, 220)
    with pytest.raises(ValueError):
        render_plate("云A5H821", kind=PlateKind.BLUE, double_row=True)
    with pytest.raises(ValueError):
        render_plate("云A5H821", kind=PlateKind.WHITE)
