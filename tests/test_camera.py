"""The camera HAL: the simulated camera films the crash scene in real time; the Pi backend fails softly here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from device.config import CameraSection
from device.hal.camera import Camera, CameraError, Frame, make_camera
from device.hal.camera_picamera2 import Picamera2Camera
from device.hal.camera_simulated import SimulatedCamera, still_size
from device.sim.scene import Role, Scene, read_frame_counter
from protocol.messages import PartState

TIMEOUT_S = 20  # only so a broken camera fails the test instead of hanging it

CFG = CameraSection(backend="simulated", width=320, height=240, fps=30)


@pytest.fixture
async def camera() -> AsyncIterator[Camera]:
    cam = make_camera(CFG)
    await cam.start()
    yield cam
    await cam.stop()


async def test_simulated_camera_yields_frames_at_the_configured_size_in_order(camera: Camera) -> None:
    assert isinstance(camera, SimulatedCamera)
    frames = [await asyncio.wait_for(camera.next_frame(), TIMEOUT_S) for _ in range(8)]
    for frame in frames:
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    numbers = [n for n in map(read_frame_counter, frames) if n is not None]
    assert len(numbers) == len(frames)
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    latest = read_frame_counter(await camera.frame())  # the newest, without waiting
    assert latest is not None and latest >= numbers[-1]
    state, note = camera.health()
    assert state is PartState.OK and "320x240" in note


async def test_frames_are_shared_read_only(camera: Camera) -> None:
    frame = await asyncio.wait_for(camera.frame(), TIMEOUT_S)
    with pytest.raises(ValueError):
        frame[0, 0, 0] = 1


async def test_frames_are_the_scene_the_docs_promise(camera: Camera) -> None:
    """A frame's counter names the frame: the scene re-rendered at that number is the same image."""
    assert isinstance(camera, SimulatedCamera)
    frame = await asyncio.wait_for(camera.next_frame(), TIMEOUT_S)
    number = read_frame_counter(frame)
    assert number is not None
    again = Scene(CFG.width, CFG.height, seed=camera.seed, fps=CFG.fps).render(number)
    assert np.array_equal(frame, again.image)
    assert {p.role for p in again.plates} >= {Role.STRUCK, Role.STRIKING}


async def test_still_is_larger_and_video_goes_on(camera: Camera) -> None:
    before = read_frame_counter(await asyncio.wait_for(camera.next_frame(), TIMEOUT_S))
    still = await asyncio.wait_for(camera.still(), TIMEOUT_S)
    assert still.shape == (*still_size(320, 240)[::-1], 3) == (1520, 2028, 3)
    assert still.dtype == np.uint8
    assert read_frame_counter(still) is None  # evidence photos carry no test pattern
    after = read_frame_counter(await asyncio.wait_for(camera.next_frame(), TIMEOUT_S))
    assert before is not None and after is not None and after > before
    assert camera.health()[0] is PartState.OK


async def test_stopped_camera_refuses_frames() -> None:
    cam = make_camera(CFG)
    with pytest.raises(CameraError, match="not started"):
        await cam.frame()
    await cam.start()
    await asyncio.wait_for(cam.frame(), TIMEOUT_S)
    await cam.stop()
    assert cam.health() == (PartState.FAILED, "stopped")
    with pytest.raises(CameraError):
        await cam.next_frame()
    with pytest.raises(CameraError):
        await cam.still()


class _CableComesLoose(SimulatedCamera):
    """The simulated camera with its capture failing after a few frames, as a pulled ribbon cable does."""

    def _capture(self) -> Frame:
        if self.frames_captured >= 3:
            raise OSError(5, "Input/output error")
        return super()._capture()


async def test_a_failing_capture_fails_the_camera_and_wakes_waiters() -> None:
    cam = _CableComesLoose(CFG)
    await cam.start()
    try:
        with pytest.raises(CameraError, match="Input/output error"):
            for _ in range(20):
                await asyncio.wait_for(cam.next_frame(), TIMEOUT_S)
        state, note = cam.health()
        assert state is PartState.FAILED and "capture failed" in note
    finally:
        await cam.stop()


async def test_picamera2_backend_off_a_pi_is_a_failed_camera_not_a_crash() -> None:
    cam = make_camera(CameraSection())  # the default: the real Pi camera
    assert isinstance(cam, Picamera2Camera)
    await cam.start()
    state, note = cam.health()
    assert state is PartState.FAILED
    assert "picamera2" in note
    with pytest.raises(CameraError, match="picamera2"):
        await cam.frame()
    with pytest.raises(CameraError):
        await cam.still()
    await cam.stop()
