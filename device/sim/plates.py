"""Chinese licence plates: random valid texts and the plate artwork, per GA 36-2018.

The simulated camera shows plates, and the plate reader is trained and tested on them, so both
sides must agree on one grammar (``protocol.plates``) and on the look of a real plate: the
characters of a plate are all one height and squeezed into fixed cells, which is what makes plate
text look "tall", and the separator dot sits in a wider gap after the issuing-authority letter.
Double-row (rear yellow) plates carry the province and authority letter small on the top row and
the serial large below.

Texts are kept without the separator (``云A5H821``), as ``protocol.messages.Plate`` has them;
``display_text`` adds the dot for people.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from protocol.plates import (
    DIGITS,
    EMBASSY,
    LETTERS,
    PROVINCES,
    PlateKind,
    display_text,
    plate_form,
    plate_kind,
    plate_kinds,
)

__all__ = [
    "DIGITS",
    "EMBASSY",
    "LAYOUTS",
    "LETTERS",
    "PROVINCES",
    "FontMissingError",
    "PlateKind",
    "PlateLayout",
    "cjk_font",
    "display_text",
    "layout_for",
    "plate_kind",
    "random_plate",
    "render_plate",
]

FONT_DIR = Path("/usr/share/fonts/opentype/noto")
FONT_FILE = "NotoSansCJK-Bold.ttc"
# Simplified-Chinese face in the collection: the province characters must have mainland forms.
FONT_FACE = "Noto Sans CJK SC"

# Issuing-authority letters of Yunnan's 16 prefectures: A 昆明, C 昭通, D 曲靖, E 楚雄, F 玉溪, G 红河,
# H 文山, J 普洱, K 西双版纳, L 大理, M 保山, N 德宏, P 丽江, Q 怒江, R 迪庆, S 临沧. B (东川) is no
# longer issued: 东川 became a district of 昆明 in 1998, and its plates 云A.
YUNNAN_AUTHORITIES = "ACDEFGHJKLMNPQRS"

# Background and ink; the police 警, the embassy's 使 and the consulate's 领 are red.
Rgb = tuple[int, int, int]
COLOURS: dict[PlateKind, tuple[Rgb, Rgb]] = {
    PlateKind.BLUE: ((12, 62, 178), (246, 246, 246)),
    PlateKind.GREEN: ((46, 186, 96), (16, 16, 16)),
    PlateKind.YELLOW: ((242, 188, 24), (16, 16, 16)),
    PlateKind.WHITE: ((240, 240, 236), (16, 16, 16)),
    PlateKind.BLACK: ((20, 20, 22), (246, 246, 246)),
}
RED: Rgb = (206, 22, 30)
RED_CHARACTERS = "警使领"


class FontMissingError(RuntimeError):
    """The CJK font is not installed, so no plate can be drawn."""


@dataclass(frozen=True)
class PlateLayout:
    """Plate geometry in millimetres, per GA 36-2018 (single row)."""

    width_mm: float
    height_mm: float
    char_w_mm: float
    char_h_mm: float
    gap_mm: float  # between characters
    separator_gap_mm: float  # where the dot is (after the authority letter on most plates): wider
    chars: int

    def char_lefts_mm(self, separator: int) -> list[float]:
        """Where each character starts; the wider gap with the dot is before position ``separator``."""
        used = self.chars * self.char_w_mm + (self.chars - 2) * self.gap_mm + self.separator_gap_mm
        x = (self.width_mm - used) / 2
        lefts = []
        for i in range(self.chars):
            lefts.append(x)
            x += self.char_w_mm + (self.separator_gap_mm if i == separator - 1 else self.gap_mm)
        return lefts

    def dot_centre_mm(self, separator: int) -> tuple[float, float]:
        lefts = self.char_lefts_mm(separator)
        return ((lefts[separator - 1] + self.char_w_mm + lefts[separator]) / 2, self.height_mm / 2)


LAYOUTS = {
    PlateKind.BLUE: PlateLayout(440, 140, 45, 90, 12, 34, 7),
    PlateKind.GREEN: PlateLayout(480, 140, 43, 90, 9, 49, 8),
}
# The rear plate of a large vehicle: 440 x 220 mm, province and letter on top, five below.
DOUBLE_ROW_SIZE_MM = (440.0, 220.0)


def layout_for(text: str) -> PlateLayout:
    """The single-row layout for ``text``: 480 mm wide for eight characters, 440 for seven."""
    return LAYOUTS[PlateKind.GREEN] if len(text) == 8 else LAYOUTS[PlateKind.BLUE]


def random_plate(rng: random.Random, kind: PlateKind) -> str:
    """A valid plate text of ``kind``; mostly Kunming (云A), where the pilot runs."""
    roll = rng.random()
    if roll < 0.8:
        prefix = "云A"
    elif roll < 0.9:
        # Drawn from the 16 slots there were while 云B was issued, so that a seed's scene keeps
        # its plates (the demo's registry lists the cars it films); B's slot is 云A, as 东川's plates are.
        prefix = "云" + rng.choice("A" + YUNNAN_AUTHORITIES[1:])
    else:
        province, letter = rng.choice(PROVINCES), rng.choice(LETTERS)
        prefix = province + (letter if province != "云" or letter in YUNNAN_AUTHORITIES else "A")
    if kind is PlateKind.GREEN:
        return prefix + rng.choice("DF") + rng.choice(LETTERS + DIGITS) + "".join(rng.choices(DIGITS, k=4))
    if kind is PlateKind.BLUE:
        return prefix + _serial(rng, 5)
    if kind is PlateKind.YELLOW:
        return prefix + (_serial(rng, 5) if rng.random() < 0.6 else _serial(rng, 4) + rng.choice("学挂"))
    if kind is PlateKind.WHITE:
        return prefix + _serial(rng, 4) + "警"
    roll = rng.random()
    if roll < 0.5:
        return "粤Z" + _serial(rng, 4) + rng.choice("港澳")
    if roll < 0.7:
        return EMBASSY + "".join(rng.choices(DIGITS, k=6))
    return prefix + "".join(rng.choices(DIGITS, k=4)) + rng.choice("使领")


def _serial(rng: random.Random, n: int) -> str:
    """``n`` digits, up to two of them replaced by letters (fewer letters are more common)."""
    chars = rng.choices(DIGITS, k=n)
    for pos in rng.sample(range(n), k=rng.choices((0, 1, 2), weights=(55, 30, 15))[0]):
        chars[pos] = rng.choice(LETTERS)
    return "".join(chars)


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


@lru_cache(maxsize=512)
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


def render_plate(
    text: str, px_per_mm: float = 2.0, *, kind: PlateKind | None = None, double_row: bool = False
) -> Image.Image:
    """The plate as an RGBA image, ``px_per_mm`` pixels per millimetre, transparent corners.

    ``kind`` is the colour (the usual one for the text if None); ``double_row`` draws the 440 x 220
    rear plate of a large vehicle, which only yellow plates with seven characters have.
    """
    form = plate_form(text)
    if form is None:
        raise ValueError(f"not a valid plate: {text!r}")
    kind = kind or form.kinds[0]
    if kind not in plate_kinds(text):
        raise ValueError(f"a {kind} plate cannot read {text!r}")
    if double_row and (kind is not PlateKind.YELLOW or len(text) != 7):
        raise ValueError(f"only seven-character yellow plates have two rows, not {kind} {text!r}")
    background, ink = COLOURS[kind]
    if double_row:
        w, h = round(DOUBLE_ROW_SIZE_MM[0] * px_per_mm), round(DOUBLE_ROW_SIZE_MM[1] * px_per_mm)
    else:
        lay = layout_for(text)
        w, h = round(lay.width_mm * px_per_mm), round(lay.height_mm * px_per_mm)
    if kind is PlateKind.GREEN:
        plate = _green_gradient(w, h) if len(text) == 8 and text[2] in "DF" else _yellow_green(w, h)
    else:
        plate = Image.new("RGB", (w, h), background)
    draw = ImageDraw.Draw(plate)
    inset, line = 3.5 * px_per_mm, max(1.0, 1.2 * px_per_mm)
    draw.rounded_rectangle(
        (inset, inset, w - 1 - inset, h - 1 - inset), radius=4 * px_per_mm, outline=ink, width=round(line)
    )
    inks = [RED if c in RED_CHARACTERS else ink for c in text]
    if double_row:
        _draw_double_row(plate, text, inks, px_per_mm)
    else:
        _draw_single_row(plate, text, inks, form.separator, px_per_mm)
    rgba = plate.convert("RGBA")
    corners = Image.new("L", (w, h), 0)
    ImageDraw.Draw(corners).rounded_rectangle((0, 0, w - 1, h - 1), radius=6 * px_per_mm, fill=255)
    rgba.putalpha(corners)
    return rgba


def _draw_char(plate: Image.Image, char: str, ink: Rgb, left_px: float, top_px: float, w_px: int, h_px: int) -> None:
    mask = _glyph(char, h_px, w_px)
    left = round(left_px) + (w_px - mask.width) // 2
    top = round(top_px)
    plate.paste(ink, (left, top, left + mask.width, top + mask.height), mask)


def _draw_single_row(plate: Image.Image, text: str, inks: list[Rgb], separator: int, px_per_mm: float) -> None:
    lay = layout_for(text)
    char_h, cell_w = round(lay.char_h_mm * px_per_mm), round(lay.char_w_mm * px_per_mm)
    top = (lay.height_mm - lay.char_h_mm) / 2 * px_per_mm
    for char, ink, left_mm in zip(text, inks, lay.char_lefts_mm(separator), strict=True):
        _draw_char(plate, char, ink, left_mm * px_per_mm, top, cell_w, char_h)
    dx, dy = lay.dot_centre_mm(separator)
    r = 5 * px_per_mm
    ImageDraw.Draw(plate).ellipse(
        (dx * px_per_mm - r, dy * px_per_mm - r, dx * px_per_mm + r, dy * px_per_mm + r), fill=inks[1]
    )


def _draw_double_row(plate: Image.Image, text: str, inks: list[Rgb], px_per_mm: float) -> None:
    s = px_per_mm
    for char, ink, left_mm in zip(text[:2], inks[:2], (110.0, 285.0), strict=True):
        _draw_char(plate, char, ink, left_mm * s, 15 * s, round(45 * s), round(60 * s))
    r = 5 * s
    ImageDraw.Draw(plate).ellipse((220 * s - r, 45 * s - r, 220 * s + r, 45 * s + r), fill=inks[1])
    for i, (char, ink) in enumerate(zip(text[2:], inks[2:], strict=True)):
        _draw_char(plate, char, ink, (27.5 + i * 80) * s, 90 * s, round(65 * s), round(110 * s))


def _green_gradient(w: int, h: int) -> Image.Image:
    """Small new-energy plates: white at the top fading to green."""
    top, bottom = (236, 248, 238), (46, 186, 96)
    column = Image.new("RGB", (1, h))
    for y in range(h):
        t = min(1.0, max(0.0, (y / max(1, h - 1) - 0.15) / 0.75))
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return column.resize((w, h))


def _yellow_green(w: int, h: int) -> Image.Image:
    """Large new-energy plates: yellow on the left, green on the right."""
    left, right = (236, 200, 40), (60, 180, 90)
    row = Image.new("RGB", (w, 1))
    for x in range(w):
        t = min(1.0, max(0.0, (x / max(1, w - 1) - 0.2) / 0.4))
        row.putpixel((x, 0), tuple(round(a + (b - a) * t) for a, b in zip(left, right, strict=True)))
    return row.resize((w, h))
