"""Raw receiver bytes, in any chunking, through the sentence parser and the epoch merger.

A UART opened mid-sentence, binary frames on the same line (UBX, SiRF binary, RTCM), AIS's
``!`` sentences or line noise between sentences are counted and dropped here, never held longer
than one sentence. Lines may end in CR LF, a bare LF or a bare CR, as receivers send them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from device.hal.nmea.fixes import Fix, FixAccumulator
from device.hal.nmea.sentences import NmeaError, parse_sentence

log = logging.getLogger(__name__)

# NMEA 0183 allows 82 characters; some receivers' sentences run longer, but a "line" past this is
# two sentences run together or noise that happened to contain a '$'.
MAX_SENTENCE_CHARS = 120
_LINE_END = re.compile(rb"[\r\n]")


@dataclass
class NmeaStats:
    """What the receiver has sent so far, for the device's GNSS health."""

    ok: int = 0
    ignored: int = 0  # good checksum, a sentence type we do not use
    bad_checksum: int = 0
    malformed: int = 0  # no checksum (usually cut short) or fields that do not parse
    oversize: int = 0
    garbage_bytes: int = 0

    @property
    def bad(self) -> int:
        return self.bad_checksum + self.malformed + self.oversize


class LineSplitter:
    """Raw bytes in any chunking to candidate sentences: text from a ``$`` to the line end.

    Whatever precedes the last ``$`` of a line is noise (a UBX frame, a sentence cut short by
    the next one); a line without ``$``, or with bytes that are not printable ASCII after it, is
    noise too. Noise is counted in ``garbage_bytes`` and never held longer than one sentence.
    """

    def __init__(self, stats: NmeaStats | None = None, max_chars: int = MAX_SENTENCE_CHARS) -> None:
        self.stats = stats if stats is not None else NmeaStats()
        self._max = max_chars
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[str]:
        self._buf += chunk
        *complete, rest = _LINE_END.split(self._buf)
        lines: list[str] = []
        for line in complete:
            if line and (sentence := self._candidate(line)) is not None:
                lines.append(sentence)
        self._buf = bytearray(rest)
        if len(self._buf) > self._max:
            start = self._buf.rfind(b"$")
            if start < 0 or len(self._buf) - start > self._max:
                if start >= 0:
                    self.stats.oversize += 1
                self.stats.garbage_bytes += len(self._buf)
                self._buf.clear()
            else:
                self.stats.garbage_bytes += start
                del self._buf[:start]
        return lines

    def _candidate(self, line: bytes) -> str | None:
        start = line.rfind(b"$")
        if start < 0:
            self.stats.garbage_bytes += len(line)
            return None
        self.stats.garbage_bytes += start
        sentence = line[start:].rstrip()  # trailing blanks and tabs, as gpsd skips them
        if len(sentence) > self._max:
            self.stats.oversize += 1
            self.stats.garbage_bytes += len(sentence)
            return None
        text = sentence.decode("latin-1")
        if not text.isascii() or not text.isprintable():
            self.stats.garbage_bytes += len(sentence)
            return None
        return text


class NmeaReader:
    """Splitter, parser and accumulator in one: what a serial port or a capture file is fed to.

    A sentence without a checksum is taken only from a receiver that has never sent one: once a
    checksum has been seen, a line without one is a sentence cut short and is dropped.
    """

    def __init__(self, epochs: FixAccumulator | None = None) -> None:
        self.stats = NmeaStats()
        self._splitter = LineSplitter(self.stats)
        self._epochs = epochs if epochs is not None else FixAccumulator()
        self._checksums_seen = False

    @property
    def sats_in_view(self) -> int | None:
        return self._epochs.sats_in_view

    def feed(self, chunk: bytes) -> list[Fix]:
        fixes: list[Fix] = []
        for line in self._splitter.feed(chunk):
            checked = "*" in line
            try:
                sentence = parse_sentence(line, allow_unchecked=not self._checksums_seen)
            except NmeaError as exc:
                if exc.reason == "bad_checksum":
                    self.stats.bad_checksum += 1
                else:
                    self.stats.malformed += 1
                log.debug("dropped a sentence: %s", exc)
                continue
            self._checksums_seen |= checked
            if sentence is None:
                self.stats.ignored += 1
                continue
            self.stats.ok += 1
            fixes += self._epochs.add(sentence, checked=checked)
        return fixes

    def flush(self) -> list[Fix]:
        """At the end of a capture: the last epoch's fix, which no next epoch will close."""
        fix = self._epochs.flush()
        return [] if fix is None else [fix]
