"""The determination's font: Noto Serif CJK SC, with TrueType outlines, subset.

Debian ships Noto CJK as a CFF (PostScript-outline) collection. fpdf2 embeds such a font through
an encoding CMap that text extractors read badly (pdfminer gets nothing, pypdf a NUL per
character), and parsing the 20 MB collection for every document costs about half a second. So the
GB 2312 repertoire (every character a name or place is usually written in) plus ASCII and the CJK
punctuation is converted once to TrueType outlines and cached on disk; fpdf2 then embeds it with
Identity-H and a plain ToUnicode map, and subsets it per document. A document with a character
outside that set (a rare character in a name) gets a font made for its own characters.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable

SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc")
SOURCE_SC = 2  # the collection's Simplified Chinese face
_MAXP_ZERO = (
    "maxZones",
    "maxTwilightPoints",
    "maxStorage",
    "maxFunctionDefs",
    "maxInstructionDefs",
    "maxStackElements",
    "maxSizeOfInstructions",
    "maxComponentElements",
    "maxPoints",
    "maxContours",
    "maxCompositePoints",
    "maxCompositeContours",
    "maxComponentDepth",
)


class FontError(Exception):
    pass


def common_characters() -> frozenset[int]:
    """ASCII, CJK punctuation, full-width forms and every character of GB 2312."""
    chars = set(range(0x20, 0x7F)) | set(range(0x3000, 0x3040)) | set(range(0xFF00, 0xFF60)) | {0xB7, 0x2014, 0x2026}
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(ord(bytes([hi, lo]).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return frozenset(chars)


def _to_truetype(font: TTFont) -> None:
    """Replace the CFF outlines by quadratic TrueType ones, in place."""
    glyphs, order = font.getGlyphSet(), font.getGlyphOrder()
    glyf = newTable("glyf")
    glyf.glyphOrder, glyf.glyphs = order, {}
    for name in order:
        pen = TTGlyphPen(glyphs)
        glyphs[name].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    font["loca"], font["glyf"] = newTable("loca"), glyf
    for table in ("CFF ", "VORG"):
        if table in font:
            del font[table]
    maxp = font["maxp"] = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for attr in _MAXP_ZERO:
        setattr(maxp, attr, 0)
    maxp.maxZones, maxp.numGlyphs = 1, len(order)
    font["head"].indexToLocFormat = 0
    font["head"].glyphDataFormat = 0
    font["post"].formatType = 3.0
    font.sfntVersion = "\x00\x01\x00\x00"


def build(unicodes: frozenset[int], out: Path) -> None:
    """A TrueType font of ``unicodes`` from the Noto collection, written atomically to ``out``."""
    if not SOURCE.exists():
        raise FontError(f"{SOURCE} missing: install.sh installs fonts-noto-cjk")
    font = TTCollection(str(SOURCE), lazy=True).fonts[SOURCE_SC]
    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.desubroutinize = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=unicodes)
    subsetter.subset(font)
    _to_truetype(font)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            font.save(f)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DocumentFont:
    """The cached common font, built on first use (about 10 s of one core) under a lock."""

    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._common: frozenset[int] | None = None

    @property
    def common_path(self) -> Path:
        stat = SOURCE.stat()
        tag = hashlib.sha256(f"{SOURCE}:{stat.st_size}:{stat.st_mtime_ns}:1".encode()).hexdigest()[:12]
        return self._cache_dir / f"noto-serif-sc-gb2312-{tag}.ttf"

    def prepare(self) -> tuple[Path, frozenset[int]]:
        """The common font, built first if it is not cached yet (the worker does this at start-up)."""
        with self._lock:
            if self._common is None:
                self._common = common_characters()
            path = self.common_path
            if not path.exists():
                build(self._common, path)
            return path, self._common

    def for_text(self, text: str, scratch: Path) -> Path:
        """A font file covering ``text``: the common one, or one built into ``scratch`` for it."""
        path, common = self.prepare()
        needed = {ord(c) for c in text if not c.isspace()}
        if needed <= common:
            return path
        own = scratch / "document-font.ttf"
        build(frozenset(needed | self._common_core()), own)
        return own

    @staticmethod
    def _common_core() -> set[int]:
        return set(range(0x20, 0x7F)) | set(range(0x3000, 0x3040)) | set(range(0xFF00, 0xFF60))
