"""Your own Keras model in the real images: one of each input kind (images, token ids, tabular
features) built and saved by the latest image's own Keras, then measured by kit through the
Docker engine, trained and run forward; and the models kit cannot run refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.store.folder import load_session
from tests.conftest import invoke as kit
from tests.conftest import json_rows, only_session

pytestmark = pytest.mark.docker
SIZES = ["--batch-size", "4", "--num-batches", "3", "--num-warmup-batches", "1"]
# an image model and a token model, saved as .EXT by the image's own Keras (tf.keras)
IMAGES_AND_TOKENS = """k = tf.keras
out = sys.argv[1]
i = k.Input((32, 32, 3)); x = k.layers.Conv2D(8, 3, activation="relu")(i)
x = k.layers.GlobalAveragePooling2D()(x)
k.Model(i, k.layers.Dense(10, activation="softmax")(x)).save(f"{out}/images.EXT")
t = k.Input((16,), dtype="int32"); x = k.layers.Embedding(500, 8)(t)
x = k.layers.GlobalAveragePooling1D()(x)
k.Model(t, k.layers.Dense(1, activation="sigmoid")(x)).save(f"{out}/tokens.EXT")
"""
MAKE = (
    "import sys, keras, tensorflow as tf\n"
    + IMAGES_AND_TOKENS.replace("EXT", "keras")
    + """\
f = k.Input((12,)); x = k.layers.Dense(16, activation="relu")(f)
k.Model(f, k.layers.Dense(1)(x)).save(f"{out}/tabular.keras")
v = k.Input((None,), dtype="int32"); x = k.layers.Embedding(50, 4)(v)
x = k.layers.GlobalAveragePooling1D()(x)
k.Model(v, k.layers.Dense(1)(x)).save(f"{out}/ragged.keras")
@keras.saving.register_keras_serializable()
class Doubled(k.layers.Layer):
    def call(self, x):
        return 2 * x
c = k.Input((4,)); k.Model(c, k.layers.Dense(1)(Doubled()(c))).save(f"{out}/custom.keras")
i = keras.Input((32, 32, 3)); x = keras.layers.Conv2D(8, 3, activation="relu")(i)
x = keras.layers.GlobalAveragePooling2D()(x)
keras.Model(i, keras.layers.Dense(10, activation="softmax")(x)).export(f"{out}/saved")
"""
)


@pytest.fixture(scope="module")
def models(kit_images, docker_client, tmp_path_factory) -> Path:
    """The models, saved by TensorFlow 2.21's Keras 3 in the latest image."""
    return _saved(docker_client, kit_images["latest"], MAKE, tmp_path_factory.mktemp("models"))


def _saved(docker_client, image: str, script: str, out: Path) -> Path:
    """``script`` run in ``image`` (as root, offline, its container removed), saving into
    ``out``; the files made readable by kit's unprivileged runs."""
    (out / "make.py").write_text(script)
    docker_client.containers.run(
        image, ["python", "/models/make.py", "/models"], user="root",
        volumes={str(out): {"bind": "/models", "mode": "rw"}}, network_mode="none", remove=True,
        labels={"kit.test": "user-model"},
    )  # fmt: skip
    for path in out.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return out


@pytest.mark.parametrize(
    ("model", "mode"), [("images", "train"), ("tokens", "infer"), ("tabular", "train")]
)
def test_your_model_of_each_input_kind_runs_and_is_counted(models, model, mode, kit_containers,
                                                           tmp_path):  # fmt: skip
    path = models / f"{model}.keras"
    code, text = kit("compare", "latest", "-p", "default", "--model", str(path), "--mode", mode,
                     *SIZES, "--repeats", "2", "--results", str(tmp_path),
                     "--format", "json")  # fmt: skip
    assert code == 0, text
    runs = load_session(only_session(tmp_path))
    assert len(runs) == 2 and all(r.ok and r.images_per_sec > 0 for r in runs), runs
    facts = runs[0].provenance["model_file"]
    assert facts["forward_flop"] > 0 and facts["parameters"] > 0
    assert (
        runs[0].workload.model == f"{model}.keras"
        and len(runs[0].workload.model_digest or "") == 64
    )
    assert runs[0].flop_per_image == facts["forward_flop"] * (3 if mode == "train" else 1)
    (row,) = json_rows(text)
    assert row["gflops"] > 0


@pytest.mark.parametrize(
    ("model", "said"),
    [("ragged", "has shape (None, None): kit fixes only the batch dimension"),
     ("custom", "needs custom objects kit cannot load")],
)  # fmt: skip
def test_a_model_kit_cannot_run_is_refused_in_one_line(models, model, said, kit_containers,
                                                       tmp_path):  # fmt: skip
    code, text = kit("compare", "latest", "--model", str(models / f"{model}.keras"), "--mode",
                     "infer", *SIZES, "--results", str(tmp_path))  # fmt: skip
    assert code == 2 and said in text, text
    assert len(load_session(only_session(tmp_path))) == 1  # its first run said it, no other ran


def test_a_savedmodel_runs_forward_on_its_serving_signature(models, kit_containers, tmp_path):
    code, text = kit("compare", "latest", "-p", "default", "--model", str(models / "saved"),
                     "--mode", "infer", *SIZES, "--repeats", "2",
                     "--results", str(tmp_path))  # fmt: skip
    assert code == 0, text
    runs = load_session(only_session(tmp_path))
    assert len(runs) == 2 and all(r.ok for r in runs), runs
    facts = runs[0].provenance["model_file"]
    assert facts["inputs"][0]["shape"] == [32, 32, 3] and facts["forward_flop"] > 0


MAKE_OLD = "import sys, tensorflow as tf\n" + IMAGES_AND_TOKENS.replace("EXT", "h5")


@pytest.fixture(scope="module")
def old_models(kit_images, docker_client, tmp_path_factory) -> Path:
    """Models saved as HDF5 by TensorFlow 2.14's Keras 2, in the stock image: the files people
    have from the years before Keras 3."""
    return _saved(docker_client, kit_images["stock"], MAKE_OLD, tmp_path_factory.mktemp("old"))


@pytest.mark.parametrize(("model", "mode"), [("images", "train"), ("tokens", "infer")])
def test_a_model_saved_by_tensorflow_2_14_runs_on_every_build(
    old_models, model, mode, kit_containers, tmp_path
):
    code, text = kit("compare", "stock", "intel", "latest", "-p", "default", "--model",
                     str(old_models / f"{model}.h5"), "--mode", mode, *SIZES, "--repeats", "2",
                     "--results", str(tmp_path))  # fmt: skip
    assert code == 0, text
    runs = load_session(only_session(tmp_path))
    assert sorted({r.image for r in runs}) == ["intel", "latest", "stock"], runs
    assert all(r.ok and r.images_per_sec > 0 for r in runs), [r.error for r in runs]
    flops = {r.image: r.provenance["model_file"]["forward_flop"] for r in runs}
    assert flops["stock"] == flops["intel"] > 0, flops  # one Keras, one graph
    # Keras 3 traces its own graph of the same net: convolutions count alike, and the small
    # element-wise ops of pooling may differ (measured: 145 FLOPs against 177 for tokens)
    assert 0.75 < flops["latest"] / flops["stock"] < 1.33, flops
