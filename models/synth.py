"""Synthetic training data: plates of every GA 36 kind, photographed badly, and frames full of them.

The real photographs are few and nearly all blue Anhui plates, so the reader learns the other 30
provinces, the green, yellow, white and black plates and the special characters from plates drawn
by ``device.sim.plates`` (the artwork the simulated camera shows too), warped in perspective and
spoiled the ways a roadside photo is: blur (still or moving), the camera's noise, glare, dirt,
night, over-exposure, low resolution, JPEG. Detector
frames are the simulated camera's crash scenes (``device.sim.scene``) with more such plates pasted
in. A crop is cut out of its canvas with ``device.ocr.geometry.straighten`` from slightly wrong
corners, as the device cuts what its detector found.
"""

from __future__ import annotations

import io
import math
import random

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from device.ocr.geometry import Quad, perspective_coeffs, straighten
from device.sim.plates import DIGITS, EMBASSY, LETTERS, PROVINCES, PlateKind, render_plate
from device.sim.scene import Scene

# How far off the detector's corners may be, in plate heights (vertically; 1.5 times that across):
# the shipped detector is off by about 13 % of the height and 6 % of the width on average. Even
# with the corner refiner (device/ocr/refiner.py), a recogniser trained for 8 % read fewer held-out
# plates end to end (72 %) than this one (86 %): the refiner's misses are rare but large.
CORNER_ERROR = 0.16

# kind, double row, form, weight
_MIX: tuple[tuple[PlateKind, bool, str, float], ...] = (
    (PlateKind.BLUE, False, "ordinary", 0.36),
    (PlateKind.GREEN, False, "small", 0.16),
    (PlateKind.GREEN, False, "large", 0.06),
    (PlateKind.YELLOW, False, "ordinary", 0.08),
    (PlateKind.YELLOW, True, "ordinary", 0.1),
    (PlateKind.YELLOW, False, "coach", 0.06),
    (PlateKind.WHITE, False, "police", 0.07),
    (PlateKind.BLACK, False, "hk", 0.06),
    (PlateKind.BLACK, False, "consulate", 0.05),
    (PlateKind.BLACK, False, "embassy", 0.03),
)


def _serial(rng: random.Random, n: int) -> str:
    chars = rng.choices(DIGITS, k=n)
    for pos in rng.sample(range(n), k=rng.choices((0, 1, 2), weights=(40, 35, 25))[0]):
        chars[pos] = rng.choice(LETTERS)
    return "".join(chars)


FORMS = [f"{kind.value}{' double' if double else ''} {form}" for kind, double, form, _ in _MIX]


def random_training_plate(rng: random.Random, form_name: str | None = None) -> tuple[str, PlateKind, bool]:
    """A valid text of any form (or of ``form_name``, one of FORMS), any province: (text, colour, double row)."""
    if form_name is None:
        kind, double, form, _ = rng.choices(_MIX, weights=[m[3] for m in _MIX])[0]
    else:
        kind, double, form, _ = _MIX[FORMS.index(form_name)]
    prefix = rng.choice(PROVINCES) + rng.choice(LETTERS)
    if form == "ordinary":
        text = prefix + _serial(rng, 5)
    elif form == "small":
        text = prefix + rng.choice("DF") + rng.choice(LETTERS + DIGITS) + "".join(rng.choices(DIGITS, k=4))
    elif form == "large":
        text = prefix + "".join(rng.choices(DIGITS, k=5)) + rng.choice("DF")
    elif form == "coach":
        text = prefix + _serial(rng, 4) + rng.choice("学挂")
    elif form == "police":
        text = prefix + _serial(rng, 4) + "警"
    elif form == "hk":
        text = "粤Z" + _serial(rng, 4) + rng.choice("港澳")
    elif form == "consulate":
        text = prefix + "".join(rng.choices(DIGITS, k=4)) + rng.choice("使领")
    else:
        text = EMBASSY + "".join(rng.choices(DIGITS, k=6))
    return text, kind, double


def _background(rng: random.Random, w: int, h: int) -> Image.Image:
    """Car paint, bumper plastic or street: a base colour, a gradient and some edges."""
    base = tuple(rng.randrange(256) for _ in range(3))
    img = Image.new("RGB", (w, h), base)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randrange(0, 6)):
        x0, y0 = rng.uniform(-w, w), rng.uniform(-h, h)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x0 + rng.uniform(5, w), y0 + rng.uniform(2, h)), fill=colour)
        else:
            draw.line((x0, y0, rng.uniform(0, w), rng.uniform(0, h)), fill=colour, width=rng.randrange(1, 6))
    return img


