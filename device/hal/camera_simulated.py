"""A camera that films the simulated crash scene (``device.sim.scene``) in real time.

Frames come at the configured size and rate from the capture thread, like the real camera's; a
frame that would be late is dropped rather than delivered in a burst, as a sensor does. Stills
are the same scene rendered at a still camera's resolution, on a thread of their own, so the
video does not pause (the first still takes a second or two to draw the scene at that size; the
cameras of one process with the same scene share that drawing, drawn once: fifty simulated units in
a few processes would otherwise spend minutes of CPU and 9 GB on fifty copies of it).

The scene is deterministic: ``Scene(cfg.width, cfg.height, seed=camera.seed, fps=cfg.fps)
.render(n)`` reproduces frame ``n`` and its plate ground truth, and ``read_frame_counter`` reads
``n`` back from any frame.
"""

from __future__ import annotations

import asyncio
import threading
import time

from device.config import CameraSection
from device.hal.camera import Camera, Frame
from device.sim.scene import Scene

STILL_WIDTH = 2028  # the HQ camera's 2x2-binned mode, 2028x1520 at 4:3


# The still-size scenes of this process by (width, height, seed, fps), each with the lock that
# renders it one still at a time (its layers are drawn at the first still and kept).
_STILL_SCENES: dict[tuple[int, int, int, float], tuple[Scene, threading.Lock]] = {}
_STILL_SCENES_LOCK = threading.Lock()


def still_size(width: int, height: int) -> tuple[int, int]:
    """A still camera's size at the video's aspect ratio, never smaller than the video."""
    w = max(STILL_WIDTH, width)
    return w, max(height, int(w * height / width) // 2 * 2)


class SimulatedCamera(Camera):
    def __init__(self, cfg: CameraSection, *, seed: int = 1) -> None:
        super().__init__(cfg)
        self.seed = seed
        self._scene: Scene | None = None
        self._still_lock = asyncio.Lock()
        self._number = 0
        self._due = 0.0

    def _open(self) -> None:
        self._scene = Scene(self.cfg.width, self.cfg.height, seed=self.seed, fps=self.cfg.fps)
        self._scene.render(0)  # draws the static scene now, so the first frames are on time
        self._number = 0
        self._due = time.monotonic()

    def _capture(self) -> Frame:
        assert self._scene is not None
        period = 1 / self.cfg.fps
        wait = self._due - time.monotonic()
        if wait > 0:
            self._stop_requested.wait(wait)
        elif wait < -period:  # fell behind: skip the frames that are already late
            skipped = int(-wait / period)
            self._number += skipped
            self._due += skipped * period
        self._due += period
        frame = self._scene.render(self._number).image
        self._number += 1
        return frame

    def _close(self) -> None:
        self._scene = None

    async def still(self) -> Frame:
        self._check_running()
        async with self._still_lock:
            return await asyncio.to_thread(self._render_still, self._number)

    def _render_still(self, number: int) -> Frame:
        w, h = still_size(self.cfg.width, self.cfg.height)
        key = (w, h, self.seed, self.cfg.fps)
        with _STILL_SCENES_LOCK:
            if key not in _STILL_SCENES:
                _STILL_SCENES[key] = (Scene(w, h, seed=self.seed, fps=self.cfg.fps), threading.Lock())
            scene, drawing = _STILL_SCENES[key]
        with drawing:
            return scene.render(number, counter=False).image
