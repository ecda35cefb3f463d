"""What the simulated camera sees: a street in Kunming just after a minor rear-end crash.

The demo, the dispatcher console, the plate reader and the browser tests all need a picture a
real camera could have taken, with two readable plates, and they need to know exactly where those
plates are, which no photograph can tell them. So the scene is laid out in metres and projected
through a pinhole camera: one seed gives the same street, cars and plates at any resolution, the
640x480 video and the 2028x1520 still alike, and every plate's corners come out of the same
projection that drew it.

A frame must cost little (15 fps on one core), so everything that does not move is drawn once per
scene, supersampled and in two variants (hazard lamps on and off); a frame copies one of them
through a slightly shaken crop, draws the few moving things (a pedestrian, an oncoming car),
adds sensor noise and stamps a frame counter that ``read_frame_counter`` reads back.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

from device.ocr.geometry import perspective_coeffs
from device.sim.plates import PlateKind, cjk_font, layout_for, plate_kind, random_plate, render_plate

Rgb = tuple[int, int, int]
Vec = tuple[float, float, float]
Point = tuple[float, float]
Image8 = NDArray[np.uint8]

SUPERSAMPLE = 2
FLASHER_HZ = 1.5  # hazard lamps, per UN R48
LIGHT = (-0.35, 0.85, -0.40)  # towards the sun: high, behind the camera, a little to the left
BODY_COLOURS: tuple[Rgb, ...] = (
    (176, 28, 34),  # red
    (28, 58, 118),  # dark blue
    (36, 37, 41),  # black
    (190, 193, 198),  # silver
    (236, 236, 232),  # white
    (92, 96, 104),  # grey
)


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


# --- projection --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _View:
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

    def scaled(self, s: float) -> _View:
        return replace(self, f=self.f * s, cx=self.cx * s, cy=self.cy * s)

    def shifted(self, dx: float, dy: float) -> _View:
        return replace(self, cx=self.cx + dx, cy=self.cy + dy)

    @property
    def eye(self) -> Vec:
        return (self.cam_x, self.cam_h, 0.0)


def _sub(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _centroid(points: Sequence[Vec]) -> Vec:
    n = len(points)
    return (sum(p[0] for p in points) / n, sum(p[1] for p in points) / n, sum(p[2] for p in points) / n)


def _shade(colour: Rgb, normal: Vec, gain: float = 1.0) -> tuple[int, int, int, int]:
    length = math.sqrt(_dot(normal, normal)) or 1.0
    light = math.sqrt(_dot(LIGHT, LIGHT))
    k = (0.58 + 0.47 * max(0.0, _dot(normal, LIGHT) / (length * light))) * gain
    r, g, b = (min(255, round(c * k)) for c in colour)
    return (r, g, b, 255)


def _rgba(colour: Rgb) -> tuple[int, int, int, int]:
    return (*colour, 255)


# --- cars --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Car:
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
    car: _Car, bottom: Sequence[Point], y0: float, top: Sequence[Point], y1: float
) -> list[tuple[list[Vec], Vec]]:
    """Faces (polygon, outward normal) of a solid between two footprints given as (x, z)."""
    lo = [car.world(x, y0, z) for x, z in bottom]
    hi = [car.world(x, y1, z) for x, z in top]
    centre = _centroid(lo + hi)
    faces = [[lo[i], lo[(i + 1) % len(lo)], hi[(i + 1) % len(hi)], hi[i]] for i in range(len(lo))]
    faces += [hi[::-1], lo]
    out = []
    for face in faces:
        n = _cross(_sub(face[1], face[0]), _sub(face[-1], face[0]))
        if _dot(n, _sub(_centroid(face), centre)) < 0:
            n = (-n[0], -n[1], -n[2])
        out.append((face, n))
    return out


def _visible(view: _View, face: Sequence[Vec], normal: Vec) -> bool:
    return _dot(normal, _sub(view.eye, face[0])) > 0


def _shrink(face: Sequence[Vec], kx: float, ky: float) -> list[Vec]:
    """The face pulled towards its centre: ``kx`` horizontally, ``ky`` vertically."""
    c = _centroid(face)
    return [(c[0] + (p[0] - c[0]) * kx, c[1] + (p[1] - c[1]) * ky, c[2] + (p[2] - c[2]) * kx) for p in face]


def _box(x0: float, x1: float, z0: float, z1: float) -> list[Point]:
    return [(x0, z0), (x1, z0), (x1, z1), (x0, z1)]


def _paint_car(layer: Image.Image, view: _View, car: _Car, lamps_on: bool) -> tuple[Point, Point, Point, Point] | None:
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
                car, _box(x0, x1, wz - 0.3, wz + 0.3), 0.0, _box(x0, x1, wz - 0.3, wz + 0.3), 0.6
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
            fill(face, _shade(car.colour, normal))
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
        _box(-hw + 0.1, hw - 0.1, 1.0, length - 1.5),
        0.96,
        _box(-hw + 0.27, hw - 0.27, 1.5, length - 2.3),
        1.46,
    )

    def paint_mirror(side: int) -> None:
        x0, x1 = sorted((side * (hw - 0.02), side * (hw + 0.14)))
        mirror = _box(x0, x1, length - 1.6, length - 1.5)
        for face, normal in _solid(car, mirror, 0.94, mirror, 1.05):
            if _visible(view, face, normal):
                fill(face, _shade(car.colour, normal, 0.75))

    # A door mirror is hidden by the cabin unless its side of the cabin faces the camera.
    for side in (-1, 1):
        if not _visible(view, *cabin[1 if side > 0 else 3]):
            paint_mirror(side)
    for i, (face, normal) in enumerate(cabin):
        if not _visible(view, face, normal):
            continue
        fill(face, _shade(car.colour, normal))
        if i in (0, 1, 2, 3):  # rear window, sides, windscreen
            pane = _shrink(face, 0.86 if i in (0, 2) else 0.9, 0.78)
            fill(pane, _shade(glass, normal, 1.15))
            top = _shrink(pane, 0.98, 0.5)
            fill([top[0], top[1], pane[2], pane[3]], _shade((78, 90, 104), normal, 1.1))
            if i in (1, 3):  # the B pillar
                pillar = [_lerp(pane[0], pane[1], 0.46), _lerp(pane[0], pane[1], 0.54)]
                pillar += [_lerp(pane[3], pane[2], 0.54), _lerp(pane[3], pane[2], 0.46)]
                fill(pillar, _shade(car.colour, normal, 0.8))
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


def _paint_rear(layer: Image.Image, view: _View, car: _Car, lamps_on: bool) -> tuple[Point, Point, Point, Point]:
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
    quad(-0.62, 0.62, 0.905, 0.915, _shade(car.colour, (0, 0, -1), 0.6))  # boot-lid gap
    quad(-0.08, 0.08, 0.6, 0.65, (200, 202, 206, 255))  # badge
    if car.damaged_rear:
        for i in range(9):
            x = -hw + 0.2 + 0.05 * i
            quad(x, x + 0.14, 0.4 + 0.015 * (i % 3), 0.41 + 0.015 * (i % 3), (235, 235, 235, 255))
        quad(-hw + 0.15, -hw + 0.45, 0.58, 0.62, _shade(car.colour, (0, 0, -1), 0.55))  # dent
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


def _paint_front(layer: Image.Image, view: _View, car: _Car) -> tuple[Point, Point, Point, Point]:
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


# --- the street --------------------------------------------------------------------------------

# Cross-section of the street, metres from the camera's lane origin (X grows to the right).
KERB_R, PAVE_R, BUILD_R = 2.5, 7.5, 8.0
LANE_LINE, CENTRE, ONCOMING_LINE = -1.0, -4.5, -8.0
KERB_L, PAVE_L, BUILD_L = -11.5, -15.5, -16.5
ZEBRA_Z = (62.0, 68.0)
NEAR_Z, FAR_Z = 1.5, 900.0


@dataclass(frozen=True)
class _Building:
    z0: float
    z1: float
    height: float
    setback: float
    colour: Rgb
    shop: Rgb | None  # colour of the shop sign band on the ground floor, if any


@dataclass(frozen=True)
class _Tree:
    x: float
    z: float
    size: float


@dataclass
class _Street:
    """The random choices behind the street, made once from the seed, in metres."""

    right: list[_Building] = field(default_factory=list)
    left: list[_Building] = field(default_factory=list)
    trees: list[_Tree] = field(default_factory=list)
    hills: list[float] = field(default_factory=list)

    @classmethod
    def plan(cls, rng: random.Random) -> _Street:
        street = cls()
        facades = ((236, 228, 210), (214, 214, 210), (232, 220, 190), (198, 178, 160), (226, 232, 236), (188, 196, 204))
        shops = ((178, 36, 36), (30, 90, 170), (40, 128, 72), (230, 150, 30))
        for side, start in ((street.right, 22.0), (street.left, 40.0)):
            z = start + rng.uniform(0, 6)
            while z < 520:
                depth = rng.uniform(14, 34)
                side.append(
                    _Building(
                        z0=z,
                        z1=z + depth,
                        height=rng.uniform(10, 42),
                        setback=rng.uniform(0, 3),
                        colour=rng.choice(facades),
                        shop=rng.choice(shops) if rng.random() < 0.6 else None,
                    )
                )
                z += depth + rng.uniform(0, 3)
        for x, start in ((3.4, 26.0), (-12.6, 30.0)):
            z = start
            while z < 260:
                street.trees.append(_Tree(x + rng.uniform(-0.2, 0.2), z + rng.uniform(-2, 2), rng.uniform(0.85, 1.15)))
                z += 11
        street.hills = [rng.uniform(0, 1) for _ in range(24)]
        return street


def _ground(x0: float, x1: float, z0: float, z1: float, y: float = 0.0) -> list[Vec]:
    return [(x0, y, z0), (x1, y, z0), (x1, y, z1), (x0, y, z1)]


def _paint_street(img: Image.Image, view: _View, street: _Street) -> None:
    draw = ImageDraw.Draw(img)
    w, h = img.size

    def poly(points: Sequence[Vec], colour: Rgb) -> None:
        draw.polygon(view.poly(points), fill=colour)

    sky = np.linspace(0.0, 1.0, h)[:, None] ** 0.8
    top, bottom = np.array([118, 160, 210]), np.array([214, 226, 236])
    column = (top + (bottom - top) * sky).astype(np.uint8)[:, None, :]
    img.paste(Image.fromarray(column).resize((w, h), Image.Resampling.NEAREST))
    ridge = [(x, view.cy - view.f * (0.004 + 0.01 * _smooth(street.hills, x / w))) for x in range(0, w + 8, 8)]
    draw.polygon([*ridge, (w, view.cy + 2), (0, view.cy + 2)], fill=(176, 190, 204))

    poly(_ground(KERB_L, KERB_R, NEAR_Z, FAR_Z), (86, 88, 92))
    for x in (-0.1, 1.7, -3.6, -1.9, -10.6, -8.8, -7.1, -5.3):
        poly(_ground(x - 0.3, x + 0.3, NEAR_Z, FAR_Z), (80, 82, 86))  # darker wheel tracks
    for kerb, pave, facing in ((KERB_R, PAVE_R, -1), (KERB_L, PAVE_L, 1)):
        lo, hi = sorted((kerb, pave))
        poly(_ground(lo, hi, NEAR_Z, FAR_Z, 0.15), (172, 162, 150))
        stone = sorted((kerb, kerb - facing * 0.18))
        poly(_ground(stone[0], stone[1], NEAR_Z, FAR_Z, 0.15), (206, 204, 196))
        poly([(kerb, 0.0, NEAR_Z), (kerb, 0.0, FAR_Z), (kerb, 0.15, FAR_Z), (kerb, 0.15, NEAR_Z)], (150, 150, 146))
        z = 3.0
        while z < 80:  # paving joints
            poly(_ground(lo, hi, z, z + 0.03, 0.151), (150, 142, 132))
            z += 1.0
    white, yellow = (228, 228, 222), (226, 180, 40)
    for x in (CENTRE - 0.12, CENTRE + 0.12):
        poly(_ground(x - 0.075, x + 0.075, NEAR_Z, FAR_Z, 0.001), yellow)
    for x in (LANE_LINE, ONCOMING_LINE):
        z = 2.0
        while z < FAR_Z:
            if not ZEBRA_Z[0] - 3 < z < ZEBRA_Z[1]:
                poly(_ground(x - 0.075, x + 0.075, z, z + 6, 0.001), white)
            z += 15
    x = KERB_L + 0.5
    while x < KERB_R - 0.4:
        poly(_ground(x, x + 0.45, *ZEBRA_Z, 0.001), white)
        x += 0.9
    poly(_ground(CENTRE + 0.2, KERB_R - 0.2, ZEBRA_Z[0] - 3.3, ZEBRA_Z[0] - 3.0, 0.001), white)

    # Buildings stand behind everything else on the pavements; the rest goes far to near.
    things: list[tuple[float, Callable[[], None]]] = []
    for b in street.right:
        things.append((b.z0 + 1000, partial(_paint_building, draw, view, b, BUILD_R + b.setback, 1)))
    for b in street.left:
        things.append((b.z0 + 1000, partial(_paint_building, draw, view, b, BUILD_L - b.setback, -1)))
    for t in street.trees:
        things.append((t.z, partial(_paint_tree, draw, view, t)))
    for z in range(20, 260, 33):
        things.append((float(z), partial(_paint_lamp, draw, view, KERB_R + 0.35, float(z), -1)))
        things.append((z + 15.0, partial(_paint_lamp, draw, view, KERB_L - 0.35, z + 15.0, 1)))
    things.append((31.5, partial(_paint_sign, img, view, 3.2, 31.5)))
    for _, paint in sorted(things, key=lambda item: -item[0]):
        paint()


def _smooth(values: Sequence[float], t: float) -> float:
    """A smooth curve through ``values`` spread over 0..1 (cosine interpolation)."""
    pos = t * (len(values) - 1)
    i = min(int(pos), len(values) - 2)
    k = (1 - math.cos((pos - i) * math.pi)) / 2
    return values[i] * (1 - k) + values[i + 1] * k


def _paint_building(draw: ImageDraw.ImageDraw, view: _View, b: _Building, x: float, side: int) -> None:
    """A block along the street: its facade towards the road and its end wall towards the camera."""
    depth = 20.0
    facade = [(x, 0.0, b.z0), (x, 0.0, b.z1), (x, b.height, b.z1), (x, b.height, b.z0)]
    end = [(x, 0.0, b.z0), (x + side * depth, 0.0, b.z0), (x + side * depth, b.height, b.z0), (x, b.height, b.z0)]
    draw.polygon(view.poly(end), fill=_dim(b.colour, 0.93))
    draw.polygon(view.poly(facade), fill=_dim(b.colour, 0.8))
    glass = (92, 108, 126)
    px_per_m = view.f / b.z1
    if px_per_m * 1.6 < 1.5:
        return
    floor = 4.2
    while floor + 1.7 < b.height:
        z = b.z0 + 1.2
        while z + 1.8 < b.z1:
            draw.polygon(
                view.poly([(x, floor, z), (x, floor, z + 1.8), (x, floor + 1.6, z + 1.8), (x, floor + 1.6, z)]),
                fill=glass,
            )
            z += 3.6
        off = 1.5
        while off + 1.8 < depth:
            wx = x + side * off
            draw.polygon(
                view.poly(
                    [
                        (wx, floor, b.z0),
                        (wx + side * 1.8, floor, b.z0),
                        (wx + side * 1.8, floor + 1.6, b.z0),
                        (wx, floor + 1.6, b.z0),
                    ]
                ),
                fill=_dim(glass, 1.1),
            )
            off += 3.6
        floor += 3.2
    if b.shop is not None:
        draw.polygon(
            view.poly([(x, 0.3, b.z0 + 0.5), (x, 0.3, b.z1 - 0.5), (x, 2.8, b.z1 - 0.5), (x, 2.8, b.z0 + 0.5)]),
            fill=(70, 80, 88),
        )
        draw.polygon(
            view.poly([(x, 3.0, b.z0 + 0.3), (x, 3.0, b.z1 - 0.3), (x, 3.8, b.z1 - 0.3), (x, 3.8, b.z0 + 0.3)]),
            fill=b.shop,
        )


def _dim(colour: Rgb, k: float) -> Rgb:
    r, g, b = (min(255, round(c * k)) for c in colour)
    return (r, g, b)


def _paint_tree(draw: ImageDraw.ImageDraw, view: _View, tree: _Tree) -> None:
    s = tree.size
    draw.polygon(
        view.poly(
            [
                (tree.x - 0.12, 0.15, tree.z),
                (tree.x + 0.12, 0.15, tree.z),
                (tree.x + 0.1, 3.4 * s, tree.z),
                (tree.x - 0.1, 3.4 * s, tree.z),
            ]
        ),
        fill=(92, 74, 58),
    )
    for dx, dy, r, colour in (
        (0.0, 4.0, 1.7, (50, 88, 46)), (-0.9, 4.6, 1.2, (58, 100, 52)), (0.9, 4.7, 1.25, (62, 106, 54)),
        (0.0, 5.5, 1.3, (74, 122, 62)), (-0.4, 5.0, 0.8, (92, 138, 70)), (0.5, 5.9, 0.7, (100, 146, 76)),
    ):  # fmt: skip
        cx, cy = view.pt((tree.x + dx * s, dy * s, tree.z))
        rad = view.f * r * s / tree.z
        draw.ellipse((cx - rad, cy - rad * 0.9, cx + rad, cy + rad * 0.9), fill=colour)


def _paint_lamp(draw: ImageDraw.ImageDraw, view: _View, x: float, z: float, towards: int) -> None:
    grey = (112, 116, 120)
    draw.polygon(
        view.poly([(x - 0.07, 0.15, z), (x + 0.07, 0.15, z), (x + 0.05, 8.0, z), (x - 0.05, 8.0, z)]), fill=grey
    )
    arm = [(x, 7.9, z), (x + towards * 2.2, 8.2, z), (x + towards * 2.2, 8.32, z), (x, 8.05, z)]
    draw.polygon(view.poly(arm), fill=grey)
    head = [
        (x + towards * 1.7, 8.0, z),
        (x + towards * 2.5, 8.12, z),
        (x + towards * 2.5, 8.3, z),
        (x + towards * 1.7, 8.2, z),
    ]
    draw.polygon(view.poly(head), fill=(70, 72, 76))


def _paint_sign(img: Image.Image, view: _View, x: float, z: float) -> None:
    """A blue street-name sign facing the traffic, like Kunming's."""
    draw = ImageDraw.Draw(img)
    draw.polygon(
        view.poly([(x - 0.04, 0.15, z), (x + 0.04, 0.15, z), (x + 0.04, 2.2, z), (x - 0.04, 2.2, z)]),
        fill=(120, 124, 128),
    )
    left, top = view.pt((x - 0.7, 2.6, z))
    right, bottom = view.pt((x + 0.7, 1.9, z))
    draw.rectangle(
        (left, top, right, bottom),
        fill=(24, 70, 160),
        outline=(236, 236, 236),
        width=max(1, round((right - left) / 60)),
    )
    size = max(4, round((bottom - top) * 0.45))
    draw.text(
        ((left + right) / 2, top + (bottom - top) * 0.36),
        "北京路",
        font=cjk_font(size),
        fill=(240, 240, 240),
        anchor="mm",
    )
    small = max(3, round((bottom - top) * 0.2))
    draw.text(
        ((left + right) / 2, top + (bottom - top) * 0.78),
        "BEIJING RD",
        font=cjk_font(small),
        fill=(240, 240, 240),
        anchor="mm",
    )


