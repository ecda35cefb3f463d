"""The simulated crash scene: valid plates where the ground truth says, and a counter that survives video."""

from __future__ import annotations

import io
import itertools
import random
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image
from pydantic import TypeAdapter

from device.sim import plates
from device.sim.plates import LAYOUTS, LETTERS, PlateKind, display_text, plate_kind, random_plate, render_plate
from device.sim.scene import Role, Scene, read_frame_counter
from protocol.messages import Plate


def test_random_plates_follow_ga36_and_are_mostly_kunming() -> None:
    rng = random.Random(7)
    adapter = TypeAdapter(Plate)
    blue = [random_plate(rng, PlateKind.BLUE) for _ in range(500)]
    green = [random_plate(rng, PlateKind.GREEN) for _ in range(500)]
    for text in blue:
        assert plate_kind(text) is PlateKind.BLUE
        assert len(text) == 7
        assert sum(c in LETTERS for c in text[2:]) <= 2
    for text in green:
        assert plate_kind(text) is PlateKind.GREEN
        assert len(text) == 8
        assert text[2] in "DF"
    for text in blue + green:
        assert "I" not in text and "O" not in text
        adapter.validate_python(text)
    assert sum(t.startswith("云A") for t in blue + green) > 700
    assert random_plate(random.Random(3), PlateKind.BLUE) == random_plate(random.Random(3), PlateKind.BLUE)


@pytest.mark.parametrize(
    "text", ["云A5HI21", "云O5H821", "云AAB8C1", "云A5H82", "X A5H821", "云AD1234A", "云A12345Z", "云AX12345"]
)
def test_invalid_plates_are_refused(text: str) -> None:
    assert plate_kind(text) is None
    with pytest.raises(ValueError):
        render_plate(text)


def test_plate_artwork_has_ga36_proportions_and_colours() -> None:
    blue = np.asarray(render_plate("云A5H821", px_per_mm=1.0))
    green = np.asarray(render_plate("云AD12345", px_per_mm=1.0))
    assert blue.shape == (140, 440, 4) and green.shape == (140, 480, 4)
    # background between the characters: blue for blue plates, green at the bottom of green ones
    assert tuple(blue[128, 220, :3]) == (12, 62, 178)
    r, g, b = (int(v) for v in green[125, 240, :3])
    assert g > r + 60 and g > b + 40
    assert display_text("云A5H821") == "云A·5H821"


def test_embassy_plate_leads_with_a_red_shi_and_has_its_dot_after_the_embassy_number() -> None:
    assert display_text("使014578") == "使014·578"
    plate = np.asarray(render_plate("使014578", px_per_mm=1.0))[:, :, :3].astype(int)
    assert plate.shape == (140, 440, 3)
    lefts = LAYOUTS[PlateKind.BLUE].char_lefts_mm(separator=4)
    gaps = [b - a for a, b in itertools.pairwise(lefts)]
    assert gaps.index(max(gaps)) == 3  # the wide gap with the dot: between 使014 and 578

    def red(x0: float, x1: float) -> int:
        cell = plate[25:115, round(x0) : round(x1)]
        return int(((cell[:, :, 0] > 150) & (cell[:, :, 1] < 80)).sum())

    assert red(lefts[0], lefts[0] + 45) > 300  # 使 in red
    assert red(lefts[1], lefts[-1] + 45) == 0  # the digits in white
    dot = plate[68:73, round(lefts[3] + 45) : round(lefts[4])]
    assert (dot.min(axis=2) > 200).any()  # the white dot in the wide gap


def test_missing_font_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    plates.cjk_font.cache_clear()
    plates._glyph.cache_clear()
    monkeypatch.setattr(plates, "FONT_DIR", tmp_path)
    try:
        with pytest.raises(plates.FontMissingError, match="fonts-noto-cjk"):
            render_plate("云A5H821")
    finally:
        plates.cjk_font.cache_clear()
        plates._glyph.cache_clear()


