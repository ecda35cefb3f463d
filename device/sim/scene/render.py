"""One crash scene as video: the static parts drawn once, the moving ones and the noise per frame.

A frame must cost little (15 fps on one core), hence the cached lamp-on and lamp-off layers and the
sprites that redraw only what moves.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

from device.sim.plates import PlateKind, plate_kind, random_plate
from device.sim.scene.cars import BODY_COLOURS, Car, paint_car, rectangle
from device.sim.scene.counter import stamp_frame_counter
from device.sim.scene.frames import Image8, PlateTruth, RenderedFrame, Role, covers, inside, moved, plate_truth
from device.sim.scene.pedestrian import paint_pedestrian
from device.sim.scene.projection import Point, Vec, View
from device.sim.scene.street import KERB_L, KERB_R, ZEBRA_Z, Street, paint_street

SUPERSAMPLE = 2
FLASHER_HZ = 1.5  # hazard lamps, per UN R48
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
        self._view = View(
            f=FOCAL * height,
            cx=self._margin + width / 2,
            cy=self._margin + HORIZON * height,
            cam_x=rng.uniform(-0.15, 0.15),
            cam_h=rng.uniform(1.5, 1.65),
        )
        striking_colour, struck_colour = rng.sample(BODY_COLOURS, 2)
        striking_z = rng.uniform(6.8, 7.6)
        self.struck = Car(
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
        self.striking = Car(
            x=rng.uniform(-0.7, -0.45),
            z=striking_z,
            yaw=rng.uniform(0.02, 0.06),
            colour=striking_colour,
            plate=random_plate(rng, PlateKind.BLUE),
            role=Role.STRIKING,
        )
        self._street = Street.plan(rng)
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
                corners=moved(p.corners, -ox, -oy),
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
            paint_street(big, self._view.scaled(SUPERSAMPLE), self._street)
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
            footprint = rectangle(-hw, hw, -0.15, car.length + 0.1)
            ImageDraw.Draw(shadow).polygon(self._view.poly([car.world(x, 0.0, z) for x, z in footprint]), fill=150)
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
            plate = paint_car(layer, view, car, lamps_on)
            if plate is not None:
                corners[car.role] = plate
            masks.append((car, np.asarray(layer.getchannel("A")) > 0))
            fg.alpha_composite(layer)
        truths = []
        for i, (car, _) in enumerate(masks):
            quad = corners.get(car.role)
            if quad is None or any(covers(mask, quad) for _, mask in masks[i + 1 :]):
                continue
            truth = plate_truth(car.plate, car.role, tuple((x / SUPERSAMPLE, y / SUPERSAMPLE) for x, y in quad))
            if truth is not None and inside(truth.box, self._canvas_size()):
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
            car = Car(
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
            lambda img, view: paint_pedestrian(img, view, x, z, phase, -1),
        )  # fmt: skip
        return None

    def _passing(self, car: Car, out: Image8, layers: _Layers, ox: int, oy: int) -> PlateTruth | None:
        """An oncoming car; its plate if it can be read and nothing hides it."""
        front = car.z - car.length
        quad = self._sprite(
            out, layers, ox, oy, (car.x - 1.4, 0.0, front), (car.x + 1.4, 1.6, car.z),
            lambda img, view: paint_car(img, view, car, False),
        )  # fmt: skip
        if quad is None:
            return None
        truth = plate_truth(car.plate, Role.PASSING, moved(quad, -ox, -oy))
        if truth is None or not inside(truth.box, (self.width, self.height)):
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
        paint: Callable[[Image.Image, View], tuple[Point, Point, Point, Point] | None],
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
        return moved([(x / s, y / s) for x, y in result], x0, y0)

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
