"""The street behind the crash: road, kerbs, markings, buildings, trees, lamps and a street sign.

It never moves, so a scene draws it once; its random choices are made once from the seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from PIL import Image, ImageDraw

from device.sim.plates import cjk_font
from device.sim.scene.projection import Rgb, Vec, View

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
class Street:
    """The random choices behind the street, made once from the seed, in metres."""

    right: list[_Building] = field(default_factory=list)
    left: list[_Building] = field(default_factory=list)
    trees: list[_Tree] = field(default_factory=list)
    hills: list[float] = field(default_factory=list)

    @classmethod
    def plan(cls, rng: random.Random) -> Street:
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


def paint_street(img: Image.Image, view: View, street: Street) -> None:
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


def _paint_building(draw: ImageDraw.ImageDraw, view: View, b: _Building, x: float, side: int) -> None:
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


def _paint_tree(draw: ImageDraw.ImageDraw, view: View, tree: _Tree) -> None:
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


def _paint_lamp(draw: ImageDraw.ImageDraw, view: View, x: float, z: float, towards: int) -> None:
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


def _paint_sign(img: Image.Image, view: View, x: float, z: float) -> None:
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
