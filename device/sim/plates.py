"""Chinese licence plates: which texts are valid, random valid ones, and the plate artwork.

The simulated camera shows plates, and the plate reader is trained and tested on them, so both
sides must agree on one grammar (GA 36-2018) and on the look of a real plate: the characters of a
plate are all one height and squeezed into fixed cells, which is what makes plate text look
"tall", and the separator dot sits in a wider gap after the issuing-authority letter.

Texts are kept without the separator (``云A5H821``), as ``protocol.messages.Plate`` has them;
``display_text`` adds the dot for people.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path("/usr/share/fonts/opentype/noto")
FONT_FILE = "NotoSansCJK-Bold.ttc"
# Simplified-Chinese face in the collection: the province characters must have mainland forms.
FONT_FACE = "Noto Sans CJK SC"

# The 31 mainland province-level abbreviations that appear first on a civil plate.
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Issuing-authority letters of Yunnan's prefectures; A is Kunming.
YUNNAN_AUTHORITIES = "ABCDEFGHJKLMNPQRS"
# I and O are never used (they read as 1 and 0).
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"

_BLUE = re.compile(rf"^[{PROVINCES}][{LETTERS}][{LETTERS}{DIGITS}]{{5}}$")
# Small new-energy vehicles: D (battery) or F (other), a letter or digit, four digits.
# Large ones: five digits, then D or F.
_GREEN = re.compile(rf"^[{PROVINCES}][{LETTERS}](?:[DF][{LETTERS}{DIGITS}][{DIGITS}]{{4}}|[{DIGITS}]{{5}}[DF])$")


class PlateKind(StrEnum):
    BLUE = "blue"  # ordinary small vehicle: white characters on blue, 440 x 140 mm
    GREEN = "green"  # small new-energy vehicle: black characters on a green gradient, 480 x 140 mm


class FontMissingError(RuntimeError):
    """The CJK font is not installed, so no plate can be drawn."""


@dataclass(frozen=True)
class PlateLayout:
    """Plate geometry in millimetres, per GA 36-2018."""

    width_mm: float
    height_mm: float
    char_w_mm: float
    char_h_mm: float
    gap_mm: float  # between characters
    separator_gap_mm: float  # between the authority letter and the serial, the dot in its middle
    chars: int

    def char_lefts_mm(self) -> list[float]:
        used = self.chars * self.char_w_mm + (self.chars - 2) * self.gap_mm + self.separator_gap_mm
        x = (self.width_mm - used) / 2
        lefts = []
        for i in range(self.chars):
            lefts.append(x)
            x += self.char_w_mm + (self.separator_gap_mm if i == 1 else self.gap_mm)
        return lefts

    def dot_centre_mm(self) -> tuple[float, float]:
        lefts = self.char_lefts_mm()
        return ((lefts[1] + self.char_w_mm + lefts[2]) / 2, self.height_mm / 2)


LAYOUTS = {
    PlateKind.BLUE: PlateLayout(440, 140, 45, 90, 12, 34, 7),
    PlateKind.GREEN: PlateLayout(480, 140, 43, 90, 9, 49, 8),
}


def plate_kind(text: str) -> PlateKind | None:
    """The kind of plate ``text`` (no separator) is valid for, or None if it is not a plate."""
    if _BLUE.match(text):
        letters = sum(c in LETTERS for c in text[2:])
        return PlateKind.BLUE if letters <= 2 else None
    if _GREEN.match(text):
        return PlateKind.GREEN
    return None


def display_text(text: str) -> str:
    """The plate as people write it, with the separator dot: ``云A·5H821``."""
    return f"{text[:2]}·{text[2:]}"


def random_plate(rng: random.Random, kind: PlateKind) -> str:
    """A valid plate text; mostly Kunming (云A), where the pilot runs."""
    roll = rng.random()
    if roll < 0.8:
        prefix = "云A"
    elif roll < 0.9:
        prefix = "云" + rng.choice(YUNNAN_AUTHORITIES[1:])
    else:
        prefix = rng.choice(PROVINCES) + rng.choice(LETTERS)
    if kind is PlateKind.GREEN:
        serial = rng.choice("DF") + rng.choice(LETTERS + DIGITS) + "".join(rng.choices(DIGITS, k=4))
    else:
        chars = rng.choices(DIGITS, k=5)
        for pos in rng.sample(range(5), k=rng.choices((0, 1, 2), weights=(55, 30, 15))[0]):
            chars[pos] = rng.choice(LETTERS)
        serial = "".join(chars)
    return prefix + serial


@lru_cache(maxsize=8)
def cjk_font(size: int) -> ImageFont.FreeTypeFont:
    """The bold Simplified-Chinese Noto face at ``size`` px; FontMissingError if not installed."""
    path = FONT_DIR / FONT_FILE
    if not path.is_file():
        raise FontMissingError(f"{path} is missing: install the Debian package fonts-noto-cjk to draw plates")
    for index in range(8):
        font = ImageFont.truetype(str(path), size, index=index)
        if font.getname()[0] == FONT_FACE:
            return font
    raise FontMissingError(f"{path} has no '{FONT_FACE}' face")


@lru_cache(maxsize=256)
def _glyph(char: str, height_px: int, cell_w_px: int) -> Image.Image:
    """One character as a coverage mask, stretched to the plate's character height."""
    font = cjk_font(200)
    canvas = Image.new("L", (320, 320), 0)
    ImageDraw.Draw(canvas).text((40, 0), char, font=font, fill=255)
    bbox = canvas.getbbox()
    if bbox is None:
        raise ValueError(f"the plate font has no glyph for {char!r}")
    ink = canvas.crop(bbox)
    natural_w = round(ink.width * height_px / ink.height)
    return ink.resize((max(1, min(cell_w_px, natural_w)), height_px), Image.Resampling.LANCZOS)


