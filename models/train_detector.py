"""Train the plate detector and export it as int8 TFLite (models/detector.tflite).

A CenterNet-style net, small enough for a Pi: depthwise-separable convolutions down to 1/32 of
the 448 x 256 letterboxed frame, back up to 1/4 with skip connections, and two heads on that grid:
the chance that a plate's centre lies in each cell, and where the plate's four corners are from
it. Corners rather than a box, so the recogniser gets the plate straightened. No anchors and no
non-maximum suppression beyond a 3 x 3 peak test, which the device does in numpy.

Run in the training environment after models/detector_data.py:
``nice -n 10 models/.venv-train/bin/python -m models.train_detector``. Prints progress per epoch.
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
OUT = Path(__file__).resolve().parent / "detector.tflite"
H, W = 256, 448


def build() -> tuple[keras.Model, keras.Model]:
    """(training model: heat logits and corners, export model: heat probability and corners)."""
    inp = keras.Input((H, W, 3), name="frame")
    x = keras.layers.Rescaling(1 / 255)(inp)

    def bn_relu(x: tf.Tensor) -> tf.Tensor:
        return keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))

    def sep(x: tf.Tensor, filters: int, stride: int = 1) -> tf.Tensor:
        x = bn_relu(keras.layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False)(x))
        return bn_relu(keras.layers.Conv2D(filters, 1, use_bias=False)(x))

    def pw(x: tf.Tensor, filters: int) -> tf.Tensor:
        return bn_relu(keras.layers.Conv2D(filters, 1, use_bias=False)(x))

    x = bn_relu(keras.layers.Conv2D(16, 3, 2, padding="same", use_bias=False)(x))  # 1/2
    s4 = sep(x, 24, 2)  # 1/4
    s8 = sep(sep(s4, 40, 2), 40)  # 1/8
    s16 = sep(sep(s8, 64, 2), 64)  # 1/16
    s32 = sep(sep(s16, 96, 2), 96)  # 1/32
    u = keras.layers.UpSampling2D()(s32)
    u = sep(keras.layers.Add()([pw(u, 64), s16]), 64)
    u = keras.layers.UpSampling2D()(u)
    u = sep(keras.layers.Add()([pw(u, 40), s8]), 40)
    u = keras.layers.UpSampling2D()(u)
    u = sep(keras.layers.Add()([pw(u, 24), s4]), 32)
    heat = keras.layers.Conv2D(1, 1, bias_initializer=keras.initializers.Constant(-4.0))(u)
    corners = keras.layers.Conv2D(8, 1)(u)
    train = keras.Model(inp, [heat, corners])
    export = keras.Model(inp, [keras.layers.Activation("sigmoid", name="heat")(heat), corners])
    return train, export


def focal(heat_logits: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """CenterNet's penalty-reduced focal loss, per plate."""
    p = tf.clip_by_value(tf.sigmoid(heat_logits[..., 0]), 1e-4, 1 - 1e-4)
    pos = tf.cast(target >= 0.96, tf.float32)
    pos_loss = -tf.math.log(p) * (1 - p) ** 2 * pos
    neg_loss = -tf.math.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - pos)
    n = tf.maximum(tf.reduce_sum(pos), 1.0)
    return (tf.reduce_sum(pos_loss) + tf.reduce_sum(neg_loss)) / n


def train(epochs: int, batch: int, lr: float) -> keras.Model:
    data = np.load(WORK / "detector-train.npz")
    x, heat, offsets = data["x"], data["heat"].astype(np.float32), data["offsets"].astype(np.float32)
    n = len(x)
    print(f"{n} training frames", flush=True)
    model, export = build()
    print(f"parameters: {model.count_params()}", flush=True)
    steps = epochs * (n // batch)
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02))
    ds = (
        tf.data.Dataset.from_tensor_slices((x, heat, offsets))
        .shuffle(n, reshuffle_each_iteration=True)
        .batch(batch, drop_remainder=True)
        .prefetch(2)
    )

    @tf.function
    def step(xb: tf.Tensor, hb: tf.Tensor, ob: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        xb = tf.cast(xb, tf.float32)
        b = tf.shape(xb)[0]
        xb = tf.clip_by_value(
            xb * tf.random.uniform((b, 1, 1, 1), 0.7, 1.3) + tf.random.uniform((b, 1, 1, 1), -20, 20), 0, 255
        )
        mask = tf.cast(tf.math.is_finite(ob[..., :1]), tf.float32)
        target = tf.where(tf.math.is_finite(ob), ob, 0.0)
        with tf.GradientTape() as tape:
            hl, corners = model(xb, training=True)
            lh = focal(hl, hb)
            lc = tf.reduce_sum(tf.abs(corners - target) * mask) / tf.maximum(tf.reduce_sum(mask) * 8, 1.0)
            loss = lh + 2.0 * lc
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return lh, lc

    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        hs, cs = [], []
        for i, (xb, hb, ob) in enumerate(ds):
            lh, lc = step(xb, hb, ob)
            hs.append(float(lh))
            cs.append(float(lc))
            if i % 50 == 0:
                recent = f"heat {np.mean(hs[-50:]):.3f} corners {np.mean(cs[-50:]):.4f}"
                print(f"  epoch {epoch} step {i}/{n // batch} {recent}", flush=True)
        print(
            f"epoch {epoch}/{epochs}: heat {np.mean(hs):.3f}, corners (L1, x16 px) {np.mean(cs):.4f}, "
            f"{time.monotonic() - started:.0f} s",
            flush=True,
        )
    return export


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.random.set_seed(1)
    export = train(args.epochs, args.batch, args.lr)
    x = np.load(WORK / "detector-train.npz")["x"]
    pick = np.random.default_rng(0).choice(len(x), min(200, len(x)), replace=False)
    to_int8(export, x[np.sort(pick)], args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
