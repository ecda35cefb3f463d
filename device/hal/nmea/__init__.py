"""NMEA 0183 from a GNSS receiver turned into fixes: bytes in, ``Fix`` out, no I/O.

The serial reader, ``kuaichu device gnss-replay`` and the tests push the same bytes through this
same code, the way pynmea2's ``stream`` module keeps parsing apart from reading. Receivers are
messy: a UART opened mid-sentence, binary UBX frames or line noise between sentences, a sentence
cut short by a buffer overrun. None of that may ever become a position that routes a report, so
a sentence counts only with a matching checksum, and a fix is built only from an epoch in which
no sentence says the fix is invalid.
"""

from device.hal.nmea.fixes import Fix, FixAccumulator
from device.hal.nmea.sentences import (
    KNOT_MPS,
    TALKERS,
    Gga,
    Gsa,
    Gsv,
    NmeaError,
    Rmc,
    Sentence,
    Vtg,
    checksum,
    parse_sentence,
    with_checksum,
)
from device.hal.nmea.stream import MAX_SENTENCE_CHARS, LineSplitter, NmeaReader, NmeaStats

__all__ = [
    "KNOT_MPS",
    "MAX_SENTENCE_CHARS",
    "TALKERS",
    "Fix",
    "FixAccumulator",
    "Gga",
    "Gsa",
    "Gsv",
    "LineSplitter",
    "NmeaError",
    "NmeaReader",
    "NmeaStats",
    "Rmc",
    "Sentence",
    "Vtg",
    "checksum",
    "parse_sentence",
    "with_checksum",
]
