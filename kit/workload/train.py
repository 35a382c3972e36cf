"""Synthetic-ImageNet training with tf_cnn_benchmarks' output format.

The train step is one ``tf.function`` over tensors that already live in memory (as
tf_cnn_benchmarks' synthetic data does), so a step costs the model and nothing else.
"""

from __future__ import annotations

import math
import statistics
import time

MODELS = ("resnet50", "tiny")
DEFAULT_IMAGE_SIZE = {"resnet50": 224, "tiny": 64}
NUM_CLASSES = 1000


def build_model(tf, name: str, image_size: int, data_format: str):
    channels_first = data_format == "NCHW"
    tf.keras.backend.set_image_data_format("channels_first" if channels_first else "channels_last")
    shape = (3, image_size, image_size) if channels_first else (image_size, image_size, 3)
    if name == "resnet50":
        return tf.keras.applications.ResNet50(
            weights=None, input_shape=shape, classes=NUM_CLASSES, classifier_activation=None
        )
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            tf.keras.Input(shape=shape),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(NUM_CLASSES),
        ]
    )


def synthetic_batch(tf, batch_size: int, image_size: int, data_format: str):
    shape = (
        (batch_size, 3, image_size, image_size)
        if data_format == "NCHW"
        else (batch_size, image_size, image_size, 3)
    )
    images = tf.random.uniform(shape, dtype=tf.float32, seed=1)
    labels = tf.random.uniform((batch_size,), maxval=NUM_CLASSES, dtype=tf.int32, seed=2)
    return images, labels


def make_step(tf, model, forward_only: bool):
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if forward_only:

        @tf.function
        def infer(images, labels):
            return loss_fn(labels, model(images, training=False))

        return infer

    optimizer = tf.keras.optimizers.SGD(learning_rate=0.005)

    @tf.function
    def train(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return train


def perf_timing(batch_size: int, step_times: list[float]) -> tuple[float, float, float]:
    """Mean images/sec, its standard error and jitter, as tf_cnn_benchmarks computes them."""
    speeds = [batch_size / t for t in step_times]
    mean = batch_size / statistics.fmean(step_times)
    uncertainty = statistics.pstdev(speeds) / math.sqrt(len(speeds)) if len(speeds) > 1 else 0.0
    median = statistics.median(speeds)
    jitter = 1.4826 * statistics.median(abs(s - median) for s in speeds)
    return mean, uncertainty, jitter


def run(tf, args) -> float:
    image_size = args.image_size or DEFAULT_IMAGE_SIZE[args.model]
    model = build_model(tf, args.model, image_size, args.data_format)
    images, labels = synthetic_batch(tf, args.batch_size, image_size, args.data_format)
    step = make_step(tf, model, args.forward_only)

    print("Running warm up", flush=True)
    for _ in range(args.num_warmup_batches):
        step(images, labels).numpy()

    print("Done warm up", flush=True)
    print("Step\tImg/sec\ttotal_loss", flush=True)
    step_times: list[float] = []
    for i in range(args.num_batches):
        start = time.perf_counter()
        loss = float(step(images, labels).numpy())
        step_times.append(time.perf_counter() - start)
        if i == 0 or (i + 1) % args.display_every == 0 or i + 1 == args.num_batches:
            mean, err, jitter = perf_timing(args.batch_size, step_times)
            rate = f"images/sec: {mean:.1f} +/- {err:.1f} (jitter = {jitter:.1f})"
            print(f"{i + 1}\t{rate}\t{loss:.3f}", flush=True)
    total = args.batch_size * args.num_batches / sum(step_times)
    print("-" * 64)
    print(f"total images/sec: {total:.2f}")
    print("-" * 64, flush=True)
    return total
