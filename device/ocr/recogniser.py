"""Reading one straightened plate: CTC over the recogniser's columns, then the plate grammar.

The recogniser gives, for each of its 32 columns, a probability per character (and blank), and a
colour. Greedy CTC decoding keeps each run of one character once; the column where that character
was most certain gives the position's full distribution, and ``protocol.plates.best_valid`` picks
the most probable text the grammar allows for that colour (or any colour, if the colour head was
wrong). A read no plate can carry gives None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from device.ocr.errors import ModelError
from device.ocr.geometry import REC_H, REC_W
from device.ocr.runtime import TfliteModel
from protocol.plates import ALPHABET, PlateForm, PlateKind, best_valid

KINDS = list(PlateKind)  # the colour head's classes, in the order training used
BLANK = len(ALPHABET)


@dataclass(frozen=True)
class TextRead:
    text: str
    char_confidences: tuple[float, ...]
    confidence: float  # the product of the characters' confidences
    kind: PlateKind
    form: PlateForm


def ctc_positions(probs: NDArray[np.float32]) -> list[NDArray[np.float32]]:
    """One distribution per read character: greedy CTC runs, each at its most certain column."""
    best = probs.argmax(axis=1)
    rows = []
    t = 0
    while t < len(best):
        c = best[t]
        end = t
        while end + 1 < len(best) and best[end + 1] == c:
            end += 1
        if c != BLANK:
            rows.append(probs[t + int(np.argmax(probs[t : end + 1, c]))])
        t = end + 1
    return rows


class Recogniser:
    def __init__(self, path: Path, threads: int = 1) -> None:
        self.model = TfliteModel(path, threads)
        shapes = self.model.output_shapes()
        if self.model.input_shape != (1, REC_H, REC_W, 3) or sorted(len(s) for s in shapes) != [1, 2]:
            raise ModelError(f"{path} is not a plate recogniser (input {self.model.input_shape}, outputs {shapes})")
        self._chars = next(i for i, s in enumerate(shapes) if len(s) == 2)
        if shapes[self._chars][1] != BLANK + 1 or shapes[1 - self._chars] != (len(KINDS),):
            raise ModelError(f"{path} was trained for another alphabet or colours ({shapes})")

    def read(self, crop: NDArray[np.uint8]) -> TextRead | None:
        outputs = self.model.run(crop)
        probs, colours = outputs[self._chars], outputs[1 - self._chars]
        rows = [row.tolist() for row in ctc_positions(probs)]
        colour = KINDS[int(colours.argmax())]
        read = best_valid(rows, colour) or best_valid(rows)
        if read is None:
            return None
        kind = colour if colour in read.form.kinds else read.form.kinds[0]
        return TextRead(read.text, read.char_confidences, math.prod(read.char_confidences), kind, read.form)
