"""The NumPy audio level gives exactly aiortc's values, and aiortc's senders use it."""

from __future__ import annotations

import math
import struct

import av
import numpy as np
import pytest

from runtime.audio_level import audio_level_dbov


def aiortc_level(frame: av.AudioFrame) -> int:
    """aiortc 1.16's ``compute_audio_level_dbov``, as it is written there."""
    rms = 0.0
    for (sample,) in struct.Struct("h").iter_unpack(bytes(frame.planes[0])):
        rms += sample * sample
    rms = math.sqrt(rms / (frame.samples * 32767 * 32767))
    return round(min(max(20 * math.log10(rms), -127), 0)) if rms > 0 else -127


def frame(samples: np.ndarray, layout: str) -> av.AudioFrame:
    out = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=layout)
    out.sample_rate = 48000
    return out


SIGNALS = {
    "silence": np.zeros(960, np.int16),
    "one quiet sample": np.eye(1, 960, 500, dtype=np.int16)[0],
    "tone": (8000 * np.sin(np.arange(960) * 2 * np.pi * 440 / 48000)).astype(np.int16),
    "full scale": np.full(960, -32768, np.int16),
    "noise": np.random.default_rng(7).integers(-32768, 32767, 960, dtype=np.int16),
}


@pytest.mark.parametrize("name", sorted(SIGNALS))
@pytest.mark.parametrize("layout", ["mono", "stereo"])
def test_the_level_is_aiortcs(name: str, layout: str) -> None:
    signal = SIGNALS[name] if layout == "mono" else np.repeat(SIGNALS[name], 2)
    f = frame(signal, layout)
    assert audio_level_dbov(f) == aiortc_level(f)


def test_aiortcs_senders_use_it() -> None:
    import aiortc.rtp

    assert aiortc.rtp.compute_audio_level_dbov is audio_level_dbov  # what RTCRtpSender calls
