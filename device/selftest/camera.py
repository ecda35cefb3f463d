"""The camera check: a fresh frame of the configured size that is not one flat colour."""

from __future__ import annotations

import asyncio
import time

from device.hal.camera import Camera, CameraError
from device.selftest.outcome import Outcome

FRAME_WAIT_S = 5.0


async def check_camera(camera: Camera) -> Outcome:
    wanted = (camera.cfg.width, camera.cfg.height)
    started = time.monotonic()
    try:
        frame = await asyncio.wait_for(camera.next_frame(), FRAME_WAIT_S + 3 / camera.cfg.fps)
    except CameraError as exc:
        return Outcome.failed(f"no frame: {exc}")
    except TimeoutError:
        return Outcome.failed(f"no frame within {FRAME_WAIT_S:g} s ({camera.health()[1]})")
    ms = round((time.monotonic() - started) * 1000)
    height, width = frame.shape[:2]
    if (width, height) != wanted:
        return Outcome.failed(f"frame is {width}x{height}, configured {wanted[0]}x{wanted[1]}")
    low, high = int(frame.min()), int(frame.max())
    if low == high:
        # A working sensor always shows some noise; one value everywhere is a dead or covered camera.
        return Outcome.failed(f"{width}x{height} frame is one flat value ({low}): lens covered or sensor not working")
    return Outcome.passed(f"{width}x{height} frame in {ms} ms, mean level {float(frame.mean()):.0f} of 255")
