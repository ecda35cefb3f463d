"""The walker on the zebra crossing: something that moves, so a frozen video is noticed."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from device.sim.scene.projection import Rgb, View, rgba


def paint_pedestrian(layer: Image.Image, view: View, x: float, z: float, phase: float, heading: int) -> None:
    """A walker in profile on the zebra crossing; ``phase`` turns once per stride."""
    draw = ImageDraw.Draw(layer)
    swing = 0.42 * math.sin(phase)

    def limb(top: tuple[float, float], length: float, angle: float, width: float, colour: Rgb) -> None:
        tx, ty = top
        bx, by = tx + heading * length * math.sin(angle), ty - length * math.cos(angle)
        dx = width / 2
        draw.polygon(
            view.poly([(x + tx - dx, ty, z), (x + tx + dx, ty, z), (x + bx + dx, by, z), (x + bx - dx, by, z)]),
            fill=rgba(colour),
        )

    limb((0.0, 0.95), 0.82, -swing, 0.14, (40, 44, 60))
    limb((0.0, 0.95), 0.82, swing, 0.14, (52, 56, 74))
    limb((0.0, 1.42), 0.6, swing * 0.8, 0.09, (150, 60, 50))
    draw.polygon(
        view.poly([(x - 0.16, 0.9, z), (x + 0.16, 0.9, z), (x + 0.14, 1.48, z), (x - 0.14, 1.48, z)]),
        fill=rgba((176, 64, 52)),
    )
    limb((0.0, 1.42), 0.6, -swing * 0.8, 0.09, (190, 80, 64))
    hx, hy = view.pt((x, 1.6, z))
    r = view.f * 0.11 / z
    draw.ellipse((hx - r, hy - r * 1.15, hx + r, hy + r * 1.15), fill=rgba((214, 176, 150)))
    draw.chord((hx - r, hy - r * 1.2, hx + r, hy + r * 1.1), 180, 360, fill=rgba((30, 26, 24)))
