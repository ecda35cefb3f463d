"""The saloons in the scene, drawn face by face, with their plates warped onto them.

A car returns its plate's image corners from the same projection that drew it, so the ground truth
of a plate is exact at any size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from device.ocr.geometry import perspective_coeffs
from device.sim.plates import layout_for, render_plate
from device.sim.scene.frames import Role
from device.sim.scene.projection import Point, Rgb, Vec, View, centroid, cross, dot, shade, sub

BODY_COLOURS: tuple[Rgb, ...] = (
    (176, 28, 34),  # red
    (28, 58, 118),  # dark blue
    (36, 37, 41),  # black
    (190, 193, 198),  # silver
    (236, 236, 232),  # white
    (92, 96, 104),  # grey
)


@dataclass(frozen=True)
class Car:
    """A saloon, placed by the centre of its rear bumper and the direction its nose points."""

    x: float
    z: float
    yaw: float  # radians, 0 = straight ahead, positive = nose to the right
    colour: Rgb
    plate: str
    role: Role
    length: float = 4.6
    width: float = 1.8
    damaged_rear: bool = False

    def world(self, x: float, y: float, z: float) -> Vec:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return (self.x + x * c + z * s, y, self.z - x * s + z * c)


def _solid(
    car: Car, bottom: Sequence[Point], y0: float, top: Sequence[Point], y1: float
) -> list[tuple[list[Vec], Vec]]:
    """Faces (polygon, outward normal) of a solid between two footprints given as (x, z)."""
    lo = [car.world(x, y0, z) for x, z in bottom]
    hi = [car.world(x, y1, z) for x, z in top]
    centre = centroid(lo + hi)
    faces = [[lo[i], lo[(i + 1) % len(lo)], hi[(i + 1) % len(hi)], hi[i]] for i in range(len(lo))]
    faces += [hi[::-1], lo]
    out = []
    for face in faces:
        n = cross(sub(face[1], face[0]), sub(face[-1], face[0]))
        if dot(n, sub(centroid(face), centre)) < 0:
            n = (-n[0], -n[1], -n[2])
        out.append((face, n))
    return out


def _visible(view: View, face: Sequence[Vec], normal: Vec) -> bool:
    return dot(normal, sub(view.eye, face[0])) > 0


def _shrink(face: Sequence[Vec], kx: float, ky: float) -> list[Vec]:
    """The face pulled towards its centre: ``kx`` horizontally, ``ky`` vertically."""
    c = centroid(face)
    return [(c[0] + (p[0] - c[0]) * kx, c[1] + (p[1] - c[1]) * ky, c[2] + (p[2] - c[2]) * kx) for p in face]


def rectangle(x0: float, x1: float, z0: float, z1: float) -> list[Point]:
    return [(x0, z0), (x1, z0), (x1, z1), (x0, z1)]


def paint_car(layer: Image.Image, view: View, car: Car, lamps_on: bool) -> tuple[Point, Point, Point, Point] | None:
    """Draw the car; return the corners of its plate if the plate faces the camera."""
    draw = ImageDraw.Draw(layer)
    hw, length = car.width / 2, car.length

    def fill(points: Sequence[Vec], colour: tuple[int, int, int, int]) -> None:
        draw.polygon(view.poly(points), fill=colour)

    tyre = (24, 24, 26, 255)
    wheel_z = (0.85, length - 0.95)
    for side in (-1, 1):
        for wz in wheel_z:
            x0, x1 = sorted((side * (hw - 0.26), side * (hw - 0.03)))
            for face, normal in _solid(
                car, rectangle(x0, x1, wz - 0.3, wz + 0.3), 0.0, rectangle(x0, x1, wz - 0.3, wz + 0.3), 0.6
            ):
                if _visible(view, face, normal):
                    fill(face, tyre)

    c_rear, c_front = 0.14, 0.3
    foot = [
        (-hw + c_rear, 0.0), (hw - c_rear, 0.0), (hw, c_rear), (hw, length - c_front),
        (hw - c_front, length), (-hw + c_front, length), (-hw, length - c_front), (-hw, c_rear),
    ]  # fmt: skip
    shoulder = [(x * (hw - 0.05) / hw, z) for x, z in foot]
    body = _solid(car, foot, 0.28, shoulder, 0.96)
    for face, normal in body:
        if _visible(view, face, normal):
            fill(face, shade(car.colour, normal))
    # Faces follow the footprint: 0 rear, 2 right side, 4 front, 6 left side.
    rear_visible, front_visible = _visible(view, *body[0]), _visible(view, *body[4])

    for side in (-1, 1):
        side_face = body[2] if side > 0 else body[6]
        if not _visible(view, *side_face):
            continue
        for wz in wheel_z:
            for radius, colour in ((0.33, tyre), (0.21, (168, 170, 176, 255)), (0.07, (60, 60, 64, 255))):
                ring = [
                    car.world(side * (hw + 0.01), 0.33 + radius * math.sin(a), wz + radius * math.cos(a))
                    for a in np.linspace(0, 2 * math.pi, 24, endpoint=False)
                ]
                fill(ring, colour)

    plate: tuple[Point, Point, Point, Point] | None = None
    if rear_visible:
        plate = _paint_rear(layer, view, car, lamps_on)
    if front_visible:
        plate = _paint_front(layer, view, car)

    glass = (44, 52, 62)
    cabin = _solid(
        car,
        rectangle(-hw + 0.1, hw - 0.1, 1.0, length - 1.5),
        0.96,
        rectangle(-hw + 0.27, hw - 0.27, 1.5, length - 2.3),
        1.46,
    )

    def paint_mirror(side: int) -> None:
        x0, x1 = sorted((side * (hw - 0.02), side * (hw + 0.14)))
        mirror = rectangle(x0, x1, length - 1.6, length - 1.5)
        for face, normal in _solid(car, mirror, 0.94, mirror, 1.05):
            if _visible(view, face, normal):
                fill(face, shade(car.colour, normal, 0.75))

    # A door mirror is hidden by the cabin unless its side of the cabin faces the camera.
    for side in (-1, 1):
        if not _visible(view, *cabin[1 if side > 0 else 3]):
            paint_mirror(side)
    for i, (face, normal) in enumerate(cabin):
        if not _visible(view, face, normal):
            continue
        fill(face, shade(car.colour, normal))
        if i in (0, 1, 2, 3):  # rear window, sides, windscreen
            pane = _shrink(face, 0.86 if i in (0, 2) else 0.9, 0.78)
            fill(pane, shade(glass, normal, 1.15))
            top = _shrink(pane, 0.98, 0.5)
            fill([top[0], top[1], pane[2], pane[3]], shade((78, 90, 104), normal, 1.1))
            if i in (1, 3):  # the B pillar
                pillar = [_lerp(pane[0], pane[1], 0.46), _lerp(pane[0], pane[1], 0.54)]
                pillar += [_lerp(pane[3], pane[2], 0.54), _lerp(pane[3], pane[2], 0.46)]
                fill(pillar, shade(car.colour, normal, 0.8))
            if i == 0:  # third brake lamp
                p0, p1 = pane[3], pane[2]
                bar = [_lerp(p0, p1, 0.38), _lerp(p0, p1, 0.62)]
                fill([bar[0], bar[1], _lower(bar[1], 0.03), _lower(bar[0], 0.03)], (150, 20, 24, 255))
    for side in (-1, 1):
        if _visible(view, *cabin[1 if side > 0 else 3]):
            paint_mirror(side)
    return plate


def _lerp(a: Vec, b: Vec, t: float) -> Vec:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def _lower(p: Vec, dy: float) -> Vec:
    return (p[0], p[1] - dy, p[2])


def _paint_rear(layer: Image.Image, view: View, car: Car, lamps_on: bool) -> tuple[Point, Point, Point, Point]:
    draw = ImageDraw.Draw(layer)
    hw = car.width / 2
    z = -0.004

    def quad(x0: float, x1: float, y0: float, y1: float, colour: tuple[int, int, int, int]) -> None:
        pts = [car.world(x0, y1, z), car.world(x1, y1, z), car.world(x1, y0, z), car.world(x0, y0, z)]
        draw.polygon(view.poly(pts), fill=colour)

    quad(-hw + 0.12, hw - 0.12, 0.28, 0.37, (30, 30, 32, 255))  # lower valance
    for side in (-1, 1):
        outer, inner = side * (hw - 0.15), side * (hw - 0.52)
        x0, x1 = sorted((outer, inner))
        quad(x0, x1, 0.7, 0.86, (150, 18, 22, 255))
        quad(x0 + 0.02, x1 - 0.02, 0.73, 0.83, (206, 34, 38, 255))
        ax0, ax1 = sorted((inner, inner + side * 0.13))
        quad(ax0, ax1, 0.73, 0.83, (255, 176, 40, 255) if lamps_on else (170, 120, 70, 255))
        rx0, rx1 = sorted((side * (hw - 0.2), side * (hw - 0.36)))
        quad(rx0, rx1, 0.31, 0.34, (160, 26, 30, 255))  # bumper reflector
    quad(-0.62, 0.62, 0.905, 0.915, shade(car.colour, (0, 0, -1), 0.6))  # boot-lid gap
    quad(-0.08, 0.08, 0.6, 0.65, (200, 202, 206, 255))  # badge
    if car.damaged_rear:
        for i in range(9):
            x = -hw + 0.2 + 0.05 * i
            quad(x, x + 0.14, 0.4 + 0.015 * (i % 3), 0.41 + 0.015 * (i % 3), (235, 235, 235, 255))
        quad(-hw + 0.15, -hw + 0.45, 0.58, 0.62, shade(car.colour, (0, 0, -1), 0.55))  # dent
    lay = layout_for(car.plate)
    pw, ph = lay.width_mm / 1000, lay.height_mm / 1000
    y0 = 0.39
    corners3 = [
        car.world(-pw / 2, y0 + ph, z - 0.004),
        car.world(pw / 2, y0 + ph, z - 0.004),
        car.world(pw / 2, y0, z - 0.004),
        car.world(-pw / 2, y0, z - 0.004),
    ]
    corners = view.poly(corners3)
    _paste_plate(layer, car.plate, corners)
    return (corners[0], corners[1], corners[2], corners[3])


def _paint_front(layer: Image.Image, view: View, car: Car) -> tuple[Point, Point, Point, Point]:
    draw = ImageDraw.Draw(layer)
    hw, z = car.width / 2, car.length + 0.004

    def quad(x0: float, x1: float, y0: float, y1: float, colour: tuple[int, int, int, int]) -> None:
        pts = [car.world(x1, y1, z), car.world(x0, y1, z), car.world(x0, y0, z), car.world(x1, y0, z)]
        draw.polygon(view.poly(pts), fill=colour)

    quad(-0.45, 0.45, 0.5, 0.7, (26, 27, 30, 255))  # grille
    for side in (-1, 1):
        x0, x1 = sorted((side * (hw - 0.3), side * (hw - 0.62)))
        quad(x0, x1, 0.72, 0.84, (236, 240, 250, 255))
        quad(x0, x1, 0.36, 0.4, (250, 250, 240, 255))  # daytime running lamp
    quad(-hw + 0.3, hw - 0.3, 0.28, 0.34, (30, 30, 32, 255))
    pw, ph = 0.44, 0.14
    y0 = 0.34
    corners3 = [
        car.world(pw / 2, y0 + ph, z + 0.004),
        car.world(-pw / 2, y0 + ph, z + 0.004),
        car.world(-pw / 2, y0, z + 0.004),
        car.world(pw / 2, y0, z + 0.004),
    ]
    corners = view.poly(corners3)
    _paste_plate(layer, car.plate, corners)
    return (corners[0], corners[1], corners[2], corners[3])


def _paste_plate(layer: Image.Image, text: str, corners: Sequence[Point]) -> None:
    """Warp the plate artwork onto its four image corners (clockwise from top-left)."""
    width = max(math.dist(corners[0], corners[1]), math.dist(corners[3], corners[2]))
    lay = layout_for(text)
    art = render_plate(text, px_per_mm=min(4.0, max(0.5, 2 * width / lay.width_mm)))
    tw, th = max(8, round(width)), max(3, round(width * lay.height_mm / lay.width_mm))
    art = art.resize((tw, th), Image.Resampling.LANCZOS)
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    x0, y0 = math.floor(min(xs)), math.floor(min(ys))
    x1, y1 = math.ceil(max(xs)), math.ceil(max(ys))
    local = [(x - x0, y - y0) for x, y in corners]
    coeffs = perspective_coeffs(local, [(0, 0), (tw, 0), (tw, th), (0, th)])
    patch = art.transform((x1 - x0, y1 - y0), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)
    layer.alpha_composite(patch, (x0, y0))
