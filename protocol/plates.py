"""The grammar of Chinese plate texts (GA 36-2018), and the best valid text for a plate reader's output.

The device's reader, the simulated camera that draws plates and the server that checks what the
dispatcher types must agree on which texts can exist, so the grammar lives here where all of them
import it. A reader that only takes its most likely character per position produces texts no
vehicle can carry (an ``O`` for a ``0``, a letter where the green plate's rules want a digit); the
reader instead asks ``best_valid`` for the most probable text that the grammar allows.

Texts are kept without the separator dot (``云A5H821``), as ``protocol.messages.Plate`` has them;
each form says where its dot goes. Every form starts with a province character except the
embassy's, which starts with 使 (使014·578: the embassy's number, then the car's), and the armed
police's, which starts with WJ (WJ云·12345).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# The 31 mainland province-level abbreviations that appear first on a civil plate.
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# I and O are never used (they read as 1 and 0).
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"
# The characters that end special plates: coach (学), police (警), trailer (挂), Hong Kong and Macau
# cross-border (港, 澳), embassy (使), consulate (领).
SUFFIXES = "学警挂港澳使领"
# An embassy's own cars lead with 使 instead of a province.
EMBASSY = "使"
# Every character a plate can carry, in the order of a recogniser's classes (the CTC blank is last).
ALPHABET = PROVINCES + DIGITS + LETTERS + SUFFIXES
# The dot printed between a plate's prefix and its serial; texts are kept without it.
SEPARATOR = "·"
# At most two letters among the serial's characters, so a serial never reads as a word.
MAX_SERIAL_LETTERS = 2

_SERIAL = LETTERS + DIGITS


class PlateKind(StrEnum):
    """The plate's colour, which says what kind of vehicle carries it."""

    BLUE = "blue"  # ordinary small vehicle: white characters on blue
    GREEN = "green"  # new-energy vehicle: black on a green (small) or yellow-green (large) gradient
    YELLOW = "yellow"  # large vehicle, coach, trailer: black on yellow, single or double row
    WHITE = "white"  # police: black on white, the 警 in red
    BLACK = "black"  # Hong Kong / Macau cross-border, embassy, consulate: white on black


@dataclass(frozen=True)
class PlateForm:
    """One shape a plate text can take: the characters allowed at each position."""

    name: str
    kinds: tuple[PlateKind, ...]  # the colours this form is issued in, the usual one first
    positions: tuple[str, ...]
    serial: tuple[int, int]  # the positions [start, end) where at most MAX_SERIAL_LETTERS letters go
    separator: int = 2  # the dot goes before this position: after the authority letter on most plates

    def matches(self, text: str) -> bool:
        if len(text) != len(self.positions):
            return False
        if any(c not in allowed for c, allowed in zip(text, self.positions, strict=True)):
            return False
        return sum(c in LETTERS for c in text[self.serial[0] : self.serial[1]]) <= MAX_SERIAL_LETTERS


FORMS: tuple[PlateForm, ...] = (
    PlateForm("ordinary", (PlateKind.BLUE, PlateKind.YELLOW), (PROVINCES, LETTERS, *[_SERIAL] * 5), (2, 7)),
    # Small new-energy: D (battery) or F (other), a letter or digit, four digits.
    PlateForm("new-energy small", (PlateKind.GREEN,), (PROVINCES, LETTERS, "DF", _SERIAL, *[DIGITS] * 4), (2, 8)),
    # Large new-energy: five digits, then D or F.
    PlateForm("new-energy large", (PlateKind.GREEN,), (PROVINCES, LETTERS, *[DIGITS] * 5, "DF"), (2, 8)),
    PlateForm("coach or trailer", (PlateKind.YELLOW,), (PROVINCES, LETTERS, *[_SERIAL] * 4, "学挂"), (2, 6)),
    PlateForm("police", (PlateKind.WHITE,), (PROVINCES, LETTERS, *[_SERIAL] * 4, "警"), (2, 6)),
    PlateForm("Hong Kong or Macau", (PlateKind.BLACK,), ("粤", "Z", *[_SERIAL] * 4, "港澳"), (2, 6)),
    PlateForm("embassy or consulate", (PlateKind.BLACK,), (PROVINCES, LETTERS, *[DIGITS] * 4, "使领"), (2, 6)),
    # An embassy's car: 使, the embassy's three-digit number, the dot, the car's three digits.
    PlateForm("embassy", (PlateKind.BLACK,), (EMBASSY, *[DIGITS] * 6), (1, 7), separator=4),
    # The armed police's: WJ in red, the province small, the dot, five digits (the branch
    # characters some carry last, 消边通森金电, are not in ALPHABET: the reader cannot read them yet).
    PlateForm("armed police", (PlateKind.WHITE,), ("W", "J", PROVINCES, *[DIGITS] * 5), (3, 8), separator=3),
)


