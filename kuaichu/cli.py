"""The one ``kuaichu`` command: ``server``, ``device``, ``demo``, ``insurer`` and the rest, with their subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

from runtime.configfile import ConfigError

Handler = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kuaichu", description=__doc__)
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING, ERROR")
    # What an update checks a freshly installed release with before switching to it.
    parser.add_argument("--version", action="version", version=f"kuaichu {metadata.version('kuaichu')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from kuaichu.commands import demo, device, insurer, ocr, protocol, provision, registry, release, server, verify

    for module in (server, device, demo, protocol, provision, release, registry, insurer, ocr, verify):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from runtime.logs import setup_logging

    setup_logging(args.log_level)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
