"""A frame number stamped into each frame, which a test or benchmark reads back from what arrived.

Video that went through VP8, JPEG or a browser keeps no frame numbers of its own; the counter lets
the receiving end tell which frame it got, and so measure delay and loss.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from device.sim.plates import cjk_font
from device.sim.scene.frames import Image8

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
