"""The plate reader check: the models the firmware loads read a reference plate through the whole
reader (detector, straightening, recogniser, grammar).

The reference is a crop of a simulated crash scene (``device.sim.scene.Scene(1280, 720, seed=4)``,
frame 0, 480 x 270 around the green plate 云CD95211), shipped as a JPEG so that a unit checks
its models against the same pixels in the workshop as in the tests. A unit whose models are
missing or corrupt fails here, saying which file, rather than at its first accident.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from device.config import PlatesSection
from device.ocr.errors import OcrError
from device.ocr.reader import MODELS_DIR, PlateReader, load_image
from device.selftest.outcome import Outcome

REFERENCE = Path(__file__).with_name("reference_plate.jpg")
REFERENCE_TEXT = "云CD95211"


async def check_plate_reader(cfg: PlatesSection) -> Outcome:
    if not cfg.enabled:
        return Outcome.skipped("plate reading is switched off in the configuration ([plates] enabled)")
    try:
        reader = await asyncio.to_thread(PlateReader, cfg.models_dir or MODELS_DIR)
        image = await asyncio.to_thread(load_image, REFERENCE)
        started = time.monotonic()
        reads = await asyncio.to_thread(reader.read_frame, image)
        read_ms = (time.monotonic() - started) * 1000
    except OcrError as exc:
        return Outcome.failed(f"plate reader off: {exc}")
    found = [r for r in reads if r.text == REFERENCE_TEXT]
    if not found:
        got = ", ".join(r.text for r in reads) or "no plate"
        return Outcome.failed(f"the reference plate {REFERENCE_TEXT} read as {got}")
    return Outcome.passed(
        f"read the reference plate {REFERENCE_TEXT} (confidence {found[0].confidence:.2f}) in {read_ms:.0f} ms "
        f"with {reader.model_bytes // 1024} KiB of models"
    )
