#!/bin/sh
# The training environment: TensorFlow (CPU) in a venv of its own, models/.venv-train, so the
# device and server environment (.venv, numpy 2, ai-edge-litert) never carries a training framework.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv-train"
python3.11 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -r "$here/requirements-train.txt"
"$venv/bin/python" -c "import tensorflow as tf; print('tensorflow', tf.__version__)"
