"""Train the corner refiner and export it as int8 TFLite (models/refiner.tflite).

The detector finds plates well but places their corners only to about a tenth of the plate's
height and width, which cuts characters off or leaves them tilted; the refiner looks again through
a window straightened from those corners (``device.ocr.geometry.refine_window``, 128 x 64) and
regresses the true four corners in it. A small strided depthwise-separable net; the last feature
map is flattened rather than pooled, because where things are is the answer.

Run in the training environment after models/refiner_data.py:
``nice -n 10 models/.venv-train/bin/python -m models.train_refiner``. Prints progress per epoch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow import keras

from models.export import to_int8

WORK = Path(__file__).resolve().parent / "work"
OUT = Path(__file__).resolve().parent / "refiner.tflite"
H, W = 64, 128
# The loss weighs errors as parts of the plate, not of the window (device.ocr.geometry.REF_MARGIN:
# the window is 1.5 plate widths and 2.5 plate heights; the training environment does not import
# the device package), so a height error counts as much as it costs the recogniser.
LOSS_SCALE = (1.5, 2.5)


def build() -> keras.Model:
    inp = keras.Input((H, W, 3), name="window")
    x = keras.layers.Rescaling(1 / 255)(inp)

    def bn_relu(x: tf.Tensor) -> tf.Tensor:
        return keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))

    def sep(x: tf.Tensor, filters: int, stride: int = 1) -> tf.Tensor:
        x = bn_relu(keras.layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False)(x))
        return bn_relu(keras.layers.Conv2D(filters, 1, use_bias=False)(x))

    x = bn_relu(keras.layers.Conv2D(24, 3, 2, padding="same", use_bias=False)(x))  # 32 x 64
    x = sep(x, 32)
    x = sep(x, 48, 2)  # 16 x 32
    x = sep(x, 48)
    x = sep(x, 64, 2)  # 8 x 16
    x = sep(x, 64)
    x = sep(x, 96, 2)  # 4 x 8
    x = sep(x, 96)
    x = bn_relu(keras.layers.Conv2D(24, 1, use_bias=False)(x))
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(96, activation="relu")(x)
    out = keras.layers.Dense(8, name="corners")(x)
    return keras.Model(inp, out)


def train(epochs: int, batch: int, lr: float) -> keras.Model:
    data = np.load(WORK / "refiner-train.npz")
    x, y = data["x"], data["y"].astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    hold = order[:1000]  # a check on windows not trained on (from the same training photographs)
    x_val, y_val = x[hold], y[hold]
    x, y = x[order[1000:]], y[order[1000:]]
    n = len(x)
    print(f"{n} training windows, {len(hold)} held back", flush=True)
    model = build()
    print(f"parameters: {model.count_params()}", flush=True)
    steps = epochs * (n // batch)
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02))
    scale = tf.constant(LOSS_SCALE * 4, tf.float32)
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(n, reshuffle_each_iteration=True)
        .batch(batch, drop_remainder=True)
        .prefetch(2)
    )

    @tf.function
    def step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        xb = tf.cast(xb, tf.float32)
        b = tf.shape(xb)[0]
        xb = xb * tf.random.uniform((b, 1, 1, 1), 0.7, 1.3) + tf.random.uniform((b, 1, 1, 3), -25, 25)
        xb = tf.clip_by_value(xb, 0, 255)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(xb, training=True) - yb) * scale)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    def check() -> str:
        err = np.abs(model.predict(x_val, batch_size=256, verbose=0) - y_val) * np.array(LOSS_SCALE * 4)
        return f"held-back error: {err[:, 0::2].mean():.3f} widths, {err[:, 1::2].mean():.3f} heights"

    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        losses = []
        for i, (xb, yb) in enumerate(ds):
            losses.append(float(step(xb, yb)))
            if i % 100 == 0:
                print(f"  epoch {epoch} step {i}/{n // batch} loss {np.mean(losses[-100:]):.4f}", flush=True)
        print(f"epoch {epoch}/{epochs}: loss {np.mean(losses):.4f}, {check()}, {time.monotonic() - started:.0f} s")
    return model


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.random.set_seed(1)
    model = train(args.epochs, args.batch, args.lr)
    x = np.load(WORK / "refiner-train.npz")["x"]
    pick = np.random.default_rng(1).choice(len(x), min(300, len(x)), replace=False)
    to_int8(model, x[np.sort(pick)], args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