def _mean_rgb(image: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float, float]:
    x0, y0, x1, y1 = box
    # the middle of the plate, away from its border and the car around it
    w, h = x1 - x0, y1 - y0
    patch = image[y0 + h // 4 : y1 - h // 4, x0 + w // 8 : x1 - w // 8].reshape(-1, 3).astype(float)
    r, g, b = patch.mean(axis=0)
    return r, g, b


@pytest.mark.parametrize(("seed", "size"), [(1, (640, 480)), (2, (640, 480)), (5, (1280, 720)), (9, (320, 240))])
def test_both_crashed_cars_show_their_plates_where_the_truth_says(seed: int, size: tuple[int, int]) -> None:
    scene = Scene(*size, seed=seed)
    frame = scene.render(17)
    assert frame.image.shape == (size[1], size[0], 3) and frame.image.dtype == np.uint8
    by_role = {p.role: p for p in frame.plates}
    assert {Role.STRUCK, Role.STRIKING} <= set(by_role)
    for truth in frame.plates:
        x0, y0, x1, y1 = truth.box
        assert 0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1]
        assert plate_kind(truth.text) is truth.kind
        for x, y in truth.corners:
            assert x0 <= x <= x1 and y0 <= y <= y1
    struck, striking = by_role[Role.STRUCK], by_role[Role.STRIKING]
    assert struck.kind is PlateKind.GREEN and striking.kind is PlateKind.BLUE
    r, g, b = _mean_rgb(frame.image, striking.box)
    assert b > r + 50 and b > g + 30, "the blue plate is not where the truth puts it"
    r, g, b = _mean_rgb(frame.image, struck.box)
    assert g > r + 15 and g > b, "the green plate is not where the truth puts it"
    # the near car's plate is the bigger one, and both are big enough to read in a still
    assert striking.box[2] - striking.box[0] > struck.box[2] - struck.box[0] > size[1] / 12


def test_one_seed_is_one_scene_at_any_resolution() -> None:
    video, still = Scene(640, 480, seed=4), Scene(2028, 1520, seed=4)
    assert video.plates == still.plates
    small = {p.role: p.box for p in video.render(0, counter=False).plates}
    large = {p.role: p.box for p in still.render(0, counter=False).plates}
    scale = 2028 / 640
    for role in (Role.STRUCK, Role.STRIKING):
        for a, b in zip(small[role], large[role], strict=True):
            assert abs(a * scale - b) < 12  # camera shake and rounding, a few pixels at each size


def test_frames_are_deterministic_and_alive() -> None:
    a, b = Scene(320, 240, seed=3), Scene(320, 240, seed=3)
    assert np.array_equal(a.render(40).image, b.render(40).image)
    assert not np.array_equal(a.render(40).image, a.render(41).image)
    # the oncoming car and the pedestrian move: frames a second apart differ beyond noise
    diff = np.abs(a.render(150).image.astype(int) - a.render(165).image.astype(int))
    assert (diff > 60).sum() > 100


@pytest.mark.parametrize("number", [0, 1, 2, 255, 4096, 12345, 65535, 65536 + 9])
@pytest.mark.parametrize("size", [(640, 480), (160, 120), (1280, 720)])
def test_frame_counter_survives_jpeg_and_half_size(number: int, size: tuple[int, int]) -> None:
    image = Scene(*size, seed=2).render(number).image
    assert read_frame_counter(image) == number % 65536
    for scale in (1.0, 0.5):
        pil = Image.fromarray(image)
        if scale != 1.0:
            pil = pil.resize((round(size[0] * scale), round(size[1] * scale)), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=60)
        assert read_frame_counter(np.asarray(Image.open(buf))) == number % 65536


def test_frame_counter_survives_vp8() -> None:
    scene = Scene(640, 480, seed=6)
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=15)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.bit_rate = 300_000
        stream.codec_context.time_base = Fraction(1, 15)
        for n in range(20):
            for packet in stream.encode(av.VideoFrame.from_ndarray(scene.render(100 + n).image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, "r") as decoded:
        numbers = [
            read_frame_counter(np.asarray(f.to_ndarray(format="rgb24"), np.uint8)) for f in decoded.decode(video=0)
        ]
    assert numbers == list(range(100, 120))


def test_no_counter_reads_as_none() -> None:
    assert read_frame_counter(Scene(640, 480, seed=1).render(5, counter=False).image) is None
    assert read_frame_counter(np.zeros((480, 640, 3), np.uint8)) is None
    assert read_frame_counter(np.full((480, 640, 3), 255, np.uint8)) is None
