"""All of a device's parts, opened from its configuration, as one object the app can hold.

The backends are chosen here by configuration (gpiozero pin factory, serial or simulated GNSS,
picamera2 or simulated camera, pyaudio or simulated audio, a kiosk's screen in Chromium or
simulated); nothing above this module knows which.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from device.config import DeviceConfig
from device.hal.audio import Audio, make_audio
from device.hal.camera import Camera, make_camera
from device.hal.gnss import Gnss, make_gnss
from device.hal.indicators import Indicators
from device.hal.pins import make_pin_factory
from device.hal.prompts import Prompts
from device.hal.screen import Screen, make_screen
from device.hal.trigger import Triggers
from protocol.messages import Health, Position, TrackPoint, Trigger
from runtime.version import FIRMWARE

LOW_STORAGE_MB = 200


@dataclass
class Hardware:
    cfg: DeviceConfig
    pins: Any  # a gpiozero pin factory
    indicators: Indicators
    gnss: Gnss
    camera: Camera
    audio: Audio
    prompts: Prompts
    screen: Screen | None = None  # a kiosk's; an in-car unit has none
    triggers: Triggers | None = None
    started: float = field(default_factory=time.monotonic)
    free_mb: int = 0

    @classmethod
    def open(cls, cfg: DeviceConfig) -> Hardware:
        pins = make_pin_factory(cfg.gpio.pin_factory)
        audio = make_audio(cfg.audio)
        return cls(
            cfg=cfg,
            pins=pins,
            indicators=Indicators(cfg.gpio, pins),
            gnss=make_gnss(cfg.gnss),
            camera=make_camera(cfg.camera),
            audio=audio,
            prompts=Prompts(audio),
            screen=make_screen(cfg.screen, cfg.device.data_dir),
        )

    async def start(self, on_trigger: Callable[[Trigger], None]) -> None:
        parts = [self.gnss.start(), self.camera.start(), self.audio.start(), self.refresh_storage()]
        if self.screen is not None:
            parts.append(self.screen.start())
        await asyncio.gather(*parts)
        # Last: a press must find everything it reports on already running.
        self.triggers = Triggers(self.cfg.gpio, self.pins, on_trigger)

    async def stop(self) -> None:
        if self.triggers is not None:
            self.triggers.close()
        self.indicators.close()
        parts = [self.gnss.stop(), self.camera.stop(), self.audio.stop()]
        if self.screen is not None:
            parts.append(self.screen.stop())
        await asyncio.gather(*parts, return_exceptions=True)

    def position(self, now: datetime) -> Position | None:
        return self.gnss.position(now)

    def track_points(self, seconds: float) -> list[TrackPoint]:
        return [fix.to_track_point() for fix in self.gnss.track(seconds)]

    async def refresh_storage(self) -> None:
        """Free space is read now and then (start-up, heartbeats), never on the way to a report."""
        usage = await asyncio.to_thread(shutil.disk_usage, self.cfg.device.data_dir)
        self.free_mb = usage.free // (1024 * 1024)

    def health(self) -> Health:
        notes: list[str] = []
        gnss = self.gnss.health()
        parts = {"camera": self.camera.health(), "gnss": (gnss.state, gnss.note or ""), "audio": self.audio.health()}
        for name, (_, note) in parts.items():
            if note:
                notes.append(f"{name}: {note}"[:120])
        if self.screen is not None and self.screen.note:
            notes.append(f"screen: {self.screen.note}"[:120])
        free_mb = self.free_mb
        if free_mb < LOW_STORAGE_MB:
            notes.append(f"storage: only {free_mb} MB free")
        return Health(
            camera=parts["camera"][0],
            gnss=parts["gnss"][0],
            audio=parts["audio"][0],
            storage_free_mb=free_mb,
            firmware=FIRMWARE,
            uptime_s=int(time.monotonic() - self.started),
            notes=notes[:8],
        )
