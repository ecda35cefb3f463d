"""The plate reader: an image in, every readable plate out (text, confidences, where, colour, crop).

Images come from the unit's own camera, but also from a technician's command line, so anything
that is not a sane image (not an image at all, truncated, a decompression bomb) is an
``ImageError`` before any pixel is decoded or the models are touched. Reads are returned best first.
The TFLite interpreters are not thread-safe; one lock serialises reads, so the device can run
them in ``asyncio.to_thread`` from anywhere.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from device.ocr.detector import Detector
from device.ocr.errors import ImageError
from device.ocr.geometry import Quad, drawn_in, is_double_row, is_motorbike, pad_with_edges, straighten
from device.ocr.recogniser import Recogniser
from device.ocr.refiner import Refiner
from protocol.plates import TYPE_NAMES, PlateKind, PlateType, form_type

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DETECTOR_FILE = "detector.tflite"
RECOGNISER_FILE = "recogniser.tflite"
REFINER_FILE = "refiner.tflite"
MAX_IMAGE_BYTES = 40 * 1024 * 1024
# A 2028 x 1520 still is 3 MP; a phone photo 12-50 MP. Beyond this the decode alone would cost a
# Pi seconds and hundreds of MB.
MAX_IMAGE_PIXELS = 50_000_000
# Corners found in a frame are still a few percent of the plate off, and on a crop a little too
# loose the recogniser drops or doubles a character; so each plate is also read from corners drawn
# in towards its centre (parts of its width and height kept) and the most certain valid read is
# kept. The second look was picked on the real training photographs, never on the held-out ones;
# each look costs a straightening and a recogniser run (about 0.6 ms on one core here).
LOOKS = ((1.0, 1.0), (0.88, 0.85))
# A crop is read whole, and also searched as a frame is: a crop cut at the plate's outline (94 x
# 24 as plate datasets ship them) fills the detector's input and is not found, a loose or turned
# one is read whole with its background. On a canvas padded with the crop's own edge pixels (this
# many crop widths each side, and crop heights above and below) the plate is as large to the
# detector as plates in frames are. On the real training photographs' tight crops this took exact
# reads from 236 to 245 of 251 (never measured on the held-out ones before it was chosen).
CROP_PAD = (1.0, 3.0)


@dataclass(frozen=True)
class PlateRead:
    text: str
    confidence: float
    char_confidences: tuple[float, ...]
    kind: PlateKind  # the colour
    plate_type: PlateType  # what the text, the colour and the rows say the vehicle is
    corners: Quad  # tl, tr, br, bl in image pixels
    crop: NDArray[np.uint8]  # the straightened plate the recogniser read, REC_H x REC_W x 3

    def moved(self, dx: float, dy: float) -> PlateRead:
        tl, tr, br, bl = ((x + dx, y + dy) for x, y in self.corners)
        return replace(self, corners=(tl, tr, br, bl))

    @property
    def box(self) -> tuple[int, int, int, int]:
        xs, ys = [p[0] for p in self.corners], [p[1] for p in self.corners]
        return (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "char_confidences": [round(c, 4) for c in self.char_confidences],
            "box": list(self.box),
            "corners": [[round(x, 1), round(y, 1)] for x, y in self.corners],
            "kind": self.kind.value,
            "type": self.plate_type.value,
            "type_name": TYPE_NAMES[self.plate_type],
        }


def load_image(source: Path | bytes) -> Image.Image:
    """The RGB image in ``source`` (a file or its bytes), or ImageError saying what is wrong with it."""
    if isinstance(source, Path):
        try:
            if source.stat().st_size > MAX_IMAGE_BYTES:
                raise ImageError(f"{source}: larger than {MAX_IMAGE_BYTES // 2**20} MB")
            data = source.read_bytes()
        except OSError as exc:
            raise ImageError(f"{source}: cannot be read ({exc.strerror or exc})") from exc
    else:
        data = source
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"image larger than {MAX_IMAGE_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ImageError(f"image of {image.width} x {image.height} pixels is too large to read plates in")
            image.load()
            return image.convert("RGB")
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image too large to read plates in: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not a readable image: not in any image format known here (JPEG, PNG, ...)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"not a readable image: {exc}") from exc


class PlateReader:
    """The detector, corner refiner and recogniser together; ModelError if any model is missing or corrupt."""

    def __init__(self, models_dir: Path = MODELS_DIR, threads: int = 1) -> None:
        self.detector = Detector(models_dir / DETECTOR_FILE, threads)
        self.refiner = Refiner(models_dir / REFINER_FILE, threads)
        self.recogniser = Recogniser(models_dir / RECOGNISER_FILE, threads)
        self._lock = threading.Lock()

    @property
    def model_bytes(self) -> int:
        return self.detector.model.size_bytes + self.refiner.model.size_bytes + self.recogniser.model.size_bytes

    def read_frame(self, image: Image.Image) -> list[PlateRead]:
        """Every plate found in a camera frame or still that reads as a valid plate, best first."""
        with self._lock:
            reads = [self._read(image, self.refiner.refine(image, d.corners)) for d in self.detector.detect(image)]
        return sorted((r for r in reads if r is not None), key=lambda r: -r.confidence)

    def read_crop(self, image: Image.Image) -> list[PlateRead]:
        """``image`` is one plate, cut out already (tight or loose, turned, dark): its most certain
        read, corners in ``image``'s pixels, or nothing if no plate reads in it."""
        w, h = image.size
        canvas, (left, top) = pad_with_edges(image, *CROP_PAD)
        with self._lock:
            reads = [self._read(image, ((0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))))]
            for d in self.detector.detect(canvas):
                found = self._read(canvas, self.refiner.refine(canvas, d.corners))
                reads.append(None if found is None else found.moved(-left, -top))
        best = max((r for r in reads if r is not None), key=lambda r: r.confidence, default=None)
        return [] if best is None else [best]

    def read_at(self, image: Image.Image, corners: Quad) -> PlateRead | None:
        """The plate inside ``corners`` of ``image`` (given, not found), or None if it does not read as a plate."""
        with self._lock:
            return self._read(image, corners)

    def _read(self, image: Image.Image, corners: Quad) -> PlateRead | None:
        # A single-row plate seen at an angle, or cut out with a margin, is as square as a
        # double-row one: it is read as one row too.
        layouts = (True, False) if is_double_row(corners) else (False,)
        best: PlateRead | None = None
        for across, up in LOOKS:
            quad = drawn_in(corners, across, up)
            for double_row in layouts:
                crop = straighten(image, quad, double_row)
                text = self.recogniser.read(crop)
                if text is not None and (best is None or text.confidence > best.confidence):
                    motorbike = double_row and is_motorbike(corners)
                    found = form_type(text.form, text.text, text.kind, double_row=double_row, motorbike=motorbike)
                    best = PlateRead(text.text, text.confidence, text.char_confidences, text.kind, found, corners, crop)
        return best