class PlateType(StrEnum):
    """What the plate says about its vehicle (GA 36-2018's 号牌种类, and the armed police's WJ plate).

    The colour alone does not say it (a yellow plate is a lorry's, a learner's or a trailer's), nor
    the text alone (an ordinary text is a car's on blue, a lorry's on yellow): ``plate_type`` takes
    both, and the plate's shape where the rows decide.
    """

    SMALL = "small"  # 小型汽车号牌: blue
    LARGE = "large"  # 大型汽车号牌: yellow, one row (the front plate)
    LARGE_DOUBLE_ROW = "large-double-row"  # 大型汽车号牌: yellow, two rows (the rear plate)
    NEW_ENERGY_SMALL = "new-energy-small"  # 小型新能源汽车号牌: gradient green, D/F third
    NEW_ENERGY_LARGE = "new-energy-large"  # 大型新能源汽车号牌: yellow-green, D/F last
    TRAILER = "trailer"  # 挂车号牌
    LEARNER = "learner"  # 教练汽车号牌
    POLICE = "police"  # 警用汽车号牌
    ARMED_POLICE = "armed-police"  # 武警号牌 (WJ)
    MOTORBIKE = "motorbike"  # 普通/轻便摩托车号牌: two rows, 220 x 140 mm
    HONG_KONG = "hong-kong"  # 港澳入出境车号牌, 港
    MACAU = "macau"  # 港澳入出境车号牌, 澳
    EMBASSY = "embassy"  # 使馆汽车号牌
    CONSULATE = "consulate"  # 领馆汽车号牌


# What a dispatcher reads for each type.
TYPE_NAMES: dict[PlateType, str] = {
    PlateType.SMALL: "小型汽车号牌",
    PlateType.LARGE: "大型汽车号牌",
    PlateType.LARGE_DOUBLE_ROW: "大型汽车号牌（双层）",
    PlateType.NEW_ENERGY_SMALL: "小型新能源汽车号牌",
    PlateType.NEW_ENERGY_LARGE: "大型新能源汽车号牌",
    PlateType.TRAILER: "挂车号牌",
    PlateType.LEARNER: "教练汽车号牌",
    PlateType.POLICE: "警用汽车号牌",
    PlateType.ARMED_POLICE: "武警号牌",
    PlateType.MOTORBIKE: "摩托车号牌",
    PlateType.HONG_KONG: "港澳入出境车号牌（香港）",
    PlateType.MACAU: "港澳入出境车号牌（澳门）",
    PlateType.EMBASSY: "使馆汽车号牌",
    PlateType.CONSULATE: "领馆汽车号牌",
}

# The form's own type, where the text alone decides; the ordinary form needs colour and shape.
_FORM_TYPES: dict[str, PlateType] = {
    "new-energy small": PlateType.NEW_ENERGY_SMALL,
    "new-energy large": PlateType.NEW_ENERGY_LARGE,
    "police": PlateType.POLICE,
    "armed police": PlateType.ARMED_POLICE,
    "embassy": PlateType.EMBASSY,
}
_SUFFIX_TYPES: dict[str, PlateType] = {
    "学": PlateType.LEARNER,
    "挂": PlateType.TRAILER,
    "港": PlateType.HONG_KONG,
    "澳": PlateType.MACAU,
    "使": PlateType.EMBASSY,
    "领": PlateType.CONSULATE,
}


def plate_type(
    text: str, colour: PlateKind | None = None, *, double_row: bool = False, motorbike: bool = False
) -> PlateType | None:
    """The type of a plate reading ``text`` in ``colour`` (its usual one if None), or None if no
    plate can carry the text. ``double_row``: the plate has two rows; ``motorbike``: two rows on
    the small 220 x 140 mm plate, which only the shape tells from a lorry's rear plate."""
    form = plate_form(text)
    return None if form is None else form_type(form, text, colour, double_row=double_row, motorbike=motorbike)


def form_type(
    form: PlateForm, text: str, colour: PlateKind | None = None, *, double_row: bool = False, motorbike: bool = False
) -> PlateType:
    """``plate_type`` for a text already known to have ``form``."""
    if form.name in _FORM_TYPES:
        return _FORM_TYPES[form.name]
    if form.name != "ordinary":
        return _SUFFIX_TYPES[text[-1]]
    if motorbike:
        return PlateType.MOTORBIKE
    if (colour or form.kinds[0]) is PlateKind.YELLOW:
        return PlateType.LARGE_DOUBLE_ROW if double_row else PlateType.LARGE
    return PlateType.SMALL


