"""``kuaichu protocol schema``: the JSON Schema of every message, for device makers and integrators."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser("protocol", help="the MQTT contract")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    schema = sub.add_parser("schema", help="print or write the JSON Schema of each message")
    schema.add_argument("--out", type=Path, help="write one <name>.schema.json per message into this folder")
    schema.set_defaults(handler=_schema)


def _schema(args: argparse.Namespace) -> int:
    from protocol.messages import SCHEMAS

    schemas = {name: model.model_json_schema() for name, model in SCHEMAS.items()}
    if args.out is None:
        print(json.dumps(schemas, ensure_ascii=False, indent=2))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas.items():
        (args.out / f"{name}.schema.json").write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n")
    return 0
