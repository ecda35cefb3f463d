"""Recorded voice prompts (WAV), shipped as package data; see README.md."""
