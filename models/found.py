"""The shipped models' own finds in views of the real training photographs.

A later stage learns best from what the earlier ones really give it at run time, not only from
errors drawn at random: the corner refiner from the detector's corners, the recogniser from the
refiner's. A view is a training photograph cut around its plate and shrunk at random, as a plate
comes in a frame at any place and size.
"""

from __future__ import annotations

import random

from PIL import Image

from device.ocr.geometry import Quad


def random_view(rng: random.Random, photo: Image.Image, corners: Quad) -> tuple[Image.Image, Quad]:
    """``photo`` cut to a random window around the plate at ``corners`` and shrunk, and the corners in it."""
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    w = rng.uniform(max(xs) - min(xs) + 20, photo.width)
    h = min(photo.height, w * rng.uniform(0.56, 1.6))
    left = round(rng.uniform(max(0, max(xs) + 10 - w), min(min(xs) - 10, photo.width - w)))
    top = round(rng.uniform(max(0, max(ys) + 10 - h), max(0, min(min(ys) - 10, photo.height - h))))
    view = photo.crop((left, top, left + round(w), top + round(h)))
    shrink = rng.uniform(0.4, 1.0)
    small = view.resize((max(16, round(view.width * shrink)), max(16, round(view.height * shrink))))
    sx, sy = small.width / view.width, small.height / view.height
    a, b, c, d = (((x - left) * sx, (y - top) * sy) for x, y in corners)
    return small, (a, b, c, d)


def same_plate(a: Quad, b: Quad) -> bool:
    """Whether each quad's centre lies inside the other's box."""

    def inside(p: Quad, q: Quad) -> bool:
        cx, cy = sum(v[0] for v in p) / 4, sum(v[1] for v in p) / 4
        return min(v[0] for v in q) <= cx <= max(v[0] for v in q) and min(v[1] for v in q) <= cy <= max(v[1] for v in q)

    return inside(a, b) and inside(b, a)
