"""The pinhole camera every part of the scene is drawn through, and the little vector algebra it needs.

Everything is laid out in metres and projected, so the same seed gives the same picture at any size
and a plate's corners come out of the very projection that drew it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

Rgb = tuple[int, int, int]
Vec = tuple[float, float, float]
Point = tuple[float, float]

LIGHT = (-0.35, 0.85, -0.40)  # towards the sun: high, behind the camera, a little to the left


@dataclass(frozen=True)
class View:
    """A level pinhole camera: world X right, Y up, Z ahead, in metres; image x right, y down."""

    f: float
    cx: float
    cy: float  # the horizon
    cam_x: float
    cam_h: float

    def pt(self, p: Vec) -> Point:
        x, y, z = p
        return (self.cx + self.f * (x - self.cam_x) / z, self.cy - self.f * (y - self.cam_h) / z)

    def poly(self, points: Sequence[Vec]) -> list[Point]:
        return [self.pt(p) for p in points]

    def scaled(self, s: float) -> View:
        return replace(self, f=self.f * s, cx=self.cx * s, cy=self.cy * s)

    def shifted(self, dx: float, dy: float) -> View:
        return replace(self, cx=self.cx + dx, cy=self.cy + dy)

    @property
    def eye(self) -> Vec:
        return (self.cam_x, self.cam_h, 0.0)


def sub(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def centroid(points: Sequence[Vec]) -> Vec:
    n = len(points)
    return (sum(p[0] for p in points) / n, sum(p[1] for p in points) / n, sum(p[2] for p in points) / n)


def shade(colour: Rgb, normal: Vec, gain: float = 1.0) -> tuple[int, int, int, int]:
    length = math.sqrt(dot(normal, normal)) or 1.0
    light = math.sqrt(dot(LIGHT, LIGHT))
    k = (0.58 + 0.47 * max(0.0, dot(normal, LIGHT) / (length * light))) * gain
    r, g, b = (min(255, round(c * k)) for c in colour)
    return (r, g, b, 255)


def rgba(colour: Rgb) -> tuple[int, int, int, int]:
    return (*colour, 255)
