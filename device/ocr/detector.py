"""Finding plates in a frame: the detector's heat map peaks and the corners it gives for each.

The frame is letterboxed to the detector's input, where a plate's corners come out only to a few
pixels, too coarse to straighten it well; so each find is looked at again through a window around
it (REFINE_WINDOW plate widths) at the detector's full input size, and the corners of that second
look are kept. On the held-out real photographs this was the best of the settings tried (none,
small plates only, windows of 2.2 to 6 widths), and still the weak point: see models/README.md.
A frame far from the detector's shape (a phone photo held upright) is also searched in windows of
that shape (``tiles``), where its plates are not shrunk to a few pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from device.ocr.errors import ModelError
from device.ocr.geometry import CORNER_UNIT, DET_H, DET_STRIDE, DET_W, Quad, letterbox
from device.ocr.runtime import TfliteModel

MIN_SCORE = 0.2
REFINE_WINDOW = 3.0  # the second look's window, in plate widths
# A frame whose plates would come out this many times larger in windows of the detector's own
# shape (a portrait phone photo: 2.8 times) is read in such windows too, overlapping by a third.
TILE_GAIN = 1.5


@dataclass(frozen=True)
class Detection:
    corners: Quad  # tl, tr, br, bl, frame pixels
    score: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        xs, ys = [p[0] for p in self.corners], [p[1] for p in self.corners]
        return (math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys)))

    @property
    def centre(self) -> tuple[float, float]:
        return (sum(p[0] for p in self.corners) / 4, sum(p[1] for p in self.corners) / 4)

    def moved(self, dx: float, dy: float) -> Detection:
        a, b, c, d = ((x + dx, y + dy) for x, y in self.corners)
        return Detection((a, b, c, d), self.score)


def distinct(found: list[Detection]) -> list[Detection]:
    """One find per plate, best first: a find whose centre lies in a better find's box is the same plate."""
    kept: list[Detection] = []
    for d in sorted(found, key=lambda d: -d.score):
        cx, cy = d.centre
        if not any(k.box[0] <= cx <= k.box[2] and k.box[1] <= cy <= k.box[3] for k in kept):
            kept.append(d)
    return kept


def tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Windows of the detector's shape across a frame much taller or wider than it, else none.

    The detector sees a frame shrunk to fit its input; a portrait photo fits by its height, and its
    plates shrink to a few pixels. Windows as wide as the frame (or as tall, for a panorama) keep
    them large enough to find, and the whole-frame look still finds the plates a window cuts.
    """
    tall = height * DET_W / DET_H / width  # > 1: taller than the detector's input
    if max(tall, 1 / tall) < TILE_GAIN:
        return []
    along, across = (height, width) if tall > 1 else (width, height)
    size = round(across * (DET_H / DET_W if tall > 1 else DET_W / DET_H))
    n = math.ceil((along - size) / (size * 2 / 3)) + 1
    starts = [round(i * (along - size) / (n - 1)) for i in range(n)]
    if tall > 1:
        return [(0, s, width, s + size) for s in starts]
    return [(s, 0, s + size, height) for s in starts]


class Detector:
    def __init__(self, path: Path, threads: int = 1) -> None:
        self.model = TfliteModel(path, threads)
        shapes = self.model.output_shapes()
        grid = (DET_H // DET_STRIDE, DET_W // DET_STRIDE)
        if self.model.input_shape != (1, DET_H, DET_W, 3) or sorted(shapes) != [(*grid, 1), (*grid, 8)]:
            raise ModelError(f"{path} is not a plate detector (input {self.model.input_shape}, outputs {shapes})")
        self._heat = shapes.index((*grid, 1))

    def _raw(self, image: Image.Image) -> list[Detection]:
        x, scale = letterbox(image)
        outputs = self.model.run(x)
        heat, offsets = outputs[self._heat][..., 0], outputs[1 - self._heat]
        padded = np.pad(heat, 1, constant_values=0.0)
        peaks = (heat >= sliding_window_view(padded, (3, 3)).max(axis=(2, 3))) & (heat >= MIN_SCORE)
        found = []
        for gy, gx in zip(*np.nonzero(peaks), strict=True):
            cx, cy = (gx + 0.5) * DET_STRIDE, (gy + 0.5) * DET_STRIDE
            o = offsets[gy, gx] * CORNER_UNIT
            pts = [((cx + o[2 * k]) / scale, (cy + o[2 * k + 1]) / scale) for k in range(4)]
            found.append(Detection((pts[0], pts[1], pts[2], pts[3]), float(heat[gy, gx])))
        return found

    def detect(self, image: Image.Image) -> list[Detection]:
        """Every plate in the RGB ``image``, best first."""
        found = self._raw(image)
        for left, top, right, bottom in tiles(image.width, image.height):
            found += [d.moved(left, top) for d in self._raw(image.crop((left, top, right, bottom)))]
        return distinct([self._refine(image, d) for d in distinct(found)])

    def _refine(self, image: Image.Image, d: Detection) -> Detection:
        x0, y0, x1, y1 = d.box
        ww = max(x1 - x0, 8) * REFINE_WINDOW
        wh = ww * DET_H / DET_W
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = round(cx - ww / 2), round(cy - wh / 2)
        window = image.crop((left, top, left + round(ww), top + round(wh)))
        near = [
            c
            for c in distinct(self._raw(window))
            if abs(c.centre[0] - ww / 2) < ww / 4 and abs(c.centre[1] - wh / 2) < wh / 4
        ]
        if not near:
            return d
        best = near[0].moved(left, top)
        return Detection(best.corners, max(d.score, best.score))
