"""The plate reader's one exception root, so a caller catches exactly what the reader can raise."""

from __future__ import annotations


class OcrError(Exception):
    """The plate reader could not do what it was asked."""


class ModelError(OcrError):
    """A model file is missing, unreadable or not the model this reader expects: OCR is off."""


class ImageError(OcrError):
    """An image that cannot be read: not an image, truncated, corrupt, or too large."""
