"""The shipped voice prompts and their playback through the simulated audio device."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from device.config import AudioSection
from device.hal.audio_simulated import SimulatedAudio
from device.hal.prompts import (
    CHAR_GAP_S,
    CLIP_RATE,
    CLIPS_DIR,
    GROUP_GAP_S,
    PROMPT_TEXTS,
    SPELLABLE,
    PromptError,
    Prompts,
    clip_file,
    read_clip,
    resample_pcm16,
)
from device.reporting import Prompt
from device.sim.make_prompts import normalized, spoken, trimmed


def tone(freq: float, rate: int, seconds: float) -> bytes:
    t = np.arange(round(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 10000).astype("<i2").tobytes()


def dominant_freq(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


def test_every_prompt_the_state_machine_asks_for_has_a_text() -> None:
    assert {prompt.value for prompt in Prompt} <= set(PROMPT_TEXTS)


@pytest.mark.parametrize("name", [*PROMPT_TEXTS, *SPELLABLE])
def test_every_clip_is_shipped_in_the_player_format(name: str) -> None:
    path = CLIPS_DIR / clip_file(name)
    with wave.open(str(path), "rb") as clip:
        assert (clip.getnchannels(), clip.getsampwidth(), clip.getframerate()) == (1, 2, CLIP_RATE)
    pcm = read_clip(path)
    assert 0.15 < len(pcm) / 2 / CLIP_RATE < 15
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    assert samples.max() > 16000  # normalised speech, not silence
    # trimmed: speech starts and ends within a tenth of a second of the file's ends
    loud = np.flatnonzero(samples > 1000)
    assert loud[0] < CLIP_RATE * 0.1
    assert samples.size - loud[-1] < CLIP_RATE * 0.1


def test_the_clips_stay_small() -> None:
    total = sum(path.stat().st_size for path in Path(CLIPS_DIR).glob("*.wav"))
    assert total < 1_500_000


def test_read_clip_refuses_another_format(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(2)
        clip.setsampwidth(2)
        clip.setframerate(CLIP_RATE)
        clip.writeframes(bytes(400))
    with pytest.raises(PromptError, match=r"stereo\.wav"):
        read_clip(path)


@pytest.mark.parametrize(("src", "dst"), [(16000, 8000), (16000, 48000), (22050, 16000), (16000, 44100)])
def test_resample_keeps_length_and_pitch(src: int, dst: int) -> None:
    pcm = tone(440, src, 0.5)
    out = resample_pcm16(pcm, src, dst)
    assert abs(len(out) // 2 - dst // 2) <= 1
    assert abs(dominant_freq(out, dst) - 440) < 5


def test_downsampling_filters_what_would_fold_back() -> None:
    # 6 kHz cannot exist at 8 kHz; without the low-pass it would come back as 2 kHz
    out = resample_pcm16(tone(6000, 16000, 0.5), 16000, 8000)
    samples = np.frombuffer(out, dtype="<i2").astype(np.float64)
    assert np.sqrt(np.mean(samples[200:-200] ** 2)) < 10000 / np.sqrt(2) / 10


def test_resample_same_rate_is_identity() -> None:
    pcm = tone(440, 16000, 0.1)
    assert resample_pcm16(pcm, 16000, 16000) is pcm


def test_spoken_fixes_polyphones_and_the_phone_number() -> None:
    assert spoken(PROMPT_TEXTS["retrying"]).endswith("正在chong2shi4")
    assert "yao1 er4 er4" in spoken(PROMPT_TEXTS["failed"])
    assert "122" not in spoken(PROMPT_TEXTS["failed"])


def test_trim_and_normalise() -> None:
    speech = np.frombuffer(tone(300, CLIP_RATE, 0.5), dtype="<i2")
    padded = np.concatenate([np.zeros(CLIP_RATE, "<i2"), speech, np.zeros(CLIP_RATE, "<i2")])
    cut = trimmed(padded, CLIP_RATE)
    assert speech.size <= cut.size < speech.size + CLIP_RATE * 0.1
    louder = normalized(cut)
    assert 29000 < np.abs(louder.astype(np.int32)).max() <= 32767


# --- playback through the simulated sound card ----------------------------------------------


@pytest.fixture
async def audio16k() -> AsyncIterator[SimulatedAudio]:
    audio = SimulatedAudio(AudioSection(backend="simulated", sample_rate=CLIP_RATE))
    await audio.start()
    yield audio
    await audio.stop()


@pytest.fixture
def tone_clips(tmp_path: Path) -> dict[str, bytes]:
    """A clip folder where every clip is a short tone of its own pitch, easy to find again."""
    clips = {"case_number": tone(200, CLIP_RATE, 0.1)}
    for index, char in enumerate(SPELLABLE):
        clips[char] = tone(300 + 50 * index, CLIP_RATE, 0.03)
    for name, pcm in clips.items():
        with wave.open(str(tmp_path / clip_file(name)), "wb") as clip:
            clip.setnchannels(1)
            clip.setsampwidth(2)
            clip.setframerate(CLIP_RATE)
            clip.writeframes(pcm)
    return clips


def silence(seconds: float, rate: int = CLIP_RATE) -> bytes:
    return bytes(2 * round(seconds * rate))


async def test_say_plays_the_shipped_clip(audio16k: SimulatedAudio) -> None:
    await Prompts(audio16k).say("reporting")
    clip = read_clip(CLIPS_DIR / "reporting.wav")
    assert audio16k.speaker.total_samples == len(clip) // 2
    assert audio16k.speaker.last(60) == clip


async def test_case_number_spelt_in_groups_of_four_from_the_end(
    audio16k: SimulatedAudio, tone_clips: dict[str, bytes], tmp_path: Path
) -> None:
    await Prompts(audio16k, tmp_path).say_case_number("k-12345")
    c, g = silence(CHAR_GAP_S), silence(GROUP_GAP_S)
    clips = tone_clips
    expected = [clips["case_number"], g, clips["K"], c, clips["1"], g, clips["2"], c, clips["3"], c]
    expected += [clips["4"], c, clips["5"]]
    assert audio16k.speaker.last(60) == b"".join(expected)


async def test_prompts_are_resampled_to_the_sound_card(tone_clips: dict[str, bytes], tmp_path: Path) -> None:
    audio = SimulatedAudio(AudioSection(backend="simulated", sample_rate=8000))
    await audio.start()
    try:
        await Prompts(audio, tmp_path).say_case_number("7")
    finally:
        await audio.stop()
    played = audio.speaker.last(60)
    want_s = (len(tone_clips["case_number"]) + len(tone_clips["7"])) / 2 / CLIP_RATE + GROUP_GAP_S
    assert abs(len(played) / 2 - want_s * 8000) <= 2
    assert abs(dominant_freq(played[: len(tone_clips["case_number"]) // 4], 8000) - 200) < 15


async def test_unknown_prompt_and_missing_clip(audio16k: SimulatedAudio, tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="no prompt"):
        await Prompts(audio16k).say("sing")
    with pytest.raises(PromptError, match=r"no clip dispatcher\.wav"):
        await Prompts(audio16k, tmp_path).say("dispatcher")
    assert audio16k.speaker.total_samples == 0
