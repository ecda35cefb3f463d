"""Finding faces in a frame, so that a copy given out of the police can blur them.

The model is MediaPipe's BlazeFace "full range" detector (``models/face_detection_full_range_sparse.tflite``,
taken unchanged from the mediapipe 0.10.14 wheel, Apache-2.0: ``models/LICENSE-mediapipe.txt``). It
is small (660 KiB, a few milliseconds a look on one core) and runs on the same TFLite runtime as
the plate reader, so a Pi could run it too; it is trained for faces up to about five metres away.
Its input is 192 x 192: a whole 1280 x 720 frame squeezed into it leaves a face of a bystander
a few pixels wide, so the frame is also looked at in square windows (``windows``) at a few sizes,
and the finds of every look are merged. Scores, anchors and decoding follow MediaPipe's own graph
for this model (``face_detection_full_range.pbtxt``); the score threshold is MediaPipe's default,
not tuned here.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from device.ocr.errors import ModelError
from device.ocr.runtime import load_interpreter

FACE_MODEL = Path(__file__).resolve().parents[2] / "models" / "face_detection_full_range_sparse.tflite"
INPUT = 192
STRIDE = 4  # one anchor per cell of a 48 x 48 grid, fixed size: MediaPipe's SsdAnchorsCalculator for this model
MIN_SCORE = 0.5  # MediaPipe's min_detection_confidence default
SAME_FACE_IOU = 0.3  # MediaPipe's min_suppression_threshold
# The smallest window: a face of about 24 px in the frame is 12 px in the model's input, about the
# smallest its anchors (4 px apart) find. Each size up doubles until a window holds the frame.
WINDOW = 384
RAW_SCORE_LIMIT = 80.0  # MediaPipe clips at 100; exp() of that overflows float32

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels


@dataclass(frozen=True)
class Face:
    box: Box
    score: float


def windows(width: int, height: int, size: int = WINDOW) -> list[tuple[int, int, int]]:
    """Square windows (left, top, side) over the frame, each size overlapping its neighbours by a
    third, doubling until one window holds the whole frame (the last look, padded to a square)."""
    out: list[tuple[int, int, int]] = []
    while size < max(width, height):
        xs, ys = _starts(width, size), _starts(height, size)
        out += [(x, y, size) for y in ys for x in xs]
        size *= 2
    out.append((0, 0, max(width, height)))
    return out


def _starts(length: int, size: int) -> list[int]:
    if length <= size:
        return [0]
    n = math.ceil((length - size) / (size * 2 / 3)) + 1
    return [round(i * (length - size) / (n - 1)) for i in range(n)]


def _iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def merged(found: list[Face]) -> list[Face]:
    """One box per face, best first. Overlapping finds of one face (from neighbouring windows, a
    window that cut it) become their union rather than the best of them: what is blurred must
    cover the face, and a box too large costs nothing but a little more blur."""
    kept: list[Face] = []
    for face in sorted(found, key=lambda f: -f.score):
        for i, k in enumerate(kept):
            if _iou(k.box, face.box) >= SAME_FACE_IOU:
                a, b = k.box, face.box
                kept[i] = Face((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])), k.score)
                break
        else:
            kept.append(face)
    return kept


class FaceDetector:
    """One loaded model; ModelError if it is missing or is not this detector. Not thread-safe
    (TFLite interpreters are not): ``detect`` holds a lock."""

    def __init__(self, path: Path = FACE_MODEL, threads: int = 1) -> None:
        self._it = load_interpreter(path, threads)
        inputs, outputs = self._it.get_input_details(), self._it.get_output_details()
        grid = (INPUT // STRIDE) ** 2
        shapes = sorted(tuple(int(v) for v in d["shape"]) for d in outputs)
        if [tuple(int(v) for v in d["shape"]) for d in inputs] != [(1, INPUT, INPUT, 3)] or shapes != [
            (1, grid, 1),
            (1, grid, 16),
        ]:
            raise ModelError(f"{path} is not the BlazeFace full-range detector")
        self._input = inputs[0]["index"]
        self._boxes = next(d["index"] for d in outputs if d["shape"][2] == 16)
        self._scores = next(d["index"] for d in outputs if d["shape"][2] == 1)
        cells = (np.arange(INPUT // STRIDE, dtype=np.float32) + 0.5) / (INPUT // STRIDE)
        ys, xs = np.meshgrid(cells, cells, indexing="ij")
        self._anchors = np.stack([xs.ravel(), ys.ravel()], axis=1)
        self._lock = threading.Lock()

    def detect(self, image: Image.Image) -> list[Face]:
        """Every face in the RGB ``image``, best first."""
        found: list[Face] = []
        with self._lock:
            for left, top, side in windows(image.width, image.height):
                found += self._look(image, left, top, side)
        return merged(found)

    def _look(self, image: Image.Image, left: int, top: int, side: int) -> list[Face]:
        window = image.crop((left, top, min(left + side, image.width), min(top + side, image.height)))
        square = Image.new("RGB", (side, side))  # the window at the frame's edge, padded with black
        square.paste(window, (0, 0))
        x: NDArray[np.float32] = (
            np.asarray(square.resize((INPUT, INPUT), Image.Resampling.BILINEAR), np.float32) / 127.5 - 1
        )
        self._it.set_tensor(self._input, x[None])
        self._it.invoke()
        raw = self._it.get_tensor(self._boxes)[0]
        logits = np.clip(self._it.get_tensor(self._scores)[0, :, 0], -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
        scores = 1 / (1 + np.exp(-logits))
        scale = side / INPUT
        out = []
        for k in np.nonzero(scores >= MIN_SCORE)[0]:
            cx = (raw[k, 0] / INPUT + self._anchors[k, 0]) * INPUT
            cy = (raw[k, 1] / INPUT + self._anchors[k, 1]) * INPUT
            w, h = raw[k, 2], raw[k, 3]
            box = (
                float(left + (cx - w / 2) * scale),
                float(top + (cy - h / 2) * scale),
                float(left + (cx + w / 2) * scale),
                float(top + (cy + h / 2) * scale),
            )
            out.append(Face(box, float(scores[k])))
        return out
