"""What a rendered frame is: its pixels and where each readable plate lies in them.

The plate reader's tests and benchmarks score against these corners, which no photograph could give.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from device.sim.plates import PlateKind, plate_kind
from device.sim.scene.projection import Point

Image8 = NDArray[np.uint8]


class Role(StrEnum):
    STRUCK = "struck"  # the car in front, hit from behind; green new-energy plate
    STRIKING = "striking"  # the car that ran into it; blue plate
    PASSING = "passing"  # traffic going by in the opposite direction


@dataclass(frozen=True)
class PlateTruth:
    """Where a plate is in a rendered image: four corners (clockwise from top-left) and their box."""

    text: str
    kind: PlateKind
    role: Role
    corners: tuple[Point, Point, Point, Point]
    box: tuple[int, int, int, int]  # x0, y0, x1, y1, pixels, x1 and y1 exclusive


@dataclass(frozen=True)
class RenderedFrame:
    number: int
    image: Image8  # H x W x 3 RGB
    plates: tuple[PlateTruth, ...]  # every plate fully in view, unhidden, and at least MIN_PLATE_PX wide


def moved(corners: Sequence[Point], dx: float, dy: float) -> tuple[Point, Point, Point, Point]:
    a, b, c, d = ((x + dx, y + dy) for x, y in corners)
    return (a, b, c, d)


def plate_truth(text: str, role: Role, corners: Sequence[Point]) -> PlateTruth | None:
    kind = plate_kind(text)
    if kind is None:
        return None
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    box = (math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys)))
    return PlateTruth(text=text, kind=kind, role=role, corners=moved(corners, 0, 0), box=box)


def inside(box: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    return box[0] >= 0 and box[1] >= 0 and box[2] <= size[0] and box[3] <= size[1]


def covers(mask: NDArray[np.bool_], quad: Sequence[Point]) -> bool:
    """Whether ``mask`` (a later layer's coverage) touches the polygon ``quad``."""
    h, w = mask.shape
    poly = Image.new("1", (w, h), 0)
    ImageDraw.Draw(poly).polygon(list(quad), fill=1)
    return bool((np.asarray(poly) & mask).any())
