"""One self-test run: open the device's own hardware, run the checks in order, report, publish.

The firmware service must not be running: both open the same GPIO lines, serial port, camera and
sound card (on a Pi: ``sudo systemctl stop kuaichu-device`` first). A simulated device that is
configured with a control socket serves it here too, so that a press can come from outside the
process exactly as in the demo (``kuaichu demo press``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from device.config import DeviceConfig
from device.hardware import Hardware
from device.reports import build_report
from device.selftest.camera import check_camera
from device.selftest.gnss import FixWatch, check_clock, check_gnss
from device.selftest.indicators import ON_S, check_output
from device.selftest.link import SelfTestLink
from device.selftest.outcome import Outcome, timed
from device.selftest.plates import check_plate_reader
from device.selftest.report import check_line, human_report
from device.selftest.technician import Technician, check_button, check_hazard
from device.selftest.tone import TONE_HZ, TONE_S, check_audio
from protocol.ids import new_report_id
from protocol.messages import CheckStatus, SelfTest, SelfTestCheck, Trigger
from runtime.version import FIRMWARE

log = logging.getLogger(__name__)

CHECKS = 11


class SelfTestError(Exception):
    """The run could not start: the hardware is held by someone else, or cannot be opened."""


@dataclass(frozen=True)
class SelfTestOptions:
    gnss_timeout_s: float = 90.0
    prompt_timeout_s: float = 30.0
    ack_timeout_s: float = 15.0
    max_clock_offset_s: float = 2.0
    json_path: Path | None = None


class _Progress:
    """Prints each check's line as it finishes, so a technician sees the run move."""

    def __init__(self) -> None:
        self.checks: list[SelfTestCheck] = []

    async def run(self, name: str, check: Awaitable[Outcome]) -> SelfTestCheck:
        done = await timed(name, check)
        self.checks.append(done)
        print(f"[{len(self.checks):2}/{CHECKS}] {check_line(done)}", flush=True)
        return done


async def run_selftest(cfg: DeviceConfig, options: SelfTestOptions) -> SelfTest:
    """Run every check, print the report, write the JSON copy if asked and publish the result."""
    await _refuse_if_firmware_runs(cfg)
    started_at = datetime.now(UTC)
    await asyncio.to_thread(cfg.device.data_dir.mkdir, parents=True, exist_ok=True)  # as the firmware does
    try:
        hardware = Hardware.open(cfg)
    except Exception as exc:  # gpiozero, lgpio or the sound library, whichever holds the pins
        raise SelfTestError(
            f"cannot open the device's hardware ({exc}); if the firmware service runs, stop it first "
            "(sudo systemctl stop kuaichu-device)"
        ) from exc
    progress = _Progress()
    triggers: asyncio.Queue[Trigger] = asyncio.Queue()
    technician = Technician(hardware.prompts, triggers)
    gpio = cfg.gpio
    print(f"Self-test of {cfg.device.id}: {CHECKS} checks; follow the requests marked >>>", flush=True)
    async with AsyncExitStack() as stack:
        watch = FixWatch(hardware.gnss)
        stack.push_async_callback(watch.close)
        stack.push_async_callback(hardware.stop)
        await hardware.start(triggers.put_nowait)
        if gpio.control_socket is not None:
            from device.sim.control import serve_control

            control = await serve_control(gpio.control_socket, hardware.pins, gpio)
            stack.push_async_callback(control.wait_closed)
            stack.callback(control.close)

        await progress.run("camera", check_camera(hardware.camera))
        gnss = await progress.run("gnss", check_gnss(watch, options.gnss_timeout_s))
        await progress.run("button", check_button(technician, cfg, options.prompt_timeout_s))
        await progress.run("hazard", check_hazard(technician, cfg, options.prompt_timeout_s))
        technician.tell(f"Watch the status LED: it lights for {ON_S:g} s.")
        await progress.run("led", check_output(hardware.indicators, hardware.pins, "led", gpio.led_pin))
        technician.tell(f"Listen: the buzzer sounds for {ON_S:g} s.")
        await progress.run("buzzer", check_output(hardware.indicators, hardware.pins, "buzzer", gpio.buzzer_pin))
        technician.tell(f"Listen: a {TONE_S:g} s {TONE_HZ:g} Hz test tone from the speaker.")
        await progress.run("audio", check_audio(hardware.audio))
        await progress.run("plate_reader", check_plate_reader(cfg.plates))
        have_fix = gnss.status is CheckStatus.PASS
        await progress.run("clock", check_clock(hardware.gnss, have_fix, options.max_clock_offset_s))

        link = await stack.enter_async_context(SelfTestLink(cfg, options.ack_timeout_s))
        await progress.run("broker", link.check_broker())
        now = datetime.now(UTC)
        report = build_report(
            cfg,
            new_report_id(),
            Trigger.TEST,
            now,
            hardware.position(now),
            hardware.track_points(cfg.report.track_s),
            hardware.health(),
        )
        await progress.run("test_report", link.check_test_report(report))

        result = SelfTest(
            run_id=new_report_id(),
            device_kind=cfg.device.kind,
            firmware=FIRMWARE,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            passed=all(check.status is not CheckStatus.FAIL for check in progress.checks),
            checks=progress.checks,
            test_report_id=report.report_id if link.sent_report else None,
        )
        print("\n" + human_report(cfg.device.id, result), flush=True)
        print(await _write_json(result, options.json_path), flush=True)
        print(await link.publish_result(result), flush=True)
    return result


async def _write_json(result: SelfTest, path: Path | None) -> str:
    if path is None:
        return "JSON copy: not written (give --json FILE for one)."
    text = result.model_dump_json(indent=2, exclude_none=True) + "\n"
    try:
        await asyncio.to_thread(path.write_text, text)
    except OSError as exc:
        return f"JSON copy NOT written to {path}: {exc.strerror}"
    return f"JSON copy: {path}"


async def _refuse_if_firmware_runs(cfg: DeviceConfig) -> None:
    """A simulated device's firmware answers on its control socket; taking the socket over would
    leave it running with no way to press it, so the run stops here instead."""
    path = cfg.gpio.control_socket
    if path is None:
        return
    try:
        _, writer = await asyncio.open_unix_connection(path)
    except OSError:
        return  # none, or one left behind by a firmware that died: the control server replaces it
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    raise SelfTestError(f"the device firmware is running (its control socket {path} answers): stop it first")
