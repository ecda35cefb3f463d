"""Loading a TFLite model with whichever interpreter this machine has.

``ai-edge-litert`` is the maintained runtime (and the one in the main environment); a Raspberry Pi
image may have the legacy ``tflite-runtime`` instead, which needs numpy < 2 and so lives only in
such an image. Both have the same ``Interpreter``. A model that is missing or does not load is a
``ModelError`` naming the file, so the device runs on without OCR and says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from device.ocr.errors import ModelError


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter
    except ImportError:
        raise ModelError("no TFLite runtime installed: install ai-edge-litert (or tflite-runtime on a Pi)") from None


def load_interpreter(path: Path, threads: int = 1) -> Any:
    """The model at ``path`` loaded with its tensors allocated; ModelError naming the file otherwise."""
    if not path.is_file():
        raise ModelError(f"model file {path} is missing")
    try:
        interpreter = _interpreter_class()(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except ModelError:
        raise
    except Exception as exc:  # the runtime raises ValueError or RuntimeError for a bad flatbuffer
        raise ModelError(f"model file {path} does not load: {exc}") from exc
    return interpreter


class TfliteModel:
    """One loaded model with a single uint8 input; ``run`` gives its outputs as float arrays."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self._it = load_interpreter(path, threads)
        inputs = self._it.get_input_details()
        if len(inputs) != 1 or inputs[0]["dtype"] != np.uint8:
            raise ModelError(f"model file {path} does not take one uint8 image")
        self.path = path
        self._input = inputs[0]["index"]
        self.input_shape = tuple(int(v) for v in inputs[0]["shape"])
        self._outputs = self._it.get_output_details()
        self.size_bytes = path.stat().st_size

    def run(self, x: NDArray[np.uint8]) -> list[NDArray[np.float32]]:
        """Outputs for one input (``input_shape`` without the batch), dequantised, batch dropped."""
        self._it.set_tensor(self._input, x[None])
        self._it.invoke()
        out = []
        for detail in self._outputs:
            value = self._it.get_tensor(detail["index"])[0]
            scale, zero = detail["quantization"]
            if scale:
                value = (value.astype(np.float32) - zero) * scale
            out.append(value.astype(np.float32))
        return out

    def output_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(v) for v in d["shape"][1:]) for d in self._outputs]