# The characters a plate can start with: the provinces, and 使 for an embassy's car.
FIRST_CHARACTERS = "".join(dict.fromkeys(c for form in FORMS for c in form.positions[0]))


def plate_form(text: str) -> PlateForm | None:
    """The form ``text`` (no separator) has, or None if no plate can carry it."""
    return next((form for form in FORMS if form.matches(text)), None)


def display_text(text: str) -> str:
    """The plate as people write it, with the separator dot where its form has it: ``云A·5H821``."""
    form = plate_form(text)
    cut = 2 if form is None else form.separator
    return f"{text[:cut]}{SEPARATOR}{text[cut:]}"


def stored_text(written: str) -> str:
    """The text as kept, from a plate written as it is printed, dot and all (``使014·578``): the
    inverse of ``display_text``, for whoever copies a plate off a car."""
    return written.replace(SEPARATOR, "")


def plate_kind(text: str) -> PlateKind | None:
    """The usual colour of a plate with ``text``, or None if it is not a plate."""
    form = plate_form(text)
    return None if form is None else form.kinds[0]


def plate_kinds(text: str) -> tuple[PlateKind, ...]:
    """Every colour a plate with ``text`` can have (an ordinary text is blue or yellow)."""
    form = plate_form(text)
    return () if form is None else form.kinds


@dataclass(frozen=True)
class ValidRead:
    text: str
    char_confidences: tuple[float, ...]
    log_probability: float
    form: PlateForm


# A valid alternative is taken only where every character it needs was at least this likely: a
# character the reader all but ruled out is a guess, and a guessed plate is worse than none.
MIN_CHAR_PROBABILITY = 0.02


def best_valid(
    probabilities: Sequence[Sequence[float]],
    kind: PlateKind | None = None,
    min_char_probability: float = MIN_CHAR_PROBABILITY,
) -> ValidRead | None:
    """The most probable text the grammar allows, given each position's class probabilities.

    ``probabilities[i][c]`` is the probability that position ``i`` is ``ALPHABET[c]`` (further
    columns, such as a CTC blank, are ignored). Only forms with as many positions as were read are
    tried, and only those issued in ``kind`` when the colour is known. None when no form fits
    with characters of at least ``min_char_probability``: the read is impossible and must not be
    shown as a plate.
    """
    n = len(probabilities)
    best: ValidRead | None = None
    for form in FORMS:
        if len(form.positions) != n or (kind is not None and kind not in form.kinds):
            continue
        read = _best_in_form(form, probabilities, _log(min_char_probability))
        if read is not None and (best is None or read.log_probability > best.log_probability):
            best = read
    return best


def _log(p: float) -> float:
    return math.log(p) if p > 1e-12 else -27.6


def _best_in_form(form: PlateForm, probabilities: Sequence[Sequence[float]], floor: float) -> ValidRead | None:
    """Dynamic programme over positions; the state is how many serial letters were used so far."""
    # paths[letters] = (log-probability, characters) of the best prefix with that many serial letters
    paths: dict[int, tuple[float, str]] = {0: (0.0, "")}
    start, end = form.serial
    for i, allowed in enumerate(form.positions):
        row = probabilities[i]
        in_serial = start <= i < end
        scored = [(_log(row[ALPHABET.index(c)]), c) for c in allowed]
        best_letter = max((sc for sc in scored if sc[1] in LETTERS and sc[0] >= floor), default=None)
        best_other = max((sc for sc in scored if sc[1] not in LETTERS and sc[0] >= floor), default=None)
        nxt: dict[int, tuple[float, str]] = {}
        for used, (score, chars) in paths.items():
            for choice, adds in ((best_letter, 1 if in_serial else 0), (best_other, 0)):
                if choice is None or used + adds > MAX_SERIAL_LETTERS:
                    continue
                cand = (score + choice[0], chars + choice[1])
                if used + adds not in nxt or cand[0] > nxt[used + adds][0]:
                    nxt[used + adds] = cand
        paths = nxt
        if not paths:
            return None
    score, text = max(paths.values())
    confidences = tuple(float(probabilities[i][ALPHABET.index(c)]) for i, c in enumerate(text))
    return ValidRead(text=text, char_confidences=confidences, log_probability=score, form=form)
