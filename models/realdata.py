"""The real plate photographs (CCPD scenes, green ones among them; HyperLPR crops) and their fixed validation split.

The split is a function of each file's name, not of a random draw, so every training run, the
benchmark and the model card hold out the same photographs; nothing in the validation part is ever
trained on. The HyperLPR crops (four images, no corners) are all validation for the recogniser.

The long-run source of real Kunming plates is the console: ``kuaichu server plate-reads DIR``
writes every read a dispatcher confirmed or corrected (the straightened crop the unit read, and the
text as confirmed); ``reviewed_plates`` reads such a folder, split the same way by the read's id.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from PIL import Image

from device.ocr.geometry import Quad
from protocol.plates import PlateKind, plate_kinds

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("KUAICHU_PLATE_DATA", REPO.parent / "shared" / "data" / "plates"))
# ccpd-more (green new-energy plates among them) comes last, so the held-out photographs listed
# before it keep their order.
SCENE_FOLDERS = ("ccpd-scenes", "ccpd-scenes-extra", "ccpd-more")
CROP_FOLDER = "hyperlpr-crops"
# Plate datasets ship single-row crops at 94 x 24 (LPRNet's input); double-row ones at 94 x 47.
DATASET_CROP = (94, 24)
VALIDATION_SHARE = 4  # one photograph in four, by hash


class Split(StrEnum):
    TRAIN = "train"
    VALIDATION = "validation"


@dataclass(frozen=True)
class RealPlate:
    path: Path
    text: str
    corners: Quad | None  # tl, tr, br, bl in the image; None for an image that is already a crop
    split: Split
    colour: PlateKind | None = None  # where known (a unit's read the dispatcher confirmed); else the text's usual one


def split_of(folder: str, file: str) -> Split:
    digest = int(hashlib.sha1(f"{folder}/{file}".encode()).hexdigest(), 16)
    return Split.VALIDATION if digest % VALIDATION_SHARE == 0 else Split.TRAIN


def _corners(field: str) -> Quad:
    rb, lb, lt, rt = (tuple(float(v) for v in pair.split(",")) for pair in field.split(";"))
    return ((lt[0], lt[1]), (rt[0], rt[1]), (rb[0], rb[1]), (lb[0], lb[1]))


def real_plates(split: Split | None = None, data_dir: Path = DATA_DIR) -> list[RealPlate]:
    """Every labelled real plate (of ``split`` if given), scenes first, in file order."""
    out = []
    for folder in SCENE_FOLDERS:
        with (data_dir / folder / "labels.csv").open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                out.append(
                    RealPlate(
                        data_dir / folder / row["file"],
                        row["plate"],
                        _corners(row["corners_rb_lb_lt_rt"]),
                        split_of(folder, row["file"]),
                    )
                )
    with (data_dir / CROP_FOLDER / "labels.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.append(RealPlate(data_dir / CROP_FOLDER / row["file"], row["plate"], None, Split.VALIDATION))
    return [p for p in out if split is None or p.split is split]


# The split of a reviewed read hangs on its crop's name (the read's id on the server), under this
# folder name, wherever the export was written.
PLATE_READS = "plate-reads"


def reviewed_plates(folder: Path, split: Split | None = None) -> list[RealPlate]:
    """The reads in a ``kuaichu server plate-reads`` folder (of ``split`` if given), labelled as the
    dispatcher confirmed them, in the colour the unit saw where the confirmed text can have it."""
    out = []
    with (folder / "labels.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            kinds = plate_kinds(row["plate"])
            colour = PlateKind(row["kind"]) if row["kind"] in kinds else kinds[0]
            plate_split = split_of(PLATE_READS, Path(row["file"]).name)
            out.append(RealPlate(folder / row["file"], row["plate"], None, plate_split, colour))
    return [p for p in out if split is None or p.split is split]


def dataset_crop(image: Image.Image, corners: Quad, double_row: bool = False) -> Image.Image:
    """The plate as public datasets ship it: the box around its corners, background and all, cut
    and resized to DATASET_CROP (twice as tall for a double-row plate), whatever reads in it."""
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    w, h = DATASET_CROP
    return image.crop((min(xs), min(ys), max(xs), max(ys))).resize(
        (w, 2 * h if double_row else h), Image.Resampling.BILINEAR
    )
