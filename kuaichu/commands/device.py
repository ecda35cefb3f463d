"""``kuaichu device run | gnss-replay``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kuaichu.runner import run

DEFAULT_CONFIG = Path("/etc/kuaichu/device.toml")


def register(commands: Any) -> None:
    parser = commands.add_parser("device", help="the reporting unit's firmware and tools")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    run = sub.add_parser("run", help="run the device firmware")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"device.toml (default {DEFAULT_CONFIG})")
    run.set_defaults(handler=_run)

    from device import gnss_replay

    replay = sub.add_parser("gnss-replay", help="read an NMEA capture as the receiver reader would, print fixes")
    gnss_replay.add_arguments(replay)
    replay.set_defaults(handler=gnss_replay.run)


def _run(args: argparse.Namespace) -> int:
    from device.config import load_device_config

    cfg = load_device_config(args.config)  # before the hardware imports, so a bad file is reported as such
    from device.main import limit_malloc_arenas, run_device

    limit_malloc_arenas()  # before any thread exists
    run(run_device(cfg))
    return 0
