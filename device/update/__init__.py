"""Signed over-the-air updates on the unit (docs/updates.md)."""
