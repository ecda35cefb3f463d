"""A share of the benchmark's simulated units, in a process of its own.

Fifty units in one Python process fight over one interpreter lock with some three hundred
threads (cameras, GNSS receivers, LED patterns); splitting them over a few processes keeps that
contention closer to what one unit on its own Raspberry Pi sees, while the CPU stays shared.

Speaks on stdin/stdout: prints ``ready`` once every unit is connected with a GNSS fix; on each
``press`` line waits for the last press's plate reads to be sent, presses every unit's button and
prints ``DEVICE_ID EPOCH_SECONDS`` per press, then ``pressed``; ends on end of input. Each unit
connects over mutual TLS with its own bundle from the provisioning folder FLEET_DIR
(``devices/bench-NNN/``), which the caller has already issued.

    python -m bench.simulated_units FIRST COUNT BROKER_PORT DATA_DIR FLEET_DIR [as-shipped] [plates]

``as-shipped``: each unit's camera and pre-press video as a unit ships (640x480 at 15 fps, ten
seconds kept at 4 fps) instead of the smallest camera and no ring. ``plates``: each unit reads the
plates in a still after its report, as a unit ships, with the smallest camera for its video.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.stack import bundle_tls, cancel_all
from device.app import DeviceApp
from device.config import DeviceConfig
from device.hardware import Hardware
from device.main import limit_malloc_arenas
from runtime import runner


def device_cfg(
    root: Path, index: int, broker_port: int, fleet_dir: Path, as_shipped: bool, plates: bool
) -> DeviceConfig:
    device_id = f"bench-{index:03d}"
    tls = bundle_tls(fleet_dir, device_id).model_dump()
    # The smallest rendered camera and no video kept from before the press (a ring of JPEGs,
    # written out at each press after the report has gone): this benchmark times the report, and
    # fifty units doing either load the two cores it is timed on, where in the field each unit has
    # its own. ``as_shipped`` keeps both, for a few units.
    camera: dict[str, object] = {"backend": "simulated"}
    if not as_shipped:
        camera |= {"width": 160, "height": 120, "fps": 1}
    return DeviceConfig.model_validate(
        {
            "device": {"id": device_id, "kind": "in-car", "data_dir": root / f"dev{index:03d}"},
            "broker": {"host": "127.0.0.1", "port": broker_port, "tls": tls},
            "vehicle": {"plate": "云A5H821"},
            "gpio": {"pin_factory": "mock", "long_press_s": 0, "bounce_s": 0},
            "gnss": {"backend": "simulated"},
            "camera": camera,
            "audio": {"backend": "simulated"},
            "report": {"case_hold_s": 1.0, "heartbeat_s": 30},
            # No live call after the answer: the next round would press during it.
            "webrtc": {"call_on_accept": False},
            "evidence": {} if as_shipped else {"pretrigger_s": 0},
            # Nor a plate reader (device.evidence.plates): its read follows the report and never
            # delays it, but fifty simulated stills of 2028 x 1520 drawn at each press load the
            # next round (five units as shipped, quiet machine: p99 21 ms without, 73-86 ms with), where in the field
            # each unit draws on its own CPU; and fifty model checks at start-up would load the start.
            # ``plates`` keeps it, as the unit ships.
            "plates": {} if as_shipped or plates else {"enabled": False},
        }
    )


async def fleet(
    first: int, count: int, broker_port: int, root: Path, fleet_dir: Path, as_shipped: bool, plates: bool
) -> None:
    cfgs = (device_cfg(root, i, broker_port, fleet_dir, as_shipped, plates) for i in range(first, first + count))
    apps = [DeviceApp(cfg, Hardware.open(cfg)) for cfg in cfgs]
    tasks = [asyncio.create_task(app.run()) for app in apps]
    try:
        async with asyncio.timeout(60):
            for app in apps:
                await app.ready.wait()
                await app.link.connected.wait()
                while app.hw.gnss.latest() is None:
                    await asyncio.sleep(0.1)
                while plates and app.plates.in_health(app.hw.health()).plate_reader is None:
                    await asyncio.sleep(0.1)  # the models' check at start-up, not the first round, pays for it
        print("ready", flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        loop = asyncio.get_running_loop()
        while (await reader.readline()).strip() == b"press":
            # The last round's plate reads done first: fifty stills drawn and read take the two
            # cores for seconds, which no unit's next press meets in the field (one unit, one Pi).
            await asyncio.gather(*(app.plates.settled() for app in apps))
            times = []
            for app in apps:
                pin = app.hw.pins.pin(app.cfg.gpio.button_pin)
                times.append((app.cfg.device.id, time.time()))
                pin.drive_low()
                loop.call_later(0.1, pin.drive_high)  # a finger's press, not a weight on the button
            for device_id, at in times:
                print(device_id, f"{at:.6f}")
            print("pressed", flush=True)
    finally:
        await cancel_all(tasks)


if __name__ == "__main__":
    limit_malloc_arenas()
    first, count, port, root, fleet_dir = sys.argv[1:6]
    flags = set(sys.argv[6:])
    if "plates" in flags:
        # Fifty stills drawn and read at each round are fifty units' own CPUs in the field; here
        # they would take the two cores from the server being timed. The units yield to it.
        os.nice(10)
    runner.run(
        fleet(int(first), int(count), int(port), Path(root), Path(fleet_dir), "as-shipped" in flags, "plates" in flags)
    )
