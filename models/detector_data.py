"""Build the detector's training set (models/work/detector-train.npz).

Half real CCPD training photographs, half simulated crash scenes with extra synthetic plates
(models/synth.py), each cut to a random window (so plates come at every size, from a far car in a
1280 x 720 frame to a close-up) and letterboxed to the detector's input as the device does. The
targets are what models/train_detector.py learns: a centre heat map and the corner offsets, on
the detector's output grid. Run: ``.venv/bin/python -m models.detector_data`` (pure numpy/Pillow).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from device.ocr.geometry import CORNER_UNIT, DET_H, DET_STRIDE, DET_W, Quad, letterbox
from models.pool import worker_pool
from models.realdata import REPO, Split, real_plates
from models.synth import SceneFrames, degrade

WORK = REPO / "models" / "work"
GH, GW = DET_H // DET_STRIDE, DET_W // DET_STRIDE

Sample = tuple[NDArray[np.uint8], NDArray[np.float16], NDArray[np.float16]]


def targets(quads: list[Quad]) -> tuple[NDArray[np.float16], NDArray[np.float16]]:
    """Heat map (GH x GW) with a Gaussian at each plate's centre, and 8 corner offsets (GH x GW x 8, NaN = none)."""
    heat = np.zeros((GH, GW), np.float32)
    offsets = np.full((GH, GW, 8), np.nan, np.float32)
    yy, xx = np.mgrid[0:GH, 0:GW].astype(np.float32)
    for quad in quads:
        cx = sum(p[0] for p in quad) / 4 / DET_STRIDE - 0.5
        cy = sum(p[1] for p in quad) / 4 / DET_STRIDE - 0.5
        if not (0 <= cx < GW and 0 <= cy < GH):
            continue
        h = (math.dist(quad[0], quad[3]) + math.dist(quad[1], quad[2])) / 2 / DET_STRIDE
        sigma = max(0.7, h / 3)
        heat = np.maximum(heat, np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2)))
        ix, iy = round(cx), round(cy)
        for gy in range(max(0, iy - 1), min(GH, iy + 2)):
            for gx in range(max(0, ix - 1), min(GW, ix + 2)):
                centre = ((gx + 0.5) * DET_STRIDE, (gy + 0.5) * DET_STRIDE)
                offsets[gy, gx] = [(p[k] - centre[k]) / CORNER_UNIT for p in quad for k in (0, 1)]
    return heat.astype(np.float16), offsets.astype(np.float16)


def _window(rng: random.Random, image: Image.Image, quads: list[Quad]) -> tuple[Image.Image, list[Quad]]:
    """A random window of ``image`` around one of its plates (or anywhere), the plates moved into it."""
    aspect = DET_W / DET_H * rng.uniform(0.8, 1.25)
    if quads and rng.random() < 0.85:
        q = rng.choice(quads)
        pw = max(p[0] for p in q) - min(p[0] for p in q)
        ww = pw * math.exp(rng.uniform(math.log(1.6), math.log(max(2.0, 1280 / 60))))
        wh = ww / aspect
        cx = sum(p[0] for p in q) / 4 + rng.uniform(-0.4, 0.4) * ww
        cy = sum(p[1] for p in q) / 4 + rng.uniform(-0.4, 0.4) * wh
    else:
        ww = image.width * rng.uniform(0.5, 1.2)
        wh = ww / aspect
        cx, cy = rng.uniform(0, image.width), rng.uniform(0, image.height)
    x0, y0 = cx - ww / 2, cy - wh / 2
    crop = image.crop((round(x0), round(y0), round(x0 + ww), round(y0 + wh)))
    moved = [tuple((p[0] - round(x0), p[1] - round(y0)) for p in quad) for quad in quads]
    inside = [m for m in moved if all(-2 <= p[0] <= crop.width + 2 and -2 <= p[1] <= crop.height + 2 for p in m)]
    return crop, inside  # type: ignore[return-value]


def _sample(rng: random.Random, image: Image.Image, quads: list[Quad]) -> Sample:
    if rng.random() < 0.85:
        image, quads = _window(rng, image, quads)
    x, scale = letterbox(image)
    if rng.random() < 0.5:  # spoiled at the detector's size: the same to it, and far cheaper
        x = np.asarray(degrade(rng, Image.fromarray(x)), np.uint8)
    scaled = [tuple((p[0] * scale, p[1] * scale) for p in q) for q in quads]
    heat, offsets = targets(scaled)  # type: ignore[arg-type]
    return x, heat, offsets


def _real_chunk(args: tuple[int, int]) -> list[Sample]:
    seed, n = args
    rng = random.Random(seed)
    plates = real_plates(Split.TRAIN)
    out = []
    for _ in range(n):
        plate = rng.choice([p for p in plates if p.corners is not None])
        assert plate.corners is not None
        image = Image.open(plate.path).convert("RGB")
        out.append(_sample(rng, image, [plate.corners]))
    return out


def _synth_chunk(args: tuple[int, int]) -> list[Sample]:
    seed, n = args
    rng = random.Random(seed)
    frames = SceneFrames(rng, scenes=4)
    out = []
    for _ in range(n):
        image, plates = frames.frame(spoil=False)
        out.append(_sample(rng, image, [q for _, q in plates]))
    return out


def build(n: int, workers: int) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    chunk = 250
    jobs = [(i, min(chunk, n // 2 - i)) for i in range(0, n // 2, chunk)]
    samples: list[Sample] = []
    with worker_pool(workers) as pool:
        for fn, offset in ((_real_chunk, 0), (_synth_chunk, 10**6)):
            for part in pool.map(fn, [(seed + offset, k) for seed, k in jobs]):
                samples.extend(part)
                print(f"{fn.__name__[1:]}: {len(samples)}/{n}, {time.monotonic() - started:.0f} s", flush=True)
    np.savez(
        WORK / "detector-train.npz",
        x=np.stack([s[0] for s in samples]),
        heat=np.stack([s[1] for s in samples]),
        offsets=np.stack([s[2] for s in samples]),
    )
    print(f"saved {len(samples)} samples in {time.monotonic() - started:.0f} s", flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    build(args.samples, args.workers)


if __name__ == "__main__":
    main(sys.argv[1:])
