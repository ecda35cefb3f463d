"""Tightening the detector's corners: a second, closer look at each plate it found.

The detector places a plate's corners only to about a tenth of its height and width (it sees the
whole frame at 448 x 256), and a crop that much off cuts characters or tilts them. The refiner
sees a window straightened from those corners, a little larger than the plate, and says where the
plate's corners really are in it. Its answer is asked again from the corners it gave (PASSES),
because the second window is straighter and tighter and so the second answer better.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from device.ocr.errors import ModelError
from device.ocr.geometry import REF_H, REF_W, Quad, from_window, refine_window, window_pixels
from device.ocr.runtime import TfliteModel

PASSES = 2


class Refiner:
    def __init__(self, path: Path, threads: int = 1) -> None:
        self.model = TfliteModel(path, threads)
        if self.model.input_shape != (1, REF_H, REF_W, 3) or self.model.output_shapes() != [(8,)]:
            raise ModelError(
                f"{path} is not a corner refiner (input {self.model.input_shape}, outputs {self.model.output_shapes()})"
            )

    def refine(self, image: Image.Image, corners: Quad) -> Quad:
        """``corners`` of a plate in the RGB ``image``, moved onto the plate's outline."""
        for _ in range(PASSES):
            window = refine_window(corners)
            out = self.model.run(window_pixels(image, window))[0]
            corners = from_window(window, [(float(out[2 * k]), float(out[2 * k + 1])) for k in range(4)])
        return corners
