"""Synthetic-ImageNet training or inference with tf_cnn_benchmarks' output format.

A step is one ``tf.function`` (a TensorFlow graph, not XLA) over tensors that already live in
memory, as tf_cnn_benchmarks' synthetic data does, so a step costs the model and nothing else.
Training: the model's forward pass, softmax cross-entropy on its logits, the gradients and, once
every gradient is computed, one plain SGD update of every weight. Inference: the forward pass
alone.
"""

from __future__ import annotations

import json
import math
import resource
import statistics
import time

from . import (
    FOOTPRINT_PREFIX,
    STEP_FAULTS_PREFIX,
    STEP_SECONDS_PREFIX,
    WARMUP_PREFIX,
    footprint,
    steady,
)
from .models import DEFAULT_IMAGE_SIZE, NUM_CLASSES, build_model, input_shape

LEARNING_RATE = 0.005
MAX_LISTED_BATCHES = 10_000  # timed batches whose every time and page faults the output lists


def synthetic_batch(tf, batch_size: int, image_size: int, data_format: str):
    shape = (batch_size, *input_shape(image_size, data_format))
    images = tf.random.uniform(shape, dtype=tf.float32, seed=1)
    labels = tf.random.uniform((batch_size,), maxval=NUM_CLASSES, dtype=tf.int32, seed=2)
    return images, labels


def resource_handle(variable):
    """The resource a weight lives in: a tf.Variable's own, or the one a Keras 3 variable
    wraps."""
    handle = getattr(variable, "handle", None)
    return handle if handle is not None else variable.value.handle


def sgd_update(tf, variables):
    """Plain SGD as one fused op per weight (``var -= lr * grad``), the op tf_cnn_benchmarks'
    GradientDescentOptimizer runs. Keras' SGD does the same arithmetic through its own
    machinery (an iteration counter, a distribution merge call, an update graph per weight),
    and with it the step's memory kept growing until its third call: a 0.9 GB page-fault burst
    that slowed that step by 60% (ResNet-50, batch 32, Intel Xeon); with the fused op the pool
    reached its size in the first step."""
    handles = [resource_handle(v) for v in variables]
    rates = [tf.constant(LEARNING_RATE, dtype=v.dtype) for v in variables]

    def update(grads) -> None:
        for handle, rate, grad in zip(handles, rates, grads, strict=True):
            tf.raw_ops.ResourceApplyGradientDescent(var=handle, alpha=rate, delta=grad)

    return update


def make_step(tf, model, mode: str, loss_fn=None):
    """The step a batch runs, returning what must be read back to finish it.

    Training updates the weights once every gradient is computed (the same values: backprop
    uses the weights its forward pass read). Left free, each update ran as soon as its gradient
    was ready, on TensorFlow's own threads beside the backward pass's oneDNN primitives on the
    other inter-op thread; with OpenMP's team that oversubscribed the CPUs: on 2 vCPUs of an
    Intel Xeon, intel:tuned ResNet-50 (batch 32) ran 2.5-8.7% faster with the updates after
    backprop (3 alternating pairs), stock:default -1.4 to +1.9%; a lone 1-ms weight-gradient GEMM
    took up to 40 ms in the free order."""
    if mode == "infer":

        @tf.function
        def infer(images, labels):  # one output read back: the call returns when all are done
            return tf.nest.flatten(model(images, training=False))[0]

        return infer

    if loss_fn is None:  # kit's models end in logits over NUM_CLASSES
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = model.trainable_variables
    update = sgd_update(tf, variables)

    @tf.function
    def train(images, labels):
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            loss = loss_fn(labels, tf.nest.map_structure(lambda o: tf.cast(o, tf.float32), outputs))
        grads = tape.gradient(loss, variables)
        with tf.control_dependencies(grads):  # every gradient first (see above)
            update(grads)
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


def percentiles(step_times: list[float]) -> tuple[float, float, float]:
    """p50, p90 and p99 of the per-batch times, in ms (linear between order statistics)."""
    ms = sorted(t * 1000.0 for t in step_times)
    if len(ms) == 1:
        return ms[0], ms[0], ms[0]
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return cuts[49], cuts[89], cuts[98]


def latency_line(step_times: list[float]) -> str:
    p50, p90, p99 = percentiles(step_times)
    return f"latency ms: p50 {p50:.3f} p90 {p90:.3f} p99 {p99:.3f} ({len(step_times)} batches)"


def timed(step, images, labels) -> tuple[float, object, int]:
    """One step: its seconds, what it returned, and the pages it faulted in (new memory)."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    out = step(images, labels).numpy()
    seconds = time.perf_counter() - start
    return seconds, out, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def warm_up(step, images, labels, batches: int | str) -> dict:
    """Run the warmup: ``batches`` of them, or with ``auto`` until the step time settles
    (kit_workload.steady's rule and bounds). Returns what it took, for the run's record, with
    each step's minor page faults: memory the process touched for the first time."""
    times: list[float] = []
    faults: list[int] = []
    start = time.perf_counter()
    while True:
        if batches == steady.AUTO and steady.warmup_done(
            times, time.perf_counter() - start, faults
        ):
            break
        if batches != steady.AUTO and len(times) >= batches:
            break
        seconds, _, faulted = timed(step, images, labels)
        times.append(seconds)
        faults.append(faulted)
    return {
        "mode": "auto" if batches == steady.AUTO else "fixed",
        "batches": len(times),
        "seconds": round(time.perf_counter() - start, 3),
        "settled": steady.settled(times, faults),
        "step_seconds": [round(t, 6) for t in times],
        "minor_faults": faults,
    }


def run(tf, args, prepared=None) -> float:
    if prepared is not None:  # the user's own model (kit_workload.user_model.prepare)
        model, images, labels, loss, _ = prepared
        step = make_step(tf, model, args.mode, loss)
    else:
        image_size = args.image_size or DEFAULT_IMAGE_SIZE[args.model]
        model = build_model(tf, args.model, image_size, args.data_format)
        images, labels = synthetic_batch(tf, args.batch_size, image_size, args.data_format)
        step = make_step(tf, model, args.mode)

    print("Running warm up", flush=True)
    warmup = warm_up(step, images, labels, args.num_warmup_batches)
    print(WARMUP_PREFIX + json.dumps(warmup), flush=True)
    print("Done warm up", flush=True)
    print("Step\tImg/sec\ttotal_loss", flush=True)
    step_times: list[float] = []
    step_faults: list[int] = []
    census = footprint.Census()
    census.start()
    for i in range(args.num_batches):
        seconds, out, faults = timed(step, images, labels)
        step_times.append(seconds)
        step_faults.append(faults)
        if i == 0 or (i + 1) % args.display_every == 0 or i + 1 == args.num_batches:
            mean, err, jitter = perf_timing(args.batch_size, step_times)
            loss = f"{float(out):.3f}" if args.mode == "train" else "-"
            rate = f"images/sec: {mean:.1f} +/- {err:.1f} (jitter = {jitter:.1f})"
            print(f"{i + 1}\t{rate}\t{loss}", flush=True)
    where = census.stop()
    total = args.batch_size * args.num_batches / sum(step_times)
    print("-" * 64)
    print(f"total images/sec: {total:.2f}")
    print(latency_line(step_times))
    print("-" * 64, flush=True)
    if len(step_times) <= MAX_LISTED_BATCHES:
        print(STEP_SECONDS_PREFIX + json.dumps([round(t, 6) for t in step_times]), flush=True)
        print(STEP_FAULTS_PREFIX + json.dumps(step_faults), flush=True)
    print(FOOTPRINT_PREFIX + json.dumps(where), flush=True)
    return total