def _paint_pedestrian(layer: Image.Image, view: _View, x: float, z: float, phase: float, heading: int) -> None:
    """A walker in profile on the zebra crossing; ``phase`` turns once per stride."""
    draw = ImageDraw.Draw(layer)
    swing = 0.42 * math.sin(phase)

    def limb(top: tuple[float, float], length: float, angle: float, width: float, colour: Rgb) -> None:
        tx, ty = top
        bx, by = tx + heading * length * math.sin(angle), ty - length * math.cos(angle)
        dx = width / 2
        draw.polygon(
            view.poly([(x + tx - dx, ty, z), (x + tx + dx, ty, z), (x + bx + dx, by, z), (x + bx - dx, by, z)]),
            fill=_rgba(colour),
        )

    limb((0.0, 0.95), 0.82, -swing, 0.14, (40, 44, 60))
    limb((0.0, 0.95), 0.82, swing, 0.14, (52, 56, 74))
    limb((0.0, 1.42), 0.6, swing * 0.8, 0.09, (150, 60, 50))
    draw.polygon(
        view.poly([(x - 0.16, 0.9, z), (x + 0.16, 0.9, z), (x + 0.14, 1.48, z), (x - 0.14, 1.48, z)]),
        fill=_rgba((176, 64, 52)),
    )
    limb((0.0, 1.42), 0.6, -swing * 0.8, 0.09, (190, 80, 64))
    hx, hy = view.pt((x, 1.6, z))
    r = view.f * 0.11 / z
    draw.ellipse((hx - r, hy - r * 1.15, hx + r, hy + r * 1.15), fill=_rgba((214, 176, 150)))
    draw.chord((hx - r, hy - r * 1.2, hx + r, hy + r * 1.1), 180, 360, fill=_rgba((30, 26, 24)))


