"""``kuaichu ocr [--crops] [--json] IMAGE...``: read the plates in images with the device's models.

A technician checks a camera's framing with it, and anyone can check the reader on a photo. One
line per image; an image that cannot be read gets its error (on that line with ``--json``) and the
others are still read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    from device.ocr.reader import MODELS_DIR

    parser = commands.add_parser("ocr", help="read the licence plates in images")
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    parser.add_argument("--crops", action="store_true", help="each image is one plate, already cut out")
    parser.add_argument("--json", action="store_true", help="one JSON object per image")
    parser.add_argument("--models", type=Path, default=MODELS_DIR, help=f"model folder (default {MODELS_DIR})")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from device.ocr.errors import ImageError, ModelError
    from device.ocr.reader import PlateReader, load_image
    from protocol.plates import TYPE_NAMES

    try:
        reader = PlateReader(args.models)
    except ModelError as exc:
        print(f"plate reader unavailable: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for path in args.images:
        try:
            image = load_image(path)
        except ImageError as exc:
            failed += 1
            if args.json:
                print(json.dumps({"file": str(path), "plates": [], "error": str(exc)}, ensure_ascii=False))
            else:
                print(f"{path}: error: {exc}", file=sys.stderr)
            continue
        reads = reader.read_crop(image) if args.crops else reader.read_frame(image)
        if args.json:
            plates = [r.as_json() for r in reads]
            print(json.dumps({"file": str(path), "plates": plates}, ensure_ascii=False), flush=True)
        elif not reads:
            print(f"{path}: 未读到车牌 (no plate)")
        else:
            for r in reads:
                name = TYPE_NAMES[r.plate_type]
                print(f"{path}: {r.text} {r.kind.value} {name} {r.confidence:.2f} box {list(r.box)}", flush=True)
    return 1 if failed else 0
