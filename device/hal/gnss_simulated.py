"""A fake GNSS receiver for the demo and the tests, read by the real serial backend.

It is not a second code path: a pseudo-terminal stands in for the UART, a thread plays an NMEA
capture into its master side at the capture's own epoch rate, and ``SerialGnss`` opens the slave
side with pyserial exactly as it opens ``/dev/serial0`` on a Pi. Each sentence's UTC time (and
RMC's date) is rewritten to the moment it is sent, with its checksum recomputed, so the fixes are
fresh enough to be trusted; lines of the capture that are not good sentences (noise, bad
checksums) are played as they are, so a capture with faults exercises the same fault handling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import threading
import time
import tty
from datetime import UTC, datetime
from datetime import time as TimeOfDay
from importlib import resources
from itertools import pairwise

from device.config import GnssSection
from device.hal.gnss_serial import SerialGnss
from device.hal.nmea import Gga, NmeaError, Rmc, checksum, parse_sentence, with_checksum

log = logging.getLogger(__name__)

DEFAULT_TRACK = resources.files("device.sim").joinpath("kunming_track.nmea")
# Sentence type -> index of its UTC time field (the address is field 0).
_TIME_FIELDS = {"GGA": 1, "RMC": 1, "GLL": 5, "GNS": 1}
_RMC_DATE_FIELD = 9
_SECONDS_PER_DAY = 86400


class SimulatedGnss(SerialGnss):
    """Plays ``cfg.track_file`` (default: a drive through Kunming's Wuhua district), looping."""

    def __init__(self, cfg: GnssSection) -> None:
        super().__init__(cfg, port="")
        self._receiver: FakeReceiver | None = None

    async def start(self) -> None:
        if self._receiver is None:
            source = self.cfg.track_file if self.cfg.track_file is not None else DEFAULT_TRACK
            try:
                capture = await asyncio.to_thread(source.read_bytes)
            except OSError as exc:
                log.error("gnss: cannot read the simulated track %s: %s", source, exc.strerror)
                self._started()
                self._port_problem(f"cannot read simulated track {source}")
                return
            self._receiver = FakeReceiver(capture)
            self.port = self._receiver.port
            log.info("gnss: simulated receiver playing %s on %s", source, self.port)
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            await asyncio.to_thread(receiver.close)


class FakeReceiver:
    """A pseudo-terminal whose slave side (``port``) talks NMEA like a receiver on a UART.

    Writes never block: when nobody reads and the terminal's buffer is full, an epoch is lost,
    as it would be on a real UART.
    """

    def __init__(self, capture: bytes) -> None:
        self._epochs, self._interval = split_epochs(capture)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # bytes written before pyserial opens the port must not be cooked
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._play, name="gnss-fake-receiver", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join()
        os.close(self._master)
        os.close(self._slave)

    def _play(self) -> None:
        due = time.monotonic()
        while self._epochs:
            for epoch in self._epochs:
                if self._stopping.wait(max(0.0, due - time.monotonic())):
                    return
                now = datetime.now(UTC)
                data = b"".join(restamp(line, now).encode("latin-1") + b"\r\n" for line in epoch)
                try:
                    os.write(self._master, data)
                except BlockingIOError:
                    log.debug("gnss: fake receiver dropped an epoch, nobody is reading")
                due = max(due + self._interval, time.monotonic() - self._interval)


def split_epochs(capture: bytes) -> tuple[list[list[str]], float]:
    """The capture's lines grouped by receiver epoch, and the capture's epoch spacing in seconds.

    A GGA or RMC with a new time opens the next epoch. The spacing is the median step between
    epoch times, so a gap in the capture does not slow the playback; 1 s if there is none.
    """
    epochs: list[list[str]] = []
    opened: list[TimeOfDay] = []
    for raw in capture.splitlines():
        line = raw.decode("latin-1")
        try:
            sentence = parse_sentence(line)
        except NmeaError:
            sentence = None
        new_time = None
        if isinstance(sentence, Gga | Rmc) and sentence.time is not None and sentence.time not in opened[-1:]:
            new_time = sentence.time
        if not epochs or (new_time is not None and opened):
            epochs.append([])  # what precedes the first time (start-up banners) joins the first epoch
        if new_time is not None:
            opened.append(new_time)
        epochs[-1].append(line)
    seconds = [t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6 for t in opened]
    steps = [step for a, b in pairwise(seconds) if (step := (b - a) % _SECONDS_PER_DAY) > 0]
    interval = min(max(statistics.median(steps), 0.05), 10.0) if steps else 1.0
    return [epoch for epoch in epochs if any(epoch)], interval


def restamp(line: str, now: datetime) -> str:
    """``line`` with its UTC time (and RMC's date) set to ``now`` and its checksum recomputed.

    The time keeps as many decimals as the capture gave. A line that is not a sentence with a
    good checksum, or has no time, comes back unchanged.
    """
    body, star, given = line.removeprefix("$").partition("*")
    if not line.startswith("$") or not star or given.upper() != _checksum_or_none(body):
        return line
    fields = body.split(",")
    index = _TIME_FIELDS.get(fields[0][2:])
    if index is None or len(fields) <= index or not fields[index]:
        return line
    decimals = len(fields[index].partition(".")[2])
    stamp = now.strftime("%H%M%S")
    if decimals:
        stamp += "." + f"{now.microsecond:06d}".ljust(decimals, "0")[:decimals]
    fields[index] = stamp
    if fields[0][2:] == "RMC" and len(fields) > _RMC_DATE_FIELD and fields[_RMC_DATE_FIELD]:
        fields[_RMC_DATE_FIELD] = now.strftime("%d%m%y")
    return with_checksum(",".join(fields))


def _checksum_or_none(body: str) -> str | None:
    try:
        return checksum(body)
    except UnicodeEncodeError:  # not ASCII: line noise in the capture
        return None
