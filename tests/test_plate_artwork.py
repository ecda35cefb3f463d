"""The synthetic plates against GA 36-2018: sizes, colours, where the characters and the dot go, and
Yunnan's real prefixes; and the ways the generator spoils a photo."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from device.sim.plates import YUNNAN_AUTHORITIES, random_plate, render_plate
from models.synth import _motion_blur, _night
from protocol.plates import PlateKind


def rgb(plate: Image.Image, x: float, y: float) -> tuple[int, int, int]:
    """The colour at (x, y), as parts of the plate's width and height."""
    pixels = np.asarray(plate.convert("RGB"))
    r, g, b = (int(v) for v in pixels[round(y * (plate.height - 1)), round(x * (plate.width - 1))])
    return r, g, b


def test_sizes_in_millimetres() -> None:
    assert render_plate("云A5H821", 1.0).size == (440, 140)
    assert render_plate("云AD12345", 1.0).size == (480, 140)  # new-energy: 480 wide, eight characters
    assert render_plate("云A12345D", 1.0).size == (480, 140)
    assert render_plate("云A5H821", 1.0, kind=PlateKind.YELLOW, double_row=True).size == (440, 220)


def test_background_colours_of_each_kind() -> None:
    blue = rgb(render_plate("云A5H821"), 0.03, 0.5)
    assert blue[2] > 150 and blue[0] < 60
    yellow = rgb(render_plate("云A1234学"), 0.03, 0.5)
    assert yellow[0] > 200 and yellow[1] > 150 and yellow[2] < 80
    white = rgb(render_plate("云A0123警"), 0.03, 0.5)
    assert min(white) > 220
    black = rgb(render_plate("粤Z1234港"), 0.03, 0.5)
    assert max(black) < 40


def test_small_new_energy_fades_from_white_to_green_downwards() -> None:
    plate = render_plate("云AD12345")
    top, bottom = rgb(plate, 0.5, 0.05), rgb(plate, 0.5, 0.95)
    assert min(top) > 200  # near white
    assert bottom[1] > bottom[0] + 80 and bottom[1] > bottom[2] + 50  # green


def test_large_new_energy_is_yellow_on_the_left_green_on_the_right() -> None:
    plate = render_plate("云A12345D")
    left, right = rgb(plate, 0.03, 0.5), rgb(plate, 0.97, 0.5)
    assert left[0] > 200 and left[1] > 170 and left[2] < 80  # yellow
    assert right[1] > right[0] + 80  # green


def test_police_character_is_red() -> None:
    plate = np.asarray(render_plate("云A0123警", 1.0).convert("RGB")).astype(int)
    last = plate[30:110, 370:425]  # the seventh character's cell
    red = (last[..., 0] > 150) & (last[..., 1] < 80) & (last[..., 2] < 80)
    assert red.sum() > 300


def test_double_row_has_its_small_prefix_on_top_and_the_serial_below() -> None:
    plate = np.asarray(render_plate("云A5H821", 1.0, kind=PlateKind.YELLOW, double_row=True).convert("L")).astype(int)
    ink = plate < 100
    top, bottom = ink[15:75], ink[90:200]
    # the top row: the province and the letter only, around 110-155 and 285-330 mm; nothing at the edges
    assert top[:, 110:155].sum() > 200 and top[:, 285:330].sum() > 200
    assert top[:, 20:90].sum() == 0 and top[:, 350:420].sum() == 0
    # the bottom row: five tall characters across the plate
    assert all(bottom[:, 27 + i * 80 : 92 + i * 80].sum() > 500 for i in range(5))


def test_yunnan_plates_carry_only_prefixes_issued_there() -> None:
    rng = random.Random(8)
    prefixes = {text[:2] for text in (random_plate(rng, PlateKind.BLUE) for _ in range(3000)) if text[0] == "云"}
    assert prefixes == {"云" + letter for letter in YUNNAN_AUTHORITIES}
    assert "云B" not in prefixes and len(YUNNAN_AUTHORITIES) == 16


def test_night_darkens_and_motion_smears() -> None:
    rng = random.Random(1)
    plate = render_plate("云A5H821", 1.0).convert("RGB")
    assert np.asarray(_night(rng, plate)).mean() < 0.5 * np.asarray(plate).mean()
    bars = Image.new("RGB", (60, 20), (0, 0, 0))
    bars.paste((255, 255, 255), (30, 0, 60, 20))
    smeared = np.asarray(_motion_blur(rng, bars))[10]
    assert 0 < smeared[29, 0] < 255 or 0 < smeared[30, 0] < 255  # the hard edge is now a ramp
