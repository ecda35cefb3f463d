"""From a plate's four corners in a frame to the recogniser's straight, fixed-size input.

Training (``models/``) and the device cut plates out with this one function, so the recogniser
sees at run time exactly the kind of crop it learned from. A double-row plate (the rear plate of a
large vehicle) is cut into its two rows and the rows are laid side by side, so one single-row
recogniser reads both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]  # clockwise from top-left: tl, tr, br, bl

REC_W, REC_H = 128, 32  # the recogniser's input, RGB
# Width over height of the plate outline: 440 x 140 / 480 x 140 single rows, 440 x 220 double rows.
DOUBLE_ROW_MAX_ASPECT = 2.6
# Where the characters of a double-row plate are, as parts of its width and height (GA 36: 440 x
# 220 mm; the top row's two, 45 x 60 mm from 15 mm down, at 110 and 285 mm across with the dot
# between; the bottom row's five, 110 mm high from 90 mm down), with a little margin. The top two
# are cut one by one, without the 130 mm between them, so they are not squeezed to slivers.
_TOP_CHARS = (((97 / 440, 10 / 220), (168 / 440, 80 / 220)), ((272 / 440, 10 / 220), (343 / 440, 80 / 220)))
_BOTTOM_ROW = ((15 / 440, 84 / 220), (425 / 440, 206 / 220))
_TOP_CHAR_W = 20  # of REC_W each; the bottom row gets the rest


def perspective_coeffs(dst: Sequence[Point], src: Sequence[Point]) -> tuple[float, ...]:
    """PIL's PERSPECTIVE coefficients mapping output points ``dst`` back to input points ``src``."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return tuple(float(c) for c in np.linalg.solve(np.array(rows, float), np.array(rhs, float)))


def aspect(corners: Quad) -> float:
    """Width over height of the plate outline, from its edges' lengths."""
    tl, tr, br, bl = corners
    width = math.dist(tl, tr) + math.dist(bl, br)
    height = math.dist(tl, bl) + math.dist(tr, br)
    return width / max(height, 1e-6)


def is_double_row(corners: Quad) -> bool:
    return aspect(corners) < DOUBLE_ROW_MAX_ASPECT


# A motorbike's plate (220 x 140 mm, aspect 1.57) has two rows like a lorry's rear plate (440 x
# 220, aspect 2.0); only the outline tells them apart, halfway between.
MOTORBIKE_MAX_ASPECT = 1.8


def is_motorbike(corners: Quad) -> bool:
    return aspect(corners) < MOTORBIKE_MAX_ASPECT


def drawn_in(corners: Quad, across: float, up: float) -> Quad:
    """``corners`` drawn towards (or away from) the centre, keeping ``across`` of the width, ``up`` of the height."""
    unit = perspective_coeffs([(0, 0), (1, 0), (1, 1), (0, 1)], corners)
    a, b = 0.5 - across / 2, 0.5 + across / 2
    c, d = 0.5 - up / 2, 0.5 + up / 2
    return (_map(unit, a, c), _map(unit, b, c), _map(unit, b, d), _map(unit, a, d))


def _map(coeffs: Sequence[float], u: float, v: float) -> Point:
    a, b, c, d, e, f, g, h = coeffs
    w = g * u + h * v + 1
    return ((a * u + b * v + c) / w, (d * u + e * v + f) / w)


def _warp(image: Image.Image, quad: Sequence[Point], size: tuple[int, int]) -> Image.Image:
    w, h = size
    coeffs = perspective_coeffs([(0, 0), (w, 0), (w, h), (0, h)], quad)
    return image.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)


