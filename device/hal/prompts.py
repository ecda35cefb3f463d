"""Spoken guidance for a driver who has no screen, from clips recorded once and shipped.

The clips are 16 kHz mono 16-bit WAV files in ``device/prompts`` (``device/sim/make_prompts.py``
makes them with espeak-ng); speech synthesis never runs on the device. A case number is spoken
one character at a time from per-character clips, in groups of four counted from the end, so the
driver can write it down from the speaker.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from importlib.resources import files
from pathlib import Path

import numpy as np

from device.hal.audio import Audio

log = logging.getLogger(__name__)

CLIP_RATE = 16000
CLIPS_DIR = Path(str(files("device.prompts")))

# The sentence each prompt key speaks: what ``device.reporting.Prompt`` names, and the self-test's requests.
PROMPT_TEXTS: dict[str, str] = {
    "safety": "请将车辆移至安全地点，在车后方五十至一百米处放置警告标志，高速公路一百五十米以外",
    "reporting": "正在报警，请稍候",
    "case_number": "已接通，案件编号",
    "retrying": "网络中断，正在重试",
    "failed": "报警失败，请拨打122",
    "dispatcher": "民警将通过视频与您联系",
    "clear_road": "请立即驶离现场",
    # Requests of ``kuaichu device selftest`` to the technician at the unit.
    "selftest_button": "请按住报警按钮",
    "selftest_hazard": "请打开双闪灯",
}
# Characters a case number is spelt with; each has a clip ``char-{c}.wav``.
SPELLABLE = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

CHAR_GAP_S = 0.12
GROUP_GAP_S = 0.45
GROUP_SIZE = 4


def clip_file(name: str) -> str:
    """File name of a prompt key's clip, or of a spelled character's clip."""
    return f"char-{name}.wav" if name in SPELLABLE else f"{name}.wav"


class PromptError(Exception):
    """A prompt that has no clip: a missing file or a key nobody recorded."""


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """16-bit mono PCM at ``src_rate`` as the same sound at ``dst_rate``.

    Linear interpolation, after a windowed-sinc low-pass when the rate drops so that nothing
    above the new Nyquist folds back; plenty for speech through a car speaker.
    """
    if src_rate == dst_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if dst_rate < src_rate:
        cutoff = 0.5 * dst_rate / src_rate  # in cycles per input sample
        taps = np.arange(-32, 33)
        kernel = 2 * cutoff * np.sinc(2 * cutoff * taps) * np.hamming(taps.size)
        samples = np.convolve(samples, kernel / kernel.sum(), mode="same")
    count = max(1, round(samples.size * dst_rate / src_rate))
    positions = np.arange(count) * (src_rate / dst_rate)
    out = np.interp(positions, np.arange(samples.size), samples)
    pcm_out: bytes = np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes()
    return pcm_out


def read_clip(path: Path) -> bytes:
    """The PCM frames of one shipped clip, checked to be what the player expects."""
    with wave.open(str(path), "rb") as clip:
        shape = (clip.getnchannels(), clip.getsampwidth(), clip.getframerate())
        if shape != (1, 2, CLIP_RATE):
            raise PromptError(f"{path.name}: want mono 16-bit {CLIP_RATE} Hz, got {shape}")
        return clip.readframes(clip.getnframes())


class Prompts:
    """Plays prompts through an ``Audio`` device; each prompt is one ``play``, never interleaved."""

    def __init__(self, audio: Audio, clips_dir: Path = CLIPS_DIR) -> None:
        self._audio = audio
        self._clips_dir = clips_dir
        self._rate = audio.sample_rate
        self._cache: dict[str, bytes] = {}

    async def say(self, key: str) -> None:
        """Speak the prompt ``key`` (one of ``PROMPT_TEXTS``)."""
        if key not in PROMPT_TEXTS:
            raise PromptError(f"no prompt {key!r}")
        log.debug("prompt: %s", key)
        await self._play([await self._clip(key)])

    async def say_case_number(self, case_no: str) -> None:
        """Speak "connected, case number" and then ``case_no`` character by character.

        Letters are spoken whatever their case; anything with no clip (dashes, spaces) is
        skipped, and the characters are grouped in fours from the end.
        """
        log.debug("prompt: case number %s", case_no)
        parts = [await self._clip("case_number"), self._silence(GROUP_GAP_S)]
        spelt = [char for char in case_no.upper() if char in SPELLABLE]
        for index, char in enumerate(spelt):
            parts.append(await self._clip(char))
            left = len(spelt) - index - 1
            if left:
                parts.append(self._silence(GROUP_GAP_S if left % GROUP_SIZE == 0 else CHAR_GAP_S))
        await self._play(parts)

    async def _play(self, parts: list[bytes]) -> None:
        await self._audio.play(b"".join(parts))

    async def _clip(self, name: str) -> bytes:
        pcm = self._cache.get(name)
        if pcm is None:
            path = self._clips_dir / clip_file(name)
            try:
                raw = await asyncio.to_thread(read_clip, path)
            except FileNotFoundError as exc:
                raise PromptError(f"no clip {path.name}") from exc
            pcm = await asyncio.to_thread(resample_pcm16, raw, CLIP_RATE, self._rate)
            self._cache[name] = pcm
        return pcm

    def _silence(self, seconds: float) -> bytes:
        return bytes(2 * round(seconds * self._rate))