def _glare(rng: random.Random, img: Image.Image) -> Image.Image:
    """A bright elliptical reflection, as from the sun or a flash on the plate's film."""
    w, h = img.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    rx, ry = rng.uniform(0.1, 0.5) * w, rng.uniform(0.2, 0.8) * h
    spot = np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)) * rng.uniform(80, 230)
    out = np.asarray(img, np.float32) + spot[:, :, None]
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _dirt(rng: random.Random, img: Image.Image) -> Image.Image:
    """Mud and dust: soft brownish blobs, partly covering."""
    w, h = img.size
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(rng.randrange(1, 8)):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.02, 0.12) * w
        draw.ellipse((x - r, y - r * rng.uniform(0.3, 1), x + r, y + r), fill=rng.randrange(60, 200))
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, w * 0.01)))
    mud = Image.new("RGB", (w, h), (rng.randrange(70, 140), rng.randrange(55, 110), rng.randrange(30, 80)))
    return Image.composite(mud, img, mask)


def _motion_blur(rng: random.Random, img: Image.Image) -> Image.Image:
    """The smear of a car or a hand moving during the exposure: the image averaged along a line."""
    length = rng.randrange(3, 9)
    angle = rng.gauss(0, 0.3)  # mostly along the road
    dx, dy = math.cos(angle), math.sin(angle)
    pixels = np.asarray(img, np.float32)
    out = np.zeros_like(pixels)
    for i in range(length):
        t = i - (length - 1) / 2
        out += np.roll(pixels, (round(t * dy), round(t * dx)), axis=(0, 1))
    return Image.fromarray((out / length).astype(np.uint8))


def _night(rng: random.Random, img: Image.Image) -> Image.Image:
    """Night under street lights: dark, an orange or bluish cast, and the sensor's gain noise."""
    pixels = np.asarray(img, np.float32) * rng.uniform(0.12, 0.35)
    cast = (1.0, 0.85, 0.6) if rng.random() < 0.6 else (0.8, 0.9, 1.1)
    pixels *= np.array(cast, np.float32)
    pixels += np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(4, 12), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def degrade(rng: random.Random, img: Image.Image) -> Image.Image:
    """Blur (still or moving), glare, dirt, colour cast, night, over-exposure, the camera's
    noise and JPEG, each with its own chance."""
    if rng.random() < 0.25:
        img = _glare(rng, img)
    if rng.random() < 0.25:
        img = _dirt(rng, img)
    if rng.random() < 0.08:
        img = _night(rng, img)
    elif rng.random() < 0.06:  # the sun on the film, or an exposure set for a dark scene
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(1.5, 2.2))
    elif rng.random() < 0.6:
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.35, 1.4))
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.5, 1.3))
        img = ImageEnhance.Color(img).enhance(rng.uniform(0.5, 1.3))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3)))
    elif rng.random() < 0.3:
        k = rng.choice((3, 5))
        img = img.filter(ImageFilter.BoxBlur(k / 3))
    elif rng.random() < 0.25:
        img = _motion_blur(rng, img)
    if rng.random() < 0.6:
        # The sensor's own noise: part of it grows with the light (shot noise, as its square
        # root), part does not (read noise), so dark plates are noisier for their contrast.
        pixels = np.asarray(img, np.float64)
        sigma = rng.uniform(2, 14)
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 1, pixels.shape)
        shot = np.sqrt(np.clip(pixels, 1, 255) / 255)
        img = Image.fromarray(np.clip(pixels + noise * sigma * (0.5 + 0.5 * shot), 0, 255).astype(np.uint8))
    if rng.random() < 0.6:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randrange(25, 90))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def jitter(rng: random.Random, corners: Quad, amount: float) -> Quad:
    """The corners moved as a detector would get them wrong: by up to ``amount`` of the plate's height."""
    tl, tr, br, bl = corners
    h = (math.dist(tl, bl) + math.dist(tr, br)) / 2
    s = amount * h

    def move(p: tuple[float, float]) -> tuple[float, float]:
        return (p[0] + rng.uniform(-1.5 * s, 1.5 * s), p[1] + rng.uniform(-s, s))

    return (move(tl), move(tr), move(br), move(bl))


