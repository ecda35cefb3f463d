"""The self-test an admin starts from the fleet page (``selftest.run`` on the unit's cmd topic), run
by the firmware while it keeps running.

The on-site run (``device.selftest.run``) needs the firmware stopped: it opens the GPIO lines,
serial port, camera and sound card itself, and asks a technician to press, switch and listen. Here
the firmware's own hardware is read instead, through the same checks where they can share it:
the camera (its frames are shared), the GNSS fix and the clock against it (the receiver's fixes
are shared), the plate reader's models against the reference plate, and the broker (the request
came over the firmware's own connection). What needs a person at the unit, or would disturb a
party there (the test tone, the LED and buzzer, the test report over a second connection), is
listed as skipped, saying why, so the result tells the admin exactly what it covered.
"""

from __future__ import annotations

from datetime import UTC, datetime

from device.config import DeviceConfig
from device.hardware import Hardware
from device.selftest.camera import check_camera
from device.selftest.gnss import FixWatch, check_clock, check_gnss
from device.selftest.outcome import Outcome, timed
from device.selftest.plates import check_plate_reader
from protocol.ids import new_report_id
from protocol.messages import CheckStatus, SelfTest, SelfTestCheck
from runtime.version import FIRMWARE

GNSS_WAIT_S = 15.0  # a running receiver with a fix sends one every second
MAX_CLOCK_OFFSET_S = 2.0
ON_SITE = "仅现场自检 on-site self-test only (firmware stopped, a technician at the unit)"
_ON_SITE_CHECKS = {
    "button": "需有人按下 a person must press it",
    "hazard": "需有人打开双闪 a person must switch the hazards on",
    "led": "需有人看灯 a person must watch it light",
    "buzzer": "需有人听 a person must hear it",
    "audio": "测试音会在路边响起并占用麦克风 its test tone would sound at the roadside and take the microphone",
    "test_report": "经自检自己的第二个连接发送 sent over a second connection of the self-test's own",
}


def _skipped(name: str, why: str) -> SelfTestCheck:
    return SelfTestCheck(name=name, status=CheckStatus.SKIP, detail=why, duration_ms=0)


async def run_live_selftest(cfg: DeviceConfig, hw: Hardware, in_case: bool) -> SelfTest:
    """The checks that can run beside the firmware; ``in_case``: a case is open, so the plate
    reader (seconds of CPU the call needs) waits for the next run."""
    started_at = datetime.now(UTC)
    checks = [await timed("camera", check_camera(hw.camera))]
    watch = FixWatch(hw.gnss)
    try:
        gnss = await timed("gnss", check_gnss(watch, GNSS_WAIT_S))
    finally:
        await watch.close()
    checks.append(gnss)
    if in_case:
        checks.append(
            _skipped("plate_reader", "案件进行中不运行 not while a case is open: it takes the CPU the call needs")
        )
    else:
        checks.append(await timed("plate_reader", check_plate_reader(cfg.plates)))
    have_fix = gnss.status is CheckStatus.PASS
    checks.append(await timed("clock", check_clock(hw.gnss, have_fix, MAX_CLOCK_OFFSET_S)))
    checks.append(await timed("broker", _broker()))
    checks += [_skipped(name, f"{ON_SITE}: {why}") for name, why in _ON_SITE_CHECKS.items()]
    return SelfTest(
        run_id=new_report_id(),
        device_kind=cfg.device.kind,
        firmware=FIRMWARE,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        passed=all(check.status is not CheckStatus.FAIL for check in checks),
        checks=checks,
    )


async def _broker() -> Outcome:
    return Outcome.passed(
        "远程自检 remote run: the request came over the firmware's own connection, as does the result"
    )
