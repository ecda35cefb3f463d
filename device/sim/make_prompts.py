"""Regenerate the voice prompts in ``device/prompts`` with espeak-ng.

A development tool: the WAV files are committed and the device never synthesises speech. Needs
``espeak-ng`` on the PATH (``apt-get install espeak-ng``). Run ``python -m device.sim.make_prompts``.

It uses the voice ``cmn-latn-pinyin``: espeak-ng 1.51's plain ``cmn`` voice looks each character
up as tone-numbered pinyin and then reads that pinyin with English rules ("qing three ..."), while
this one reads it as Mandarin. The same voice reads the pinyin in ``SPOKEN_FIXES``, which
corrects the few words its dictionary gets wrong.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

from device.hal.prompts import CLIP_RATE, CLIPS_DIR, PROMPT_TEXTS, SPELLABLE, clip_file, resample_pcm16

VOICE = "cmn-latn-pinyin"
SPEED_WPM = 150
MAX_TOTAL_BYTES = 1_500_000

# Polyphones and numbers the dictionary reads wrongly, as pinyin with tone numbers.
SPOKEN_FIXES = {
    "重试": "chong2shi4",  # not zhong4shi4
    "地点": "di4dian3",  # not de di3an
    "一百": "yi4bai3",  # 一 before a third tone is yi4
    "122": "yao1 er4 er4",  # a phone number is read digit by digit, 1 as yao1
}
# Digits spelt out as a radio operator reads them: 1 is 幺, which cannot be mistaken for 七.
DIGIT_WORDS = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))

SILENCE_THRESHOLD = 300  # of 32767: below this a sample counts as silence
LEAD_S = 0.03
TAIL_S = 0.06
PEAK = 0.89  # -1 dBFS


def spoken(text: str) -> str:
    for written, said in SPOKEN_FIXES.items():
        text = text.replace(written, said)
    return text


def synthesize(text: str) -> tuple[bytes, int]:
    """espeak-ng's PCM for ``text`` and its sample rate."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.wav"
        subprocess.run(
            ["espeak-ng", "-v", VOICE, "-s", str(SPEED_WPM), "-z", "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        with wave.open(str(out), "rb") as clip:
            if (clip.getnchannels(), clip.getsampwidth()) != (1, 2):
                raise RuntimeError(f"espeak-ng wrote an unexpected format for {text!r}")
            return clip.readframes(clip.getnframes()), clip.getframerate()


def trimmed(samples: np.ndarray, rate: int) -> np.ndarray:
    """``samples`` without the silence around the speech, keeping a short breath each side."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_THRESHOLD)
    if loud.size == 0:
        raise RuntimeError("espeak-ng produced silence")
    start = max(0, loud[0] - round(LEAD_S * rate))
    end = min(samples.size, loud[-1] + round(TAIL_S * rate))
    return samples[start:end]


def normalized(samples: np.ndarray) -> np.ndarray:
    """Every clip at the same peak level, so digits are as loud as the sentences around them."""
    peak = float(np.max(np.abs(samples.astype(np.float64))))
    scaled = samples.astype(np.float64) * (PEAK * 32767 / peak)
    return np.clip(np.round(scaled), -32768, 32767).astype("<i2")


def make_clip(text: str) -> bytes:
    pcm, rate = synthesize(spoken(text))
    clip = resample_pcm16(pcm, rate, CLIP_RATE)
    samples = np.frombuffer(clip, dtype="<i2")
    return normalized(trimmed(samples, CLIP_RATE)).tobytes()


def write_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(CLIP_RATE)
        clip.writeframes(pcm)


def clips() -> dict[str, str]:
    """Every clip to make: its name (a prompt key or a spelled character) and the text to say."""
    texts = dict(PROMPT_TEXTS)
    for char in SPELLABLE:
        texts[char] = DIGIT_WORDS.get(char, char)
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=CLIPS_DIR, help="folder to write the WAV files to")
    args = parser.parse_args(argv)
    total = 0
    for name, text in clips().items():
        pcm = make_clip(text)
        path = args.out / clip_file(name)
        write_wav(path, pcm)
        size = path.stat().st_size
        total += size
        print(f"{path.name:20} {len(pcm) / 2 / CLIP_RATE:5.2f} s {size:8d} B  {text}")
    print(f"total {total} bytes")
    if total > MAX_TOTAL_BYTES:
        print(f"more than {MAX_TOTAL_BYTES} bytes: speak faster or trim harder", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