def render_plate(text: str, px_per_mm: float = 2.0) -> Image.Image:
    """The plate as an RGBA image, ``px_per_mm`` pixels per millimetre, transparent corners."""
    kind = plate_kind(text)
    if kind is None:
        raise ValueError(f"not a valid plate: {text!r}")
    lay = LAYOUTS[kind]
    w, h = round(lay.width_mm * px_per_mm), round(lay.height_mm * px_per_mm)
    if kind is PlateKind.BLUE:
        plate = Image.new("RGB", (w, h), (12, 62, 178))
        ink: tuple[int, int, int] = (246, 246, 246)
    else:
        plate = _green_gradient(w, h)
        ink = (16, 16, 16)
    draw = ImageDraw.Draw(plate)
    inset, line = 3.5 * px_per_mm, max(1.0, 1.2 * px_per_mm)
    draw.rounded_rectangle(
        (inset, inset, w - 1 - inset, h - 1 - inset), radius=4 * px_per_mm, outline=ink, width=round(line)
    )
    char_h = round(lay.char_h_mm * px_per_mm)
    cell_w = round(lay.char_w_mm * px_per_mm)
    top = round((lay.height_mm - lay.char_h_mm) / 2 * px_per_mm)
    for char, left_mm in zip(text, lay.char_lefts_mm(), strict=True):
        mask = _glyph(char, char_h, cell_w)
        left = round(left_mm * px_per_mm) + (cell_w - mask.width) // 2
        plate.paste(ink, (left, top, left + mask.width, top + mask.height), mask)
    dx, dy = lay.dot_centre_mm()
    r = 5 * px_per_mm
    draw.ellipse((dx * px_per_mm - r, dy * px_per_mm - r, dx * px_per_mm + r, dy * px_per_mm + r), fill=ink)
    rgba = plate.convert("RGBA")
    corners = Image.new("L", (w, h), 0)
    ImageDraw.Draw(corners).rounded_rectangle((0, 0, w - 1, h - 1), radius=6 * px_per_mm, fill=255)
    rgba.putalpha(corners)
    return rgba


def _green_gradient(w: int, h: int) -> Image.Image:
    top, bottom = (236, 248, 238), (46, 186, 96)
    column = Image.new("RGB", (1, h))
    for y in range(h):
        t = min(1.0, max(0.0, (y / max(1, h - 1) - 0.15) / 0.75))
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return column.resize((w, h))