def random_quad(rng: random.Random, w: float, h: float, cx: float, cy: float) -> Quad:
    """A ``w`` x ``h`` rectangle around (cx, cy), turned, sheared and seen in perspective."""
    angle = math.radians(rng.gauss(0, 6))
    yaw = rng.uniform(-0.35, 0.35)  # one side nearer: shorter far edge
    shear = rng.gauss(0, 0.12)
    pts = []
    for x, y in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)):
        depth = 1 + yaw * x
        px, py = (x + shear * y) * w, y * h / depth
        c, s = math.cos(angle), math.sin(angle)
        pts.append((cx + px * c - py * s, cy + px * s + py * c))
    return (pts[0], pts[1], pts[2], pts[3])


def paste_plate(canvas: Image.Image, plate: Image.Image, quad: Quad) -> None:
    """Warp the RGBA ``plate`` onto ``quad`` of ``canvas``."""
    x0, y0 = math.floor(min(p[0] for p in quad)), math.floor(min(p[1] for p in quad))
    x1, y1 = math.ceil(max(p[0] for p in quad)), math.ceil(max(p[1] for p in quad))
    local = [(x - x0, y - y0) for x, y in quad]
    coeffs = perspective_coeffs(local, [(0, 0), (plate.width, 0), (plate.width, plate.height), (0, plate.height)])
    warped = plate.transform((x1 - x0, y1 - y0), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)
    canvas.paste(warped, (x0, y0), warped)


def synth_photo(
    rng: random.Random, spec: tuple[str, PlateKind, bool] | None = None
) -> tuple[Image.Image, Quad, tuple[str, PlateKind, bool]]:
    """A spoiled close-up photo of one plate (of ``spec``: text, colour, double row; or any) and its corners."""
    text, kind, double = spec or random_training_plate(rng)
    width_px = rng.uniform(60, 260)  # the plate's width in the photo
    plate = render_plate(text, px_per_mm=rng.uniform(0.6, 1.6), kind=kind, double_row=double)
    ratio = plate.height / plate.width
    cw, ch = round(width_px * 1.8), round(width_px * ratio * 3 + 20)
    canvas = _background(rng, cw, ch)
    quad = random_quad(rng, width_px, width_px * ratio, cw / 2, ch / 2)
    paste_plate(canvas, plate, quad)
    return degrade(rng, canvas), quad, (text, kind, double)


def synth_crop(
    rng: random.Random, spec: tuple[str, PlateKind, bool] | None = None
) -> tuple[NDArray[np.uint8], str, PlateKind]:
    """One recogniser sample (of ``spec``: text, colour, double row; or a random one): input, text, colour."""
    canvas, quad, (text, kind, double) = synth_photo(rng, spec)
    crop = straighten(canvas, jitter(rng, quad, CORNER_ERROR), double_row=double)
    return crop, text, kind


class SceneFrames:
    """Detector samples: simulated crash scenes with more plates pasted in, and where every plate is."""

    def __init__(self, rng: random.Random, width: int = 1280, height: int = 720, scenes: int = 24) -> None:
        self._rng = rng
        self._scenes = [Scene(width, height, seed=rng.randrange(10**6)) for _ in range(scenes)]

    def frame(self, spoil: bool = True) -> tuple[Image.Image, list[tuple[str, Quad]]]:
        rng = self._rng
        scene = rng.choice(self._scenes)
        rendered = scene.render(rng.randrange(600), counter=False)
        canvas = Image.fromarray(rendered.image)
        plates: list[tuple[str, Quad]] = [(p.text, p.corners) for p in rendered.plates]
        for _ in range(rng.randrange(0, 4)):
            text, kind, double = random_training_plate(rng)
            art = render_plate(text, px_per_mm=1.0, kind=kind, double_row=double)
            w = rng.uniform(40, 320)
            h = w * art.height / art.width
            cx, cy = rng.uniform(w, canvas.width - w), rng.uniform(h * 2, canvas.height - h * 2)
            quad = random_quad(rng, w, h, cx, cy)
            paste_plate(canvas, art, quad)
            plates.append((text, quad))
        return (degrade(rng, canvas) if spoil else canvas), plates
