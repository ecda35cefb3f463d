"""Retrain the plate recogniser with the reads dispatchers confirmed or corrected, in one command.

The console is the long-run source of real Kunming plates: each read a dispatcher confirms or
corrects is a labelled crop cut exactly as the units cut them. This chains the documented steps
(models/README.md) for a candidate recogniser, and never replaces the shipped one by itself:

1. ``models.recogniser_data --plate-reads DIR ...`` (this environment): the training set with the
   reviewed reads' training part, the held-out set with their held-out part (split by read id,
   ``models.realdata.reviewed_plates``);
2. ``models.train_recogniser`` (the training environment, ``models/setup_train_env.sh``), niced;
3. the candidate beside copies of the shipped detector and refiner, judged by
   ``bench.ocr_choice`` (training photographs and a second synthetic set, never the held-out ones).

Keep it only if it meets the rule written down before (models/README.md), then run bench/ocr.py.

    .venv/bin/python -m models.retrain --plate-reads DIR [--plate-reads DIR2] [--out models/work/retrain]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from device.ocr.reader import DETECTOR_FILE, MODELS_DIR, RECOGNISER_FILE, REFINER_FILE
from models.realdata import REPO

TRAIN_PYTHON = REPO / "models" / ".venv-train" / "bin" / "python"


def run(step: str, command: list[str]) -> None:
    print(f"== {step}: {' '.join(command)}", flush=True)
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"重新训练失败于 {step} 步（退出码 {done.returncode}），已发布的模型未改动 (retrain: {step} failed)"
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--plate-reads", type=Path, action="append", required=True, metavar="DIR", help="kuaichu server plate-reads DIR"
    )
    parser.add_argument("--out", type=Path, default=REPO / "models" / "work" / "retrain", help="the candidate's folder")
    parser.add_argument("--synthetic", type=int, default=25_000, help="synthetic crops (the shipped recipe's)")
    parser.add_argument("--copies", type=int, default=40, help="re-cut copies of each real training plate")
    parser.add_argument("--views", type=int, default=24, help="views of each real photo, cut as found")
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--choice-per-form", type=int, default=200, help="bench.ocr_choice's --per-form")
    args = parser.parse_args(argv)
    if not TRAIN_PYTHON.is_file():
        print(
            f"没有训练环境 {TRAIN_PYTHON}：请先运行 models/setup_train_env.sh (no training environment)",
            file=sys.stderr,
        )
        return 2
    for folder in args.plate_reads:
        if not (folder / "labels.csv").is_file():
            print(
                f"{folder} 中没有 labels.csv：请先用 kuaichu server plate-reads 导出 (no labels.csv)", file=sys.stderr
            )
            return 2
    out: Path = args.out.resolve()
    data = [f"--plate-reads={folder.resolve()}" for folder in args.plate_reads]
    sizes = [f"--synthetic={args.synthetic}", f"--copies={args.copies}", f"--views={args.views}"]
    run("data", [sys.executable, "-m", "models.recogniser_data", f"--work={out}", *sizes, *data])
    train = [str(TRAIN_PYTHON), "-m", "models.train_recogniser", f"--work={out}", f"--epochs={args.epochs}"]
    run("training", ["nice", "-n", "10", *train, f"--out={out / RECOGNISER_FILE}"])
    for name in (DETECTOR_FILE, REFINER_FILE):
        shutil.copy(MODELS_DIR / name, out / name)
    run("choice", [sys.executable, "-m", "bench.ocr_choice", f"--models={out}", f"--per-form={args.choice_per_form}"])
    print(
        f"候选模型：{out / RECOGNISER_FILE}。请把上面一行与 models/README.md 中已发布模型的一行比较，"
        f"达到那里写明的规则才复制到 {MODELS_DIR} (candidate written; compare with models/README.md before shipping)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
