"""The plate-model choice figures in their smallest form: they run, report, and refuse a folder
without models. What they read is the benchmark's business; this proves it runs and reports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def choice(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.ocr_choice", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_choice_figures_end_with_their_line() -> None:
    done = choice("--per-form", "3", "--views", "2", "--photos", "12")
    assert done.returncode == 0, done.stderr
    final = re.fullmatch(
        r"train_frames=(\d+) of=(\d+) train_views=(\d+) views_of=(\d+) choice_synth=(\d+\.\d) choice_double=(\d+\.\d)",
        done.stdout.strip().splitlines()[-1],
    )
    assert final is not None, done.stdout
    frames, photos, views, of_views = (int(final.group(i)) for i in range(1, 5))
    assert (photos, of_views) == (12, 24)
    # A floor against regressions: the shipped models read these training photographs (all 12 as
    # shipped) and most views of them.
    assert frames >= 11 and views >= 20
    assert done.stdout.count("second synthetic set, ") == 10  # every plate form, the embassy's too


def test_a_folder_without_models_is_a_clear_error(tmp_path: Path) -> None:
    done = choice("--models", str(tmp_path))
    assert done.returncode == 1
    assert f"error: model file {tmp_path}/detector.tflite is missing" in done.stderr
