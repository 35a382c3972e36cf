"""A user's own Keras model (``--model_file``): loaded from its file, fed synthetic inputs made
from its own input signature, trained against synthetic targets made from its outputs (or run
forward only), and its forward FLOPs counted by TensorFlow's profiler where it can.

Inputs: floating tensors get uniform values; integer tensors (token ids, categories) get ids
below the vocabulary of the first Embedding layer that reads them (else 0 or 1). Every dimension
but the batch must be fixed. Targets: a softmax output gets class ids (sparse categorical
cross-entropy), a sigmoid output 0/1 (binary cross-entropy), any other output values of its
shape (mean squared error). Whatever kit cannot do with a model ends the process with a
``kit-refused:`` line and status 2, before any batch runs.
"""

from __future__ import annotations

import os
import re
import sys

from . import REFUSED_PREFIX, saved_model


class Refused(Exception):
    """The model cannot be run as asked: said in one line."""


def refuse(message: str) -> None:
    print(REFUSED_PREFIX + message, flush=True)
    sys.exit(2)


def load(tf, path: str):
    try:
        return tf.keras.models.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError) as exc:
        whole = str(exc)
        named = re.search(r"(?:Could not locate class|Unknown layer:?) '?([\w.>]+)", whole)
        if named or "custom_objects" in whole:
            what = f" (class {named.group(1)!r})" if named else ""
            raise Refused(f"the model needs custom objects kit cannot load{what}: save it "
                          "with built-in layers only") from None  # fmt: skip
        text = whole.splitlines()[0][:300] if whole else type(exc).__name__
        raise Refused(f"TensorFlow {tf.__version__} cannot load the model: {text}") from None


def _vocabulary(tf, model, tensor) -> int:
    """The input_dim of the first Embedding layer fed by ``tensor``, else 2."""
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.Embedding):
            inbound = getattr(layer, "input", None)
            if inbound is tensor or getattr(inbound, "name", None) == tensor.name:
                return int(layer.input_dim)
    return 2


def _shape(tensor, batch: int, what: str) -> tuple[int, ...]:
    dims = list(tensor.shape)[1:]
    if any(d is None for d in dims):
        raise Refused(
            f"{what} {tensor.name!r} has shape {tuple(tensor.shape)}: kit fixes only the batch "
            "dimension; save the model with fixed sizes (e.g. the sequence length)"
        )
    return (batch, *dims)


def synthetic_inputs(tf, model, batch: int):
    """One batch for the model's inputs, from their shapes and dtypes."""
    made = []
    for tensor in model.inputs:
        shape, dtype = _shape(tensor, batch, "input"), tf.as_dtype(tensor.dtype)
        if dtype.is_floating:
            made.append(tf.random.uniform(shape, dtype=dtype, seed=1))
        elif dtype.is_integer:
            top = _vocabulary(tf, model, tensor)
            made.append(tf.random.uniform(shape, maxval=top, dtype=dtype, seed=1))
        else:
            raise Refused(f"input {tensor.name!r} is {dtype.name}: kit makes floats and integers")
    return made[0] if len(made) == 1 else made


def _activation(model, tensor) -> str:
    layer = getattr(tensor, "_keras_history", None)
    layer = layer[0] if layer else None
    found = getattr(layer, "activation", None)
    return getattr(found, "__name__", "") if found is not None else ""


def synthetic_targets(tf, model, batch: int):
    """Targets for each output, and the loss that fits it."""
    targets, losses = [], []
    for tensor in model.outputs:
        shape, kind = _shape(tensor, batch, "output"), _activation(model, tensor)
        if kind == "softmax":
            targets.append(tf.random.uniform(shape[:-1], maxval=shape[-1], dtype=tf.int32, seed=2))
            losses.append(tf.keras.losses.SparseCategoricalCrossentropy())
        elif kind == "sigmoid":
            targets.append(tf.cast(tf.random.uniform(shape, maxval=2, dtype=tf.int32, seed=2),
                                   tf.float32))  # fmt: skip
            losses.append(tf.keras.losses.BinaryCrossentropy())
        else:
            targets.append(tf.random.uniform(shape, dtype=tf.float32, seed=2))
            losses.append(tf.keras.losses.MeanSquaredError())

    def loss_fn(wanted, outputs):
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        wanted = wanted if isinstance(wanted, (list, tuple)) else [wanted]
        return tf.add_n([f(w, tf.cast(o, tf.float32)) for f, w, o in
                         zip(losses, wanted, outputs, strict=True)])  # fmt: skip

    return (targets[0] if len(targets) == 1 else targets), loss_fn


def forward_flops(tf, model, inputs) -> float | None:
    """Forward FLOP per example, from TensorFlow's profiler on the traced forward pass (its
    float_operation count, 2 a multiply-add); None where it cannot count."""
    try:
        from tensorflow.python.framework.convert_to_constants import (  # noqa: PLC0415
            convert_variables_to_constants_v2,
        )

        one = tf.nest.map_structure(lambda t: t[:1], inputs)
        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(one)
        graph = convert_variables_to_constants_v2(concrete).graph
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        found = tf.compat.v1.profiler.profile(graph=graph, options=options)
        return float(found.total_float_ops) or None
    except Exception:
        return None


def _signature(tensors) -> list[dict]:
    return [{"name": t.name, "shape": [d for d in list(t.shape)[1:]], "dtype": str(t.dtype.name
             if hasattr(t.dtype, "name") else t.dtype)} for t in tensors]  # fmt: skip


def prepare(tf, path: str, batch: int, mode: str):
    """(model, inputs, targets, loss, facts): the facts go into the run's provenance, the
    forward FLOP per example among them (None: the profiler could not count them)."""
    if os.path.isdir(path):  # a SavedModel: forward only (kit_workload.saved_model)
        try:
            model, inputs, _, _, facts = saved_model.prepare(tf, path, batch, mode, Refused)
        except Refused as exc:
            refuse(str(exc))
        return (
            model,
            inputs,
            None,
            None,
            {**facts, "forward_flop": forward_flops(tf, model, inputs)},
        )
    try:
        model = load(tf, path)
        inputs = synthetic_inputs(tf, model, batch)
        targets, loss_fn = synthetic_targets(tf, model, batch)
    except Refused as exc:
        refuse(str(exc))
    if mode == "train" and not model.trainable_variables:
        refuse("the model has no trainable weights: run it with --mode infer")
    facts = {
        "inputs": _signature(model.inputs), "outputs": _signature(model.outputs),
        "parameters": int(model.count_params()),
        "forward_flop": forward_flops(tf, model, inputs),
    }  # fmt: skip
    return model, inputs, targets, loss_fn, facts
