"""The audio check: the speaker plays a test tone and the microphone must hear it.

The recording is cut into 100 ms blocks and each block's spectrum compared at the tone frequency
with the block's own noise floor (the median of its spectrum), so a loud cabin does not pass for a
tone and a quiet one does not hide it. A pass needs the tone in at least half of the time it
played, loud enough and well above the floor: proof that speaker, microphone and both directions
of the sound card work.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass

import numpy as np

from device.hal.audio import Audio, AudioError, tone
from device.selftest.outcome import Outcome

TONE_HZ = 1000.0
TONE_S = 1.0
TONE_AMPLITUDE = 0.5
LISTEN_S = TONE_S + 0.6  # the sound card's output and input latency on top
BLOCK_S = 0.1
MIN_LEVEL_DBFS = -60.0
MIN_SNR_DB = 15.0
SILENCE_DBFS = -120.0  # below the quietest a 16-bit sample can be
_TINY = 1e-12


@dataclass(frozen=True)
class Heard:
    seconds: float  # how long the tone stood out of the noise
    level_dbfs: float  # the tone's loudest block, as a sine's amplitude against full scale
    snr_db: float  # that block's tone against its noise floor


def listen_for(pcm: bytes, sample_rate: int, freq_hz: float) -> Heard:
    """How much of a ``freq_hz`` tone 16-bit mono ``pcm`` holds."""
    samples = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768
    size = round(BLOCK_S * sample_rate)
    count = samples.size // size
    if count == 0:
        return Heard(0.0, -math.inf, 0.0)
    blocks = samples[: count * size].reshape(count, size)
    window = np.hanning(size)
    spectra = np.abs(np.fft.rfft(blocks * window, axis=1))
    at = round(freq_hz * size / sample_rate)
    near = slice(max(at - 1, 0), at + 2)
    peaks = spectra[:, near].max(axis=1)
    rest = np.delete(spectra, np.arange(max(at - 4, 0), at + 5), axis=1)
    floors = np.median(rest, axis=1)
    snrs = 20 * np.log10(np.maximum(peaks, _TINY) / np.maximum(floors, _TINY))
    levels = 20 * np.log10(np.maximum(2 * peaks / window.sum(), _TINY))
    heard = (snrs >= MIN_SNR_DB) & (levels >= MIN_LEVEL_DBFS)
    best = int(np.argmax(peaks))
    return Heard(float(heard.sum()) * BLOCK_S, float(levels[best]), float(snrs[best]))


async def check_audio(audio: Audio) -> Outcome:
    recording = asyncio.create_task(audio.record(LISTEN_S))
    await asyncio.sleep(0)  # listening before the first sample leaves the speaker
    try:
        await audio.play(tone(TONE_HZ, TONE_S, audio.sample_rate, TONE_AMPLITUDE))
    except AudioError as exc:
        recording.cancel()
        with contextlib.suppress(asyncio.CancelledError, AudioError):
            await recording
        return Outcome.failed(f"cannot play the test tone: {exc}")
    try:
        pcm = await recording
    except AudioError as exc:
        return Outcome.failed(f"cannot record: {exc}")
    heard = listen_for(pcm, audio.sample_rate, TONE_HZ)
    level = f"{heard.level_dbfs:.0f} dBFS" if heard.level_dbfs > SILENCE_DBFS else "silence"
    if heard.seconds < TONE_S / 2:
        return Outcome.failed(
            f"the microphone did not hear the speaker's {TONE_HZ:g} Hz tone (heard {heard.seconds:.1f} s; "
            f"loudest {level}, {heard.snr_db:.0f} dB above the noise floor): check speaker, microphone and volume"
        )
    return Outcome.passed(
        f"{TONE_HZ:g} Hz tone heard for {heard.seconds:.1f} of {TONE_S:g} s at {level}, "
        f"{min(heard.snr_db, 99):.0f} dB above the noise floor"
    )
