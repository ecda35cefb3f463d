"""How much disk a minute of a call's recording takes: the storage side of the capacity plan
(docs/scaling.md), from the media worker's own recorder.

``server.calls.recorder.SegmentRecorder`` is fed in real time, as the media worker feeds it during a
call: the unit's video as the worker forwards it (``bench/vp8_clip.py``: the simulated scene,
aiortc's own VP8 encoder at 640x480, 15 fps and its 1.5 Mbit/s ceiling, the rate a unit's call
reaches on loopback; a key frame every second), and the two voices the recording keeps, the
unit's and the dispatcher's, as decoded 48 kHz frames of the simulated microphone's tone. Segment
length and frame rate are ``[calls]``'s defaults. The figure is the closed segments' bytes over
their media time, so it includes Matroska's own overhead and the 16 kHz PCM of both voices.

The video rate is an upper bound: on a poor uplink the unit's encoder sends less (down to
aiortc's 250 kbit/s floor), and the recording with it.

    .venv/bin/python -m bench.recording [--seconds 60]

Last line: ``segments=… media_s=… mb_per_min=… kbit_s=… video_kbit_s=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench

from bench.call_feeders import VOICE_RATE, VOICE_SAMPLES, voice_frame
from bench.stack import load_line
from bench.vp8_clip import make_clip, read_clip
from device.hal.audio_simulated import MicSource
from server.calls.forwarding import vp8_size
from server.calls.recorder import Segment, SegmentRecorder
from server.config import CallsSection

CLIP_FRAMES = 150


async def record(folder: Path, frames: list[bytes], fps: int, seconds: float) -> list[Segment]:
    """Feed the recorder the clip (looped) and both voices at their real pace for ``seconds``."""
    calls = CallsSection()
    segments: list[Segment] = []
    recorder = SegmentRecorder(folder, "call-bench", calls.segment_s, fps, segments.append, lambda: None)
    voices = {"device": MicSource(VOICE_RATE), "dispatcher": MicSource(VOICE_RATE)}
    voices["device"].tone(440.0, 0.1)
    voices["dispatcher"].tone(660.0, 0.1)
    sent_video = sent_voice = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        while sent_video / fps <= elapsed:
            data = frames[sent_video % len(frames)]
            packet = av.Packet(data)
            packet.is_keyframe = vp8_size(data) is not None
            recorder.video(packet)
            sent_video += 1
        while sent_voice * VOICE_SAMPLES / VOICE_RATE <= elapsed:
            for name, mic in voices.items():
                recorder.audio(name, voice_frame(mic, sent_voice))
            sent_voice += 1
        await asyncio.sleep(0.005)
    await recorder.stop()
    await asyncio.sleep(0)  # the last segment's callback, scheduled by the recorder's thread
    return segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the call runs (real time)")
    args = parser.parse_args()
    print(load_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="kc-bench-recording-") as tmp:
        root = Path(tmp)
        make_clip(root / "clip.ivf", CLIP_FRAMES)
        fps, frames = read_clip(root / "clip.ivf")
        video_kbit_s = sum(len(f) for f in frames) * 8 / (len(frames) / fps) / 1000
        segments = asyncio.run(record(root / "evidence", frames, fps, args.seconds))
    for segment in segments:
        media_s = (segment.media_end - segment.media_start).total_seconds()
        print(f"  {segment.path.name}  {segment.size_bytes:>10,} bytes  {media_s:5.2f} s")
    total = sum(s.size_bytes for s in segments)
    media_s = sum((s.media_end - s.media_start).total_seconds() for s in segments)
    print(
        f"segments={len(segments)} media_s={media_s:.1f} mb_per_min={total / media_s * 60 / 1e6:.2f} "
        f"kbit_s={total * 8 / media_s / 1000:.0f} video_kbit_s={video_kbit_s:.0f}"
    )


if __name__ == "__main__":
    main()
