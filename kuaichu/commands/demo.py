"""``kuaichu demo`` and ``kuaichu demo press DEVICE``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from runtime.runner import run


def register(commands: Any) -> None:
    from kuaichu.demo import DEFAULT_DIR

    parser = commands.add_parser("demo", help="the whole system on this machine, with simulated hardware")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"demo data and logs (default {DEFAULT_DIR})")
    parser.add_argument("--http-port", type=int, default=8080, help="console port (a free one if taken)")
    parser.set_defaults(handler=_run)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    press = sub.add_parser("press", help="press a simulated device's report button (or switch on its hazards)")
    press.add_argument("device", help="device id, e.g. car-demo-01")
    press.add_argument("--hazard", action="store_true", help="switch the hazard warning lights on instead")
    press.set_defaults(handler=_press)


def _run(args: argparse.Namespace) -> int:
    from kuaichu.demo import run_demo

    return run(run_demo(args.dir.resolve(), args.http_port))


def _press(args: argparse.Namespace) -> int:
    from kuaichu.demo import press

    return asyncio.run(press(args.dir.resolve(), args.device, args.hazard))
