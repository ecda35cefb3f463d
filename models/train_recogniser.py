"""Train the plate recogniser and export it as int8 TFLite (models/recogniser.tflite).

A small CRNN without recurrence (LPRNet-like): a few convolutions squeeze the 32 x 128 straightened
plate into 32 columns, a wide 1 x 5 convolution gives each column its neighbours, and CTC lets
the columns spell a text of 7 or 8 characters without knowing where each character is. A second
head names the plate's colour, which the grammar needs (a police plate is white) and the
dispatcher sees. Convolutions only, so int8 quantisation keeps it fast on a Pi.

Run in the training environment (models/setup_train_env.sh) after models/recogniser_data.py:
``nice -n 10 models/.venv-train/bin/python -m models.train_recogniser``. Prints progress per epoch
(loss, exact reads of the held-out real plates without the grammar; for watching only: the
schedule is fixed and nothing is chosen by it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from numpy.typing import NDArray
from tensorflow import keras

from models.export import to_int8
from protocol.plates import ALPHABET

WORK = Path(__file__).resolve().parent / "work"
OUT = Path(__file__).resolve().parent / "recogniser.tflite"
CLASSES = len(ALPHABET) + 1  # the CTC blank is last
KINDS = 5
H, W = 32, 128


def build() -> tuple[keras.Model, keras.Model]:
    """(training model with logits, export model with probabilities); they share their layers."""
    inp = keras.Input((H, W, 3), name="plate")
    x = keras.layers.Rescaling(1 / 255)(inp)

    def cbr(x: tf.Tensor, filters: int, kernel: tuple[int, int] = (3, 3), padding: str = "same") -> tf.Tensor:
        x = keras.layers.Conv2D(filters, kernel, padding=padding, use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        return keras.layers.ReLU()(x)

    x = cbr(x, 32)
    x = keras.layers.MaxPooling2D(2)(x)  # 16 x 64
    x = cbr(x, 48)
    x = keras.layers.MaxPooling2D(2)(x)  # 8 x 32
    x = cbr(x, 64)
    x = cbr(x, 64)
    x = keras.layers.MaxPooling2D((2, 1))(x)  # 4 x 32
    x = cbr(x, 96)
    colour = keras.layers.GlobalAveragePooling2D()(x)
    colour_logits = keras.layers.Dense(KINDS)(colour)
    x = cbr(x, 128, (4, 1), "valid")  # 1 x 32
    x = keras.layers.Dropout(0.2)(x)
    x = cbr(x, 128, (1, 5))
    x = keras.layers.Conv2D(CLASSES, 1)(x)
    logits = keras.layers.Reshape((W // 4, CLASSES))(x)
    train = keras.Model(inp, [logits, colour_logits])
    export = keras.Model(
        inp, [keras.layers.Softmax(name="chars")(logits), keras.layers.Softmax(name="colour")(colour_logits)]
    )
    return train, export


def augment(x: tf.Tensor) -> tf.Tensor:
    """Light photometric changes on top of the data's own; geometry varies in the data already."""
    x = tf.cast(x, tf.float32)
    b = tf.shape(x)[0]
    gain = tf.random.uniform((b, 1, 1, 1), 0.7, 1.25)
    bias = tf.random.uniform((b, 1, 1, 1), -25, 25)
    channel = tf.random.uniform((b, 1, 1, 3), 0.9, 1.1)
    return tf.clip_by_value(x * gain * channel + bias, 0, 255)


def greedy_exact(probs: NDArray[np.float32], labels: NDArray[np.int32]) -> float:
    """Share of plates whose greedy CTC read is exactly the label (no grammar; progress only)."""
    best = probs.argmax(-1)
    hits = 0
    for seq, label in zip(best, labels, strict=True):
        out = [c for i, c in enumerate(seq) if c != CLASSES - 1 and (i == 0 or c != seq[i - 1])]
        hits += out == [c for c in label if c >= 0]
    return hits / len(labels)


def train(epochs: int, batch: int, lr: float, work: Path = WORK) -> keras.Model:
    data = np.load(work / "recogniser-train.npz")
    val = np.load(work / "recogniser-validation.npz")
    x, y, kind = data["x"], data["y"], data["kind"]
    n = len(x)
    print(f"{n} training crops, {len(val['x'])} held-out real plates", flush=True)
    model, export = build()
    print(f"parameters: {model.count_params()}", flush=True)
    steps = epochs * (n // batch)
    schedule = keras.optimizers.schedules.CosineDecay(lr, steps, warmup_target=None, alpha=0.02)
    opt = keras.optimizers.Adam(schedule)
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y, kind))
        .shuffle(n, reshuffle_each_iteration=True)
        .batch(batch, drop_remainder=True)
        .prefetch(2)
    )

    @tf.function
    def step(xb: tf.Tensor, yb: tf.Tensor, kb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        xb = augment(xb)
        label_len = tf.reduce_sum(tf.cast(yb >= 0, tf.int32), axis=1)
        labels = tf.maximum(yb, 0)
        with tf.GradientTape() as tape:
            logits, colour = model(xb, training=True)
            ctc = tf.nn.ctc_loss(
                labels,
                logits,
                label_len,
                tf.fill([tf.shape(xb)[0]], W // 4),
                logits_time_major=False,
                blank_index=CLASSES - 1,
            )
            ce = keras.losses.sparse_categorical_crossentropy(kb, colour, from_logits=True)
            loss = tf.reduce_mean(ctc) + 0.5 * tf.reduce_mean(ce)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss, tf.reduce_mean(ctc)

    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        losses = []
        for i, (xb, yb, kb) in enumerate(ds):
            loss, _ = step(xb, yb, kb)
            losses.append(float(loss))
            if i % 100 == 0:
                print(f"  epoch {epoch} step {i}/{n // batch} loss {np.mean(losses[-100:]):.3f}", flush=True)
        probs = export.predict(val["x"].astype(np.float32), verbose=0)[0]
        acc = greedy_exact(probs, val["y"])
        print(
            f"epoch {epoch}/{epochs}: loss {np.mean(losses):.3f}, held-out real exact (greedy, no grammar) "
            f"{acc:.1%}, {time.monotonic() - started:.0f} s",
            flush=True,
        )
    return export


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--work", type=Path, default=WORK, help="where models.recogniser_data put the sets")
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.random.set_seed(1)
    export = train(args.epochs, args.batch, args.lr, args.work)
    data = np.load(args.work / "recogniser-train.npz")
    pick = np.random.default_rng(0).choice(len(data["x"]), min(400, len(data["x"])), replace=False)
    to_int8(export, data["x"][np.sort(pick)], args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