# --- the scene ---------------------------------------------------------------------------------

FOCAL = 2.7  # focal length in image heights: a short telephoto, like a phone's 2x lens
HORIZON = 0.34  # the horizon's height in the image, from the top
NOISE_SIGMA = 2.2
MIN_PLATE_PX = 16  # narrower plates are left out of the ground truth: nobody could read them
PEDESTRIAN_PERIOD_S, PEDESTRIAN_CROSSING_S = 24.0, 11.0
TRAFFIC_PERIOD_S, TRAFFIC_START_S, TRAFFIC_SPEED = 12.0, 9.0, 14.0


@dataclass
class _Layers:
    """One lamp state of the static scene on the shake canvas: composited, and the parts to redo."""

    composite: Image8
    fg_premul: NDArray[np.uint16]  # foreground colour times its alpha
    fg_alpha: NDArray[np.uint16]


_Mover = Callable[[Image8, _Layers, int, int], PlateTruth | None]


class Scene:
    """One crash scene; ``render(n)`` gives frame ``n`` of its video, at this scene's size.

    The same seed at another size gives the same scene, so a still is ``Scene(2028, 1520,
    seed=s).render(n, counter=False)``. Not thread-safe: render from one thread.
    """

    def __init__(self, width: int, height: int, *, seed: int = 1, fps: float = 15.0) -> None:
        self.width, self.height, self.seed, self.fps = width, height, seed, fps
        rng = random.Random(seed)
        self._margin = max(2, math.ceil(height * 0.006))
        self._view = _View(
            f=FOCAL * height,
            cx=self._margin + width / 2,
            cy=self._margin + HORIZON * height,
            cam_x=rng.uniform(-0.15, 0.15),
            cam_h=rng.uniform(1.5, 1.65),
        )
        striking_colour, struck_colour = rng.sample(BODY_COLOURS, 2)
        striking_z = rng.uniform(6.8, 7.6)
        self.struck = _Car(
            x=rng.uniform(1.15, 1.35),
            z=striking_z + 4.6 + rng.uniform(0.6, 1.2),
            yaw=rng.uniform(-0.05, 0.0),
            colour=struck_colour,
            plate=random_plate(rng, PlateKind.GREEN),
            role=Role.STRUCK,
            length=4.75,
            width=1.85,
            damaged_rear=True,
        )
        self.striking = _Car(
            x=rng.uniform(-0.7, -0.45),
            z=striking_z,
            yaw=rng.uniform(0.02, 0.06),
            colour=striking_colour,
            plate=random_plate(rng, PlateKind.BLUE),
            role=Role.STRIKING,
        )
        self._street = _Street.plan(rng)
        self._traffic_rng_seed = rng.randrange(2**31)
        self._noise_seed = rng.randrange(2**31)
        self._background: Image8 | None = None
        self._layers: dict[bool, _Layers] = {}
        self._static_plates: tuple[PlateTruth, ...] = ()
        self._noise: list[NDArray[np.int16]] = []

    @property
    def plates(self) -> tuple[tuple[str, PlateKind, Role], ...]:
        """The plates of the two crashed cars: text, kind and role."""
        return tuple(
            (car.plate, plate_kind(car.plate) or PlateKind.BLUE, car.role) for car in (self.struck, self.striking)
        )

    def render(self, number: int, *, counter: bool = True) -> RenderedFrame:
        t = number / self.fps
        dx, dy = self._shake(number)
        ox, oy = self._margin + dx, self._margin + dy
        lamps_on = (t * FLASHER_HZ) % 1.0 < 0.5
        layers = self._static(lamps_on)
        out = layers.composite[oy : oy + self.height, ox : ox + self.width].copy()
        plates = [
            replace(
                p,
                corners=_moved(p.corners, -ox, -oy),
                box=(p.box[0] - ox, p.box[1] - oy, p.box[2] - ox, p.box[3] - oy),
            )
            for p in self._static_plates
        ]
        for _, paint in sorted(self._movers(t), key=lambda item: -item[0]):
            truth = paint(out, layers, ox, oy)
            if truth is not None:
                plates.append(truth)
        self._add_noise(out, number)
        if counter:
            stamp_frame_counter(out, number)
        return RenderedFrame(number=number, image=out, plates=tuple(plates))

    # static layers -----------------------------------------------------------------------------

    def _canvas_size(self, scale: int = 1) -> tuple[int, int]:
        return ((self.width + 2 * self._margin) * scale, (self.height + 2 * self._margin) * scale)

    def _static(self, lamps_on: bool) -> _Layers:
        if lamps_on in self._layers:
            return self._layers[lamps_on]
        if self._background is None:
            big = Image.new("RGB", self._canvas_size(SUPERSAMPLE))
            _paint_street(big, self._view.scaled(SUPERSAMPLE), self._street)
            bg = big.resize(self._canvas_size(), Image.Resampling.LANCZOS)
            grain = np.random.default_rng(self._noise_seed).normal(0, 2.5, (bg.height, bg.width, 1))
            self._background = np.clip(np.asarray(bg, np.float32) + grain, 0, 255).astype(np.uint8)
        fg, truths = self._paint_foreground(lamps_on)
        rgba = np.asarray(fg, np.uint16)
        alpha = rgba[:, :, 3:4]
        premul = rgba[:, :, :3] * alpha
        composite = ((self._background * (255 - alpha) + premul) // 255).astype(np.uint8)
        self._static_plates = truths
        layers = _Layers(composite=composite, fg_premul=premul.astype(np.uint16), fg_alpha=alpha)
        self._layers[lamps_on] = layers
        return layers

    def _paint_foreground(self, lamps_on: bool) -> tuple[Image.Image, tuple[PlateTruth, ...]]:
        """The crashed cars, their shadows and the debris, supersampled then reduced."""
        size = self._canvas_size(SUPERSAMPLE)
        view = self._view.scaled(SUPERSAMPLE)
        # Soft anyway, so drawn and blurred at the final size and only then scaled up.
        shadow = Image.new("L", self._canvas_size(), 0)
        for car in (self.struck, self.striking):
            hw = car.width / 2 + 0.12
            ImageDraw.Draw(shadow).polygon(
                self._view.poly([car.world(x, 0.0, z) for x, z in _box(-hw, hw, -0.15, car.length + 0.1)]), fill=150
            )
        shadow = shadow.filter(ImageFilter.GaussianBlur(self.height * 0.008)).resize(size, Image.Resampling.BILINEAR)
        fg = Image.new("RGBA", size, (0, 0, 0, 0))
        fg.putalpha(shadow)
        rng = random.Random(self.seed)
        debris = ImageDraw.Draw(fg)
        for _ in range(26):
            x, z = rng.uniform(0.4, 1.9), rng.uniform(self.struck.z - 1.3, self.struck.z - 0.2)
            r = rng.uniform(0.02, 0.06)
            colour = rng.choice(((190, 30, 30, 255), (30, 30, 32, 255), (220, 226, 230, 255)))
            debris.polygon(view.poly([(x - r, 0.002, z - r), (x + r, 0.002, z), (x, 0.002, z + r)]), fill=colour)
        corners: dict[Role, tuple[Point, Point, Point, Point]] = {}
        masks = []
        for car in (self.struck, self.striking):
            layer = Image.new("RGBA", size, (0, 0, 0, 0))
            plate = _paint_car(layer, view, car, lamps_on)
            if plate is not None:
                corners[car.role] = plate
            masks.append((car, np.asarray(layer.getchannel("A")) > 0))
            fg.alpha_composite(layer)
        truths = []
        for i, (car, _) in enumerate(masks):
            quad = corners.get(car.role)
            if quad is None or any(_covers(mask, quad) for _, mask in masks[i + 1 :]):
                continue
            truth = _truth(car.plate, car.role, tuple((x / SUPERSAMPLE, y / SUPERSAMPLE) for x, y in quad))
            if truth is not None and _inside(truth.box, self._canvas_size()):
                truths.append(truth)
        return fg.resize(self._canvas_size(), Image.Resampling.LANCZOS), tuple(truths)

    # moving things -----------------------------------------------------------------------------

    def _movers(self, t: float) -> list[tuple[float, _Mover]]:
        """What moves at time ``t``: (distance, painter) for each."""
        movers: list[tuple[float, _Mover]] = []
        walk = t % PEDESTRIAN_PERIOD_S
        if walk < PEDESTRIAN_CROSSING_S:
            x = KERB_R - (KERB_R - KERB_L) * walk / PEDESTRIAN_CROSSING_S
            z = (ZEBRA_Z[0] + ZEBRA_Z[1]) / 2
            movers.append((z, partial(self._walker, x, z, walk * 2 * math.pi * 0.9)))
        drive = (t - TRAFFIC_START_S) % TRAFFIC_PERIOD_S
        front = 150.0 - TRAFFIC_SPEED * drive
        if front > 14.0:
            lap = math.floor((t - TRAFFIC_START_S) / TRAFFIC_PERIOD_S)
            rng = random.Random(self._traffic_rng_seed + lap)
            car = _Car(
                x=(-6.0 if lap % 2 == 0 else -9.6) + 0.9,
                z=front + 4.6,
                yaw=math.pi,
                colour=rng.choice(BODY_COLOURS),
                plate=random_plate(rng, PlateKind.BLUE),
                role=Role.PASSING,
            )
            movers.append((front, partial(self._passing, car)))
        return movers

    def _walker(
        self, x: float, z: float, phase: float, out: Image8, layers: _Layers, ox: int, oy: int
    ) -> PlateTruth | None:
        self._sprite(
            out, layers, ox, oy, (x - 0.6, 0.0, z), (x + 0.6, 1.8, z),
            lambda img, view: _paint_pedestrian(img, view, x, z, phase, -1),
        )  # fmt: skip
        return None

    def _passing(self, car: _Car, out: Image8, layers: _Layers, ox: int, oy: int) -> PlateTruth | None:
        """An oncoming car; its plate if it can be read and nothing hides it."""
        front = car.z - car.length
        quad = self._sprite(
            out, layers, ox, oy, (car.x - 1.4, 0.0, front), (car.x + 1.4, 1.6, car.z),
            lambda img, view: _paint_car(img, view, car, False),
        )  # fmt: skip
        if quad is None:
            return None
        truth = _truth(car.plate, Role.PASSING, _moved(quad, -ox, -oy))
        if truth is None or not _inside(truth.box, (self.width, self.height)):
            return None
        x0, y0, x1, y1 = truth.box
        if x1 - x0 < MIN_PLATE_PX or layers.fg_alpha[y0 + oy : y1 + oy, x0 + ox : x1 + ox].any():
            return None
        return truth

    def _sprite(
        self,
        out: Image8,
        layers: _Layers,
        ox: int,
        oy: int,
        lo: Vec,
        hi: Vec,
        paint: Callable[[Image.Image, _View], tuple[Point, Point, Point, Point] | None],
    ) -> tuple[Point, Point, Point, Point] | None:
        """Draw a moving thing between world corners ``lo`` and ``hi`` behind the foreground.

        Returns what ``paint`` returned (a plate's corners), in canvas pixels.
        """
        xs, ys = zip(
            *(self._view.pt((x, y, z)) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])),
            strict=True,
        )
        x0, y0 = max(ox, math.floor(min(xs)) - 2), max(oy, math.floor(min(ys)) - 2)
        x1, y1 = min(ox + self.width, math.ceil(max(xs)) + 2), min(oy + self.height, math.ceil(max(ys)) + 2)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        s = SUPERSAMPLE
        img = Image.new("RGBA", ((x1 - x0) * s, (y1 - y0) * s), (0, 0, 0, 0))
        result = paint(img, self._view.shifted(-x0, -y0).scaled(s))
        small = np.asarray(img.resize((x1 - x0, y1 - y0), Image.Resampling.BOX), np.uint16)
        assert self._background is not None
        under = self._background[y0:y1, x0:x1].astype(np.uint16)
        a = small[:, :, 3:4]
        under = (under * (255 - a) + small[:, :, :3] * a) // 255
        fa = layers.fg_alpha[y0:y1, x0:x1]
        out[y0 - oy : y1 - oy, x0 - ox : x1 - ox] = (under * (255 - fa) + layers.fg_premul[y0:y1, x0:x1]) // 255
        if result is None:
            return None
        return _moved([(x / s, y / s) for x, y in result], x0, y0)

    # camera ------------------------------------------------------------------------------------

    def _shake(self, number: int) -> tuple[int, int]:
        """A hand-held wobble, a pixel or two, the same for the same frame number."""
        t = number / self.fps
        m = self._margin - 1
        jitter = random.Random(self.seed * 1_000_003 + number)
        dx = (
            0.6 * math.sin(2 * math.pi * 0.37 * t)
            + 0.25 * math.sin(2 * math.pi * 1.3 * t)
            + jitter.uniform(-0.15, 0.15)
        )
        dy = (
            0.5 * math.sin(2 * math.pi * 0.29 * t + 1.0)
            + 0.2 * math.sin(2 * math.pi * 1.7 * t)
            + jitter.uniform(-0.15, 0.15)
        )
        return (max(-m, min(m, round(dx * m))), max(-m, min(m, round(dy * m))))

    def _add_noise(self, out: Image8, number: int) -> None:
        if not self._noise:
            rng = np.random.default_rng(self._noise_seed)
            self._noise = [rng.normal(0, NOISE_SIGMA, (self.height, self.width, 1)).astype(np.int16) for _ in range(4)]
        noisy = out.astype(np.int16)
        noisy += self._noise[number % len(self._noise)]
        np.clip(noisy, 0, 255, out=noisy)
        out[...] = noisy


