"""A determination's text as a PDF extractor reads it, with whitespace removed: the renderer may
break a line or space out characters anywhere, and the tests check the words, not the layout."""

from __future__ import annotations

import io

import pypdf


def text_of(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "".join("".join(page.extract_text().split()) for page in reader.pages)
