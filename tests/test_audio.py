"""The audio HAL: tones, the simulated speaker and microphone, and PyAudio failing softly with no sound card."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from device.config import AudioSection
from device.hal.audio import AudioError, make_audio, rms, tone
from device.hal.audio_pyaudio import PyAudioAudio
from device.hal.audio_simulated import SimulatedAudio
from protocol.messages import PartState

TIMEOUT_S = 20  # only so a broken clock fails the test instead of hanging it
RATE = 16000


def zero_crossings(pcm: bytes) -> int:
    samples = np.frombuffer(pcm, "<i2").astype(np.int32)
    signs = np.sign(samples[samples != 0])
    return int(np.count_nonzero(signs[1:] != signs[:-1]))


@pytest.mark.parametrize(("freq", "rate"), [(440.0, 16000), (1000.0, 8000), (2500.0, 48000)])
def test_tone_has_its_frequency_and_level(freq: float, rate: int) -> None:
    pcm = tone(freq, 1.0, rate, amplitude=0.5)
    assert len(pcm) == rate * 2
    assert abs(zero_crossings(pcm) - 2 * freq) <= 2
    assert rms(pcm) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


@pytest.fixture
async def audio() -> AsyncIterator[SimulatedAudio]:
    sim = make_audio(AudioSection(backend="simulated", sample_rate=RATE))
    assert isinstance(sim, SimulatedAudio)
    sim.loopback = 0.0
    await sim.start()
    yield sim
    await sim.stop()


async def test_speaker_keeps_what_was_played_and_play_waits_for_it(audio: SimulatedAudio) -> None:
    beep = tone(1000, 0.2, RATE)
    playing = asyncio.create_task(audio.play(beep))
    await asyncio.wait_for(audio.read_chunk(), TIMEOUT_S)  # one tick of the sound card's clock
    assert not playing.done()
    assert 0 < audio.speaker.total_samples < 0.2 * RATE  # under way, not done
    await asyncio.wait_for(playing, TIMEOUT_S)
    assert audio.speaker.total_samples == 0.2 * RATE  # returned once all of it was played
    assert audio.speaker.last(0.1) == beep[-int(0.1 * RATE) * 2 :]
    assert audio.speaker.rms(0.2) == pytest.approx(rms(beep))
    await audio.play(b"\x00\x00" * 800)
    assert audio.speaker.total_samples == 0.25 * RATE
    assert audio.speaker.rms(0.05) == 0.0
    assert audio.health() == (PartState.OK, f"simulated, {RATE} Hz")


async def test_microphone_gives_silence_a_tone_or_injected_pcm(audio: SimulatedAudio) -> None:
    assert rms(await asyncio.wait_for(audio.record(0.2), TIMEOUT_S)) == 0.0
    audio.microphone.tone(500, amplitude=0.3)
    heard = await asyncio.wait_for(audio.record(0.5), TIMEOUT_S)
    assert len(heard) == 0.5 * RATE * 2
    assert abs(zero_crossings(heard) - 500) <= 3
    assert rms(heard) == pytest.approx(0.3 / np.sqrt(2), rel=0.02)
    audio.microphone.silence()
    voice = tone(300, 0.1, RATE, amplitude=0.2)
    audio.microphone.inject(voice)
    heard = await asyncio.wait_for(audio.record(0.2), TIMEOUT_S)
    assert heard.startswith(voice)
    assert rms(heard[len(voice) :]) == 0.0
    assert audio.microphone.injected_pending == 0


async def test_chunks_are_20ms_and_every_reader_gets_all_of_them(audio: SimulatedAudio) -> None:
    audio.microphone.inject(np.arange(4000, dtype="<i2").tobytes())
    live = [await asyncio.wait_for(audio.read_chunk(), TIMEOUT_S)]
    recording = asyncio.create_task(audio.record(0.1))
    while not recording.done():
        live.append(await asyncio.wait_for(audio.read_chunk(), TIMEOUT_S))
    assert all(len(chunk) == audio.chunk_bytes == 640 for chunk in live)
    ramp = np.frombuffer(b"".join(live), "<i2")
    assert np.array_equal(ramp, np.arange(ramp.size)), "read_chunk lost or reordered audio"
    recorded = np.frombuffer(recording.result(), "<i2")
    assert recorded.size == 1600
    assert recorded[0] % 320 == 0 and np.array_equal(np.diff(recorded), np.ones(1599)), "record lost audio"


async def test_microphone_hears_the_speaker_through_loopback(audio: SimulatedAudio) -> None:
    audio.loopback = 0.5
    recording = asyncio.create_task(audio.record(0.5))
    await audio.play(tone(800, 0.3, RATE, amplitude=0.4))
    heard = await asyncio.wait_for(recording, TIMEOUT_S)
    assert rms(heard) > 0.05
    assert abs(zero_crossings(heard) - 2 * 800 * 0.3) <= 6


async def test_stopped_audio_refuses_and_wakes_readers() -> None:
    sim = SimulatedAudio(AudioSection(backend="simulated"))
    with pytest.raises(AudioError):
        await sim.play(tone(440, 0.1, sim.sample_rate))
    with pytest.raises(AudioError):
        await sim.read_chunk()
    await sim.start()
    await asyncio.wait_for(sim.read_chunk(), TIMEOUT_S)
    reading = asyncio.create_task(sim.read_chunk())
    playing = asyncio.create_task(sim.play(tone(440, 5.0, sim.sample_rate)))
    await asyncio.sleep(0)
    await sim.stop()
    with pytest.raises(AudioError, match="stopped"):
        await asyncio.wait_for(playing, TIMEOUT_S)
    with pytest.raises(AudioError, match="stopped"):
        for _ in range(10):  # chunks already delivered come first
            await asyncio.wait_for(reading, TIMEOUT_S)
            reading = asyncio.create_task(sim.read_chunk())
    assert sim.health() == (PartState.FAILED, "stopped")


async def test_pyaudio_without_a_sound_card_is_a_failed_part_not_a_crash() -> None:
    audio = make_audio(AudioSection())  # the default: the real sound card
    assert isinstance(audio, PyAudioAudio)
    await audio.start()
    try:
        state, note = audio.health()
        assert state is PartState.FAILED
        assert "no microphone" in note and "no speaker" in note
        with pytest.raises(AudioError, match="no speaker"):
            await audio.play(tone(440, 0.1, audio.sample_rate))
        with pytest.raises(AudioError, match="no microphone"):
            await audio.read_chunk()
        with pytest.raises(AudioError, match="no microphone"):
            await audio.record(0.1)
    finally:
        await audio.stop()
    assert audio.health() == (PartState.FAILED, "stopped")