def straighten(image: Image.Image, corners: Quad, double_row: bool | None = None) -> NDArray[np.uint8]:
    """The plate inside ``corners`` of the RGB ``image`` as a REC_H x REC_W x 3 array."""
    if double_row is None:
        double_row = is_double_row(corners)
    if not double_row:
        return np.asarray(_warp(image, corners, (REC_W, REC_H)), np.uint8)
    # plate (u, v) in [0, 1]^2 -> image point
    unit = perspective_coeffs([(0, 0), (1, 0), (1, 1), (0, 1)], corners)

    def region(box: tuple[Point, Point], width: int) -> Image.Image:
        (u0, v0), (u1, v1) = box
        quad = [_map(unit, u0, v0), _map(unit, u1, v0), _map(unit, u1, v1), _map(unit, u0, v1)]
        return _warp(image, quad, (width, REC_H))

    out = Image.new("RGB", (REC_W, REC_H))
    for i, box in enumerate(_TOP_CHARS):
        out.paste(region(box, _TOP_CHAR_W), (i * _TOP_CHAR_W, 0))
    top = len(_TOP_CHARS) * _TOP_CHAR_W
    out.paste(region(_BOTTOM_ROW, REC_W - top), (top, 0))
    return np.asarray(out, np.uint8)


# The detector sees the frame shrunk to fit DET_W x DET_H (the rest padded with grey) and answers
# on a grid of DET_STRIDE pixels: how likely a plate's centre is in each cell, and where its four
# corners are from the cell's centre, in units of CORNER_UNIT detector pixels.
DET_W, DET_H = 448, 256
DET_STRIDE = 4
CORNER_UNIT = 16.0
PAD_GREY = 114


def pad_with_edges(image: Image.Image, across: float, up: float) -> tuple[Image.Image, tuple[int, int]]:
    """``image`` with ``across`` of its width added left and right and ``up`` of its height above and
    below, filled with its edge pixels (no frame the detector could take for a plate's); and where
    ``image``'s top-left corner went."""
    left, top = round(image.width * across), round(image.height * up)
    pixels = np.pad(np.asarray(image.convert("RGB")), ((top, top), (left, left), (0, 0)), mode="edge")
    return Image.fromarray(pixels), (left, top)


def letterbox(image: Image.Image, size: tuple[int, int] = (DET_W, DET_H)) -> tuple[NDArray[np.uint8], float]:
    """``image`` shrunk (or grown) to fit ``size`` at its own aspect, top-left, grey elsewhere; and the scale."""
    w, h = size
    scale = min(w / image.width, h / image.height)
    nw, nh = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    out = np.full((h, w, 3), PAD_GREY, np.uint8)
    out[:nh, :nw] = np.asarray(image.convert("RGB").resize((nw, nh), Image.Resampling.BILINEAR), np.uint8)
    return out, scale


# The corner refiner looks again at each find through a window REF_W x REF_H, straightened from
# the find's own corners and reaching REF_MARGIN beyond them (parts of the plate's width and
# height, each side), and says where the plate's true corners are in that window (parts of it).
REF_W, REF_H = 128, 64
REF_MARGIN = (0.25, 0.75)


def refine_window(corners: Quad) -> Quad:
    """The window around ``corners`` the refiner looks through, in image pixels (tl, tr, br, bl)."""
    mx, my = REF_MARGIN
    return drawn_in(corners, 1 + 2 * mx, 1 + 2 * my)


def window_pixels(image: Image.Image, window: Quad) -> NDArray[np.uint8]:
    """The refiner's input: ``window`` of ``image`` straightened to REF_H x REF_W x 3."""
    return np.asarray(_warp(image, window, (REF_W, REF_H)), np.uint8)


def to_window(window: Quad, points: Sequence[Point]) -> list[Point]:
    """Image ``points`` in the window's coordinates, as parts of its width and height."""
    coeffs = perspective_coeffs(window, [(0, 0), (1, 0), (1, 1), (0, 1)])
    return [_map(coeffs, x, y) for x, y in points]


def from_window(window: Quad, points: Sequence[Point]) -> Quad:
    """Points given as parts of the window back in image pixels."""
    coeffs = perspective_coeffs([(0, 0), (1, 0), (1, 1), (0, 1)], window)
    a, b, c, d = (_map(coeffs, x, y) for x, y in points)
    return (a, b, c, d)
