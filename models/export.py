"""Keras model -> int8 TFLite with a uint8 image input, as the device's runtime expects."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf
from numpy.typing import NDArray
from tensorflow import keras


def to_int8(export: keras.Model, representative: NDArray[np.uint8], out: Path) -> None:
    """Quantise weights and activations to int8, calibrated on ``representative`` inputs; the input is raw uint8."""

    def samples() -> Iterator[list[NDArray[np.float32]]]:
        for i in range(len(representative)):
            yield [representative[i : i + 1].astype(np.float32)]

    with tempfile.TemporaryDirectory() as tmp:
        export.export(tmp, verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = samples
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        out.write_bytes(conv.convert())
    print(f"wrote {out} ({out.stat().st_size} bytes)", flush=True)
