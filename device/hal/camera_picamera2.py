"""The Raspberry Pi camera through Picamera2 (libcamera), as the device runs it.

Video runs in one video configuration for the life of the camera: the main stream at the
configured size, with FrameDurationLimits pinning the frame rate so ``capture_array`` paces the
capture thread. A still switches the sensor to its full-resolution still configuration for one
frame and back (``switch_mode_and_capture_array``): video pauses for about a second instead of
stopping, and both happen on the capture thread, so libcamera only ever sees one caller.

Picamera2 names formats after libcamera's DRM fourccs, so ``RGB888`` arrays are ordered
[B, G, R] in memory (Picamera2 manual, "Image formats"); frames are flipped to RGB here.

picamera2 comes from apt on Raspberry Pi OS and does not exist elsewhere, so it is imported when
the camera opens: this module imports anywhere, and a machine without it (or without a camera)
gets a FAILED camera with a note instead of a crash.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from device.hal.camera import Camera, CameraError, Frame

log = logging.getLogger(__name__)


class Picamera2Camera(Camera):
    _cam: Any = None  # picamera2.Picamera2, untyped
    _still_config: Any = None

    def _open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(f"picamera2 is not installed ({exc})") from None
        cameras = Picamera2.global_camera_info()
        if not cameras:
            raise CameraError("no camera found: check the ribbon cable and camera_auto_detect=1")
        frame_us = round(1_000_000 / self.cfg.fps)
        try:
            cam = Picamera2(0)
            video = cam.create_video_configuration(
                main={"size": (self.cfg.width, self.cfg.height), "format": "RGB888"},
                controls={"FrameDurationLimits": (frame_us, frame_us)},
            )
            cam.configure(video)
            self._still_config = cam.create_still_configuration(
                main={"size": cam.sensor_resolution, "format": "RGB888"}
            )
            cam.start()
        except Exception as exc:  # libcamera reports a busy or broken camera in many ways
            raise CameraError(f"camera would not start: {exc}") from exc
        self._cam = cam
        log.info("camera: %s, stills at %sx%s", cameras[0].get("Model", "unknown model"), *cam.sensor_resolution)

    def _capture(self) -> Frame:
        bgr = self._cam.capture_array("main")
        # Rows can be padded to the ISP's stride; keep the configured width.
        return np.ascontiguousarray(bgr[: self.cfg.height, : self.cfg.width, ::-1])

    def _close(self) -> None:
        if self._cam is not None:
            self._cam.stop()
            self._cam.close()
            self._cam = None

    async def still(self) -> Frame:
        return await self._on_capture_thread(self._capture_still)

    def _capture_still(self) -> Frame:
        bgr = self._cam.switch_mode_and_capture_array(self._still_config, "main")
        still: Frame = np.ascontiguousarray(bgr[:, :, ::-1])
        return still
