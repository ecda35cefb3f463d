"""``kuaichu device run | selftest | gnss-replay``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from runtime.runner import run

DEFAULT_CONFIG = Path("/etc/kuaichu/device.toml")


def register(commands: Any) -> None:
    parser = commands.add_parser("device", help="the reporting unit's firmware and tools")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    run = sub.add_parser("run", help="run the device firmware")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"device.toml (default {DEFAULT_CONFIG})")
    run.set_defaults(handler=_run)

    test = sub.add_parser(
        "selftest",
        help="check every part of this unit, the broker and a test report (stop the firmware service first)",
    )
    test.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"device.toml (default {DEFAULT_CONFIG})")
    test.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the result as JSON here")
    test.add_argument("--gnss-timeout", type=_seconds, default=90.0, metavar="S", help="wait this long for a fix")
    test.add_argument(
        "--prompt-timeout", type=_seconds, default=30.0, metavar="S", help="wait this long for the technician"
    )
    test.add_argument("--ack-timeout", type=_seconds, default=15.0, metavar="S", help="wait this long for the server")
    test.add_argument(
        "--max-clock-offset", type=_seconds, default=2.0, metavar="S", help="clock against GNSS time, at most"
    )
    test.set_defaults(handler=_selftest)

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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 3600 seconds: {text}")
    return value


def _selftest(args: argparse.Namespace) -> int:
    from device.config import load_device_config

    cfg = load_device_config(args.config)
    if args.json is not None and not args.json.parent.is_dir():
        print(f"--json: no folder {args.json.parent}", file=sys.stderr)
        return 2
    if args.log_level is None and "KUAICHU_LOG_LEVEL" not in os.environ:
        # The report on stdout is for the technician; routine start-up lines would bury it.
        logging.getLogger().setLevel(logging.WARNING)
    from device.selftest.run import SelfTestError, SelfTestOptions, run_selftest

    options = SelfTestOptions(
        gnss_timeout_s=args.gnss_timeout,
        prompt_timeout_s=args.prompt_timeout,
        ack_timeout_s=args.ack_timeout,
        max_clock_offset_s=args.max_clock_offset,
        json_path=None if args.json is None else args.json.resolve(),
    )
    try:
        result = run(run_selftest(cfg, options))
    except SelfTestError as exc:
        print(f"self-test not run: {exc}", file=sys.stderr)
        return 1
    return 0 if result.passed else 1
