"""NMEA 0183 from a GNSS receiver turned into fixes: bytes in, ``Fix`` out, no I/O.

The serial reader, ``kuaichu device gnss-replay`` and the tests push the same bytes through this
same code, the way pynmea2's ``stream`` module keeps parsing apart from reading. Receivers are
messy: a UART opened mid-sentence, binary UBX frames or line noise between sentences, a sentence
cut short by a buffer overrun. None of that may ever become a position that routes a report, so
a wrong checksum always drops a sentence, and a sentence without one counts only from a receiver
that never sends checksums (and its fixes are never trusted). Which sentences make a fix follows
gpsd's NMEA driver, so ``gnss-replay`` shows what gpsd would report for the same bytes.
"""

from device.hal.nmea.fixes import Fix, FixAccumulator
from device.hal.nmea.sentences import (
    KNOT_MPS,
    Gga,
    Gll,
    Gns,
    Gsa,
    Gsv,
    Located,
    NmeaError,
    Rmc,
    Sentence,
    Vtg,
    Zda,
    checksum,
    parse_sentence,
    with_checksum,
)
from device.hal.nmea.stream import MAX_SENTENCE_CHARS, LineSplitter, NmeaReader, NmeaStats

__all__ = [
    "KNOT_MPS",
    "MAX_SENTENCE_CHARS",
    "Fix",
    "FixAccumulator",
    "Gga",
    "Gll",
    "Gns",
    "Gsa",
    "Gsv",
    "LineSplitter",
    "Located",
    "NmeaError",
    "NmeaReader",
    "NmeaStats",
    "Rmc",
    "Sentence",
    "Vtg",
    "Zda",
    "checksum",
    "parse_sentence",
    "with_checksum",
]
