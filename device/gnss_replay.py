"""``kuaichu device gnss-replay FILE``: the fixes a device would take from an NMEA capture.

A technician checks a receiver, or a capture sent in from the field, with it. The file's bytes
go through the same splitter, parser and accumulator as the serial reader's, so a fix printed
here is one the device would have taken and a line dropped here is dropped there too. Every fix
is printed, the ones the unit would not route a report on (a weak 2-D fix, sentences without
checksums) with ``"trusted": false`` and the reason, so no choice is a silent drop; what was
dropped before it became a fix is counted on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from device.config import GnssSection
from device.hal.nmea import Fix, NmeaReader, NmeaStats
from protocol.messages import utc_iso

CHUNK_BYTES = 4096
_COLUMNS = ("time", "lat", "lon", "alt", "speed", "track", "mode", "sats", "hdop", "trusted")
_TABLE = (
    "{time:<24}  {lat:>11}  {lon:>12}  {alt:>7}  {speed:>6}  {track:>6}  {mode:>4}  {sats:>4}  {hdop:>5}  {trusted}"
)
# The unit's own rules with their defaults: the age of a fix is left out, a capture being old.
_RULES = GnssSection()


def replay(path: Path, reader: NmeaReader | None = None) -> Iterator[dict[str, Any]]:
    """One record per fix, in file order; pass ``reader`` to read its counters afterwards."""
    reader = reader if reader is not None else NmeaReader()
    with path.open("rb") as capture:
        while chunk := capture.read(CHUNK_BYTES):
            yield from (fix_record(fix) for fix in reader.feed(chunk))
    yield from (fix_record(fix) for fix in reader.flush())


def fix_record(fix: Fix) -> dict[str, Any]:
    """A fix as JSON-ready values: WGS-84 degrees to 7 places (1 cm), speed in m/s; ``trusted``
    and ``reason`` say whether the unit would route a report on it and why not."""
    reason = fix.distrust(_RULES)
    return {
        "time": utc_iso(fix.time),
        "lat": round(fix.lat, 7),
        "lon": round(fix.lon, 7),
        "alt": None if fix.alt is None else round(fix.alt, 2),
        "speed": None if fix.speed is None else round(fix.speed, 3),
        "track": None if fix.track is None else round(fix.track, 2),
        "mode": fix.mode,
        "sats": fix.sats,
        "hdop": fix.hdop,
        "trusted": reason is None,
        "reason": reason,
        "date_from_clock": fix.date_from_clock,
    }


def summary(fixes: int, untrusted: int, stats: NmeaStats) -> str:
    return (
        f"{fixes} fixes ({untrusted} not trusted) from {stats.ok} sentences "
        f"({stats.ignored} of other types ignored); dropped: "
        f"{stats.bad_checksum} bad checksums, {stats.malformed} malformed, {stats.oversize} too long, "
        f"{stats.garbage_bytes} bytes of noise"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="NMEA 0183 capture, as read from the receiver's port")
    parser.add_argument("--json", action="store_true", help="one JSON object per fix per line")


def run(args: argparse.Namespace) -> int:
    reader = NmeaReader()
    fixes = untrusted = 0
    try:
        for record in replay(args.file, reader):
            if not args.json and fixes == 0:
                print(_TABLE.format(**{column: column for column in _COLUMNS}))
            fixes += 1
            untrusted += not record["trusted"]
            print(json.dumps(record) if args.json else _row(record))  # JSON: ASCII, whatever the locale
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):  # the reader (e.g. head) has seen enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print(f"gnss-replay: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(summary(fixes, untrusted, reader.stats), file=sys.stderr)
    return 0


def _row(record: dict[str, Any]) -> str:
    def show(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    return _TABLE.format(
        time=record["time"],
        lat=show(record["lat"], ".7f"),
        lon=show(record["lon"], ".7f"),
        alt=show(record["alt"], ".1f"),
        speed=show(record["speed"], ".2f"),
        track=show(record["track"], ".1f"),
        mode=f"{record['mode']}D",
        sats=record["sats"],
        hdop=show(record["hdop"], ".2f"),
        trusted="yes" if record["trusted"] else f"no: {record['reason']}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gnss-replay", description=__doc__.split("\n")[0] if __doc__ else None)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