def _moved(corners: Sequence[Point], dx: float, dy: float) -> tuple[Point, Point, Point, Point]:
    a, b, c, d = ((x + dx, y + dy) for x, y in corners)
    return (a, b, c, d)


def _truth(text: str, role: Role, corners: Sequence[Point]) -> PlateTruth | None:
    kind = plate_kind(text)
    if kind is None:
        return None
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    box = (math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys)))
    return PlateTruth(text=text, kind=kind, role=role, corners=_moved(corners, 0, 0), box=box)


def _inside(box: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    return box[0] >= 0 and box[1] >= 0 and box[2] <= size[0] and box[3] <= size[1]


def _covers(mask: NDArray[np.bool_], quad: Sequence[Point]) -> bool:
    """Whether ``mask`` (a later layer's coverage) touches the polygon ``quad``."""
    h, w = mask.shape
    poly = Image.new("1", (w, h), 0)
    ImageDraw.Draw(poly).polygon(list(quad), fill=1)
    return bool((np.asarray(poly) & mask).any())


# --- frame counter -----------------------------------------------------------------------------

COUNTER_BITS = 16
# Cells in the counter's row: a white and a black guard, the bits (black = 1, most significant
# first), then a black and a white guard. The guards give the decoder its black and white levels.
_CELLS = COUNTER_BITS + 4


_STRIP = _CELLS + 1.5  # width of the block row with its border and margin, in cells
_TEXT = 6.0  # width of the box with the number as text, in cells


def _counter_unit(height: int, width: int) -> float:
    """Cell size: 1/40 of the height, at least 8 px, unless the row would not fit the width."""
    return min(max(8.0, height / 40), width / _STRIP)


def stamp_frame_counter(image: Image8, number: int) -> None:
    """Stamp ``number`` (mod 2**16) in the top-left corner as blocks a decoder reads back, and as text.

    Every length is a multiple of one cell, and the cell a fixed part of the image size, so the
    counter scales with the video and ``read_frame_counter`` finds it from the size alone.
    """
    h, w = image.shape[:2]
    u = _counter_unit(h, w)
    value = number % (1 << COUNTER_BITS)
    bits = [(value >> (COUNTER_BITS - 1 - i)) & 1 for i in range(COUNTER_BITS)]
    cells = [0, 1, *bits, 1, 0]
    with_text = (_STRIP + _TEXT) * u <= w

    def fill(x0: float, y0: float, x1: float, y1: float, level: int) -> None:
        image[round(y0) : round(y1), round(x0) : round(x1)] = level

    fill(0.5 * u, 0.5 * u, (_STRIP + (_TEXT if with_text else 0.0)) * u, 2.5 * u, 0)
    fill(0.7 * u, 0.7 * u, (_STRIP - 0.2) * u, 2.3 * u, 255)
    for i, black in enumerate(cells):
        fill((1.0 + i) * u, 1.0 * u, (2.0 + i) * u, 2.0 * u, 0 if black else 255)
    if not with_text:
        return
    x0, y0, x1, y1 = round(_STRIP * u), round(0.5 * u), round((_STRIP + _TEXT - 0.3) * u), round(2.5 * u)
    text = Image.fromarray(image[y0:y1, x0:x1])
    ImageDraw.Draw(text).text(
        ((x1 - x0) / 2, (y1 - y0) / 2),
        f"{value:05d}",
        font=cjk_font(round(1.35 * u)),
        fill=(255, 255, 255),
        anchor="mm",
    )
    image[y0:y1, x0:x1] = np.asarray(text)


def read_frame_counter(image: NDArray[np.uint8]) -> int | None:
    """The frame number ``stamp_frame_counter`` put in ``image``, or None if there is none.

    Reads images that were JPEG/VP8-compressed or scaled since, down to half size.
    """
    gray = image.astype(np.float32) if image.ndim == 2 else image[:, :, :3].astype(np.float32).mean(axis=2)
    h, w = gray.shape
    # As stamped at this size (or scaled from one where the cell was a fixed part of the
    # image), or from a small image where the cell was the 8 px floor, as is or halved.
    for u in dict.fromkeys((_counter_unit(h, w), h / 40, w / _STRIP, 8.0, 4.0)):
        value = _read_counter(gray, u)
        if value is not None:
            return value
    return None


def _read_counter(gray: NDArray[np.float32], u: float) -> int | None:
    if _STRIP * u > gray.shape[1] or 2.5 * u > gray.shape[0]:
        return None
    r = max(0.5, u * 0.25)
    yc = 1.5 * u
    levels = []
    for i in range(_CELLS):
        xc = (1.5 + i) * u
        patch = gray[round(yc - r) : round(yc + r), round(xc - r) : round(xc + r)]
        levels.append(float(patch.mean()))
    white, black = (levels[0] + levels[-1]) / 2, (levels[1] + levels[-2]) / 2
    if white - black < 80:
        return None
    threshold = (white + black) / 2
    margin = (white - black) / 4
    if min(levels[0], levels[-1]) < threshold + margin or max(levels[1], levels[-2]) > threshold - margin:
        return None
    value = 0
    for level in levels[2:-2]:
        value = (value << 1) | (level < threshold)
    return value
