"""A SavedModel folder (``--model_file`` a directory), for inference: its ``serving_default``
signature called forward on synthetic inputs made from its input specs (floats uniform, integer
ids 0 or 1: a signature says nothing of a vocabulary). Training needs the Keras model itself, so
it is refused (``kit_workload.user_model`` takes saved Keras files)."""

from __future__ import annotations


class Serving:
    """The serving signature as kit's step calls a model: ``model(inputs, training=False)``."""

    def __init__(self, fn, loaded) -> None:
        self.fn = fn
        self.loaded = loaded  # the signature's variables live as long as what loaded them

    def __call__(self, inputs, training: bool = False):
        return self.fn(**inputs)


def _specs(fn) -> dict:
    _, named = fn.structured_input_signature
    return dict(named)


def prepare(tf, path: str, batch: int, mode: str, refused):
    """(model, inputs, None, None, facts), or ``refused`` (raised) where kit cannot run it; the
    model is called as a Keras model is, so its FLOPs are counted the same way (user_model)."""
    if mode == "train":
        raise refused("a SavedModel runs forward only here: add --mode infer (save the Keras "
                      "model as a .keras file to train it)")  # fmt: skip
    try:
        loaded = tf.saved_model.load(path)
    except Exception as exc:
        raise refused(f"TensorFlow {tf.__version__} cannot load the SavedModel: "
                      f"{str(exc).splitlines()[0][:300]}") from None  # fmt: skip
    fn = loaded.signatures.get("serving_default")
    if fn is None:
        raise refused("the SavedModel has no serving_default signature to run")
    inputs = {}
    for name, spec in _specs(fn).items():
        dims = list(spec.shape)[1:]
        if any(d is None for d in dims):
            raise refused(f"input {name!r} has shape {tuple(spec.shape)}: kit fixes only the "
                          "batch dimension; export the model with fixed sizes")  # fmt: skip
        shape, dtype = (batch, *dims), spec.dtype
        if dtype.is_floating:
            inputs[name] = tf.random.uniform(shape, dtype=dtype, seed=1)
        elif dtype.is_integer:
            inputs[name] = tf.random.uniform(shape, maxval=2, dtype=dtype, seed=1)
        else:
            raise refused(f"input {name!r} is {dtype.name}: kit makes floats and integers")
    facts = {
        "inputs": [{"name": n, "shape": list(s.shape)[1:], "dtype": s.dtype.name}
                   for n, s in _specs(fn).items()],
        "outputs": [{"name": n, "shape": list(s.shape)[1:], "dtype": s.dtype.name}
                    for n, s in fn.structured_outputs.items()],
        "parameters": int(sum(v.shape.num_elements() or 0 for v in loaded.variables)),
    }  # fmt: skip
    return Serving(fn, loaded), inputs, None, None, facts
