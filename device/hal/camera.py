"""The camera: a steady stream of video frames for the call, and full-resolution stills for evidence.

A backend captures on its own thread, paced by the camera itself (or, simulated, by the clock),
and hands each frame to the event loop; ``frame()`` then costs nothing and ``next_frame()`` wakes
once per frame, which is what a WebRTC video track needs. Frames are shared between every reader,
so they are read-only.

The hardware is touched from that one capture thread only: work such as a still capture is
queued to it (``_on_capture_thread``) and runs between two frames, because libcamera does not
like being driven from two threads at once. A camera that cannot be opened does not stop the
device: ``start`` returns, ``health`` says FAILED and why, and asking it for a frame raises
``CameraError``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from device.config import CameraSection
from protocol.messages import PartState

log = logging.getLogger(__name__)

Frame = NDArray[np.uint8]  # H x W x 3, RGB, read-only
T = TypeVar("T")

# The longest gap between frames that still counts as a running camera: a still capture on a
# Pi pauses video for about a second while the sensor switches mode and back.
STALL_S = 3.0


class CameraError(Exception):
    """The camera is not running, or stopped while something waited for it."""


class Camera(ABC):
    """Base of the camera backends; see the module docstring for the threading rules.

    A backend implements ``_open``, ``_capture`` and ``_close`` (all called on a worker thread,
    may block) and ``still``.
    """

    def __init__(self, cfg: CameraSection) -> None:
        self.cfg = cfg
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_requested = threading.Event()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], concurrent.futures.Future[object]]] = (
            queue.SimpleQueue()
        )
        self._jobs_lock = threading.Lock()
        self._accepting_jobs = False
        self._latest: Frame | None = None
        self._next: asyncio.Future[Frame] | None = None
        self._frames = 0
        self._last_frame_at = 0.0
        self._state = PartState.FAILED
        self._note = "not started"

    # backend hooks ------------------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Acquire and start the camera; raise CameraError with a short reason if it is not there."""

    @abstractmethod
    def _capture(self) -> Frame:
        """Block until the next video frame and return it, cfg.height x cfg.width x 3 RGB."""

    @abstractmethod
    def _close(self) -> None:
        """Stop and release the camera."""

    @abstractmethod
    async def still(self) -> Frame:
        """A full-resolution still, taken while the video goes on (it may pause for a moment)."""

    # life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the camera and start capturing; on failure, log it and report it in ``health``."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._open)
        except CameraError as exc:
            self._set_failed(str(exc))
            log.error("camera: cannot start: %s", exc)
            return
        self._stop_requested.clear()
        with self._jobs_lock:
            self._accepting_jobs = True
        self._state, self._note = PartState.OK, f"{self.cfg.width}x{self.cfg.height} at {self.cfg.fps} fps"
        self._last_frame_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="camera-capture", daemon=True)
        self._thread.start()
        log.info("camera: started, %s", self._note)

    async def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stop_requested.set()
        await asyncio.to_thread(thread.join)
        self._thread = None
        await asyncio.to_thread(self._close)
        self._set_failed("stopped")
        log.info("camera: stopped after %s frames", self._frames)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._state is not PartState.FAILED

    def health(self) -> tuple[PartState, str]:
        """The camera's state for the device's health report, and a short note saying why."""
        if self._state is PartState.OK:
            silent = time.monotonic() - self._last_frame_at
            if silent > max(STALL_S, 3 / self.cfg.fps):
                return PartState.DEGRADED, f"no frame for {silent:.0f} s"
        return self._state, self._note

    # frames ------------------------------------------------------------------------------------

    @property
    def frames_captured(self) -> int:
        return self._frames

    async def frame(self) -> Frame:
        """The newest frame; waits for the first one after start."""
        self._check_running()
        if self._latest is not None:
            return self._latest
        return await self.next_frame()

    async def next_frame(self) -> Frame:
        """The next frame the camera delivers, at the camera's pace."""
        self._check_running()
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._next)

    def _check_running(self) -> None:
        if not self.running:
            raise CameraError(f"camera not running: {self._note}")

    def _publish(self, frame: Frame) -> None:
        frame.flags.writeable = False
        self._latest = frame
        self._frames += 1
        self._last_frame_at = time.monotonic()
        waiting, self._next = self._next, None
        if waiting is not None and not waiting.done():
            waiting.set_result(frame)

    def _set_failed(self, note: str) -> None:
        self._state, self._note = PartState.FAILED, note
        self._latest = None
        waiting, self._next = self._next, None
        if waiting is not None and not waiting.done():
            waiting.set_exception(CameraError(f"camera not running: {note}"))

    # the capture thread ------------------------------------------------------------------------

    async def _on_capture_thread(self, job: Callable[[], T]) -> T:
        """Run ``job`` on the capture thread between two frames and return its result."""
        done: concurrent.futures.Future[object] = concurrent.futures.Future()
        with self._jobs_lock:
            if not self._accepting_jobs:
                raise CameraError(f"camera not running: {self._note}")
            self._jobs.put((job, done))
        result = await asyncio.wrap_future(done)
        return result  # type: ignore[return-value]

    def _run(self) -> None:
        assert self._loop is not None
        try:
            while not self._stop_requested.is_set():
                self._run_jobs()
                frame = self._capture()
                self._to_loop(self._publish, frame)
        except Exception as exc:  # whatever the driver raised, the camera is gone
            log.exception("camera: capture failed")
            self._to_loop(self._set_failed, f"capture failed: {exc}")
        finally:
            with self._jobs_lock:
                self._accepting_jobs = False
            self._run_jobs(cancelled=True)

    def _run_jobs(self, *, cancelled: bool = False) -> None:
        while True:
            try:
                job, done = self._jobs.get_nowait()
            except queue.Empty:
                return
            if cancelled:
                done.set_exception(CameraError("camera stopped"))
                continue
            try:
                done.set_result(job())
            except Exception as exc:  # handed to the caller, who decides
                done.set_exception(exc)

    def _to_loop(self, callback: Callable[[T], None], arg: T) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, arg)
        except RuntimeError:  # the loop closed during shutdown
            log.debug("camera: frame after the loop closed, dropped")


def make_camera(cfg: CameraSection) -> Camera:
    """The backend ``cfg.backend`` names; the real one imports picamera2 only when it opens."""
    if cfg.backend == "picamera2":
        from device.hal.camera_picamera2 import Picamera2Camera

        return Picamera2Camera(cfg)
    from device.hal.camera_simulated import SimulatedCamera

    return SimulatedCamera(cfg)
