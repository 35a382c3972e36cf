"""The workload's modes, precisions and allocators in real containers, on stock TF 2.14 and
on latest (TF 2.21, Keras 3), and tf_cnn_benchmarks from the reference checkout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kit.host.facts import native_bf16, parse_cpuinfo
from kit.store.database import ResultsDB
from kit.store.folder import load_session
from kit.workload import WORKLOAD_VERSION, steady
from tests.conftest import TINY, json_rows, only_session
from tests.conftest import invoke as kit

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "tf_cnn_benchmarks"
HOST_BF16 = native_bf16(parse_cpuinfo(Path("/proc/cpuinfo").read_text())["isa_flags"])
LIBRARIES = {"jemalloc": "libjemalloc.so.2", "tcmalloc": "libtcmalloc_minimal.so.4"}
MATRIX = ["--knob", "precision=fp32,bf16", "--knob", "allocator=system,jemalloc,tcmalloc"]


@pytest.fixture(scope="module", params=["train", "infer"])
def matrix(request, kit_images, tmp_path_factory):
    """One sweep per mode: precision x allocator on stock and latest, the tiny model."""
    results = tmp_path_factory.mktemp(f"matrix-{request.param}")
    emulated = [] if HOST_BF16 else ["--allow-emulated"]
    code, text = kit(
        "sweep", "stock", "latest", "-p", "default", *MATRIX, "--mode", request.param, *TINY,
        *emulated, "--repeats", "1", "--results", str(results), "--format", "json",
    )  # fmt: skip
    assert code == 0, text
    return request.param, json_rows(text), load_session(only_session(results))


def test_every_mode_precision_and_allocator_runs_and_is_proven(matrix, kit_containers):
    mode, rows, runs = matrix
    cells = {(r["image"], r["knobs"]["precision"], r["knobs"]["allocator"]) for r in rows}
    assert cells == {
        (i, p, a) for i in ("stock", "latest") for p in ("fp32", "bf16")
        for a in ("system", "jemalloc", "tcmalloc")
    }  # fmt: skip
    assert all(r["status"] in ("ok", "noisy") and r["images_per_sec"] > 0 for r in rows), rows
    assert {r["tf_version"][:4] for r in rows} == {"2.14", "2.21"}
    for run in runs:
        prov = run.provenance
        assert prov["mode"] == mode
        precision = run.knobs["precision"]
        policy = {"fp32": "float32", "bf16": "mixed_bfloat16"}[precision]
        assert prov["precision"] == {"requested": precision, "keras_policy": policy}
        # The allocator is proven by the process's own memory maps.
        allocator = run.knobs["allocator"]
        maps = prov["allocator"]
        if allocator == "system":
            assert maps["loaded"] == [] and maps["libraries"] == []
        else:
            assert maps["loaded"] == [allocator]
            assert Path(maps["libraries"][0]).name.startswith(LIBRARIES[allocator])
            assert LIBRARIES[allocator] in maps["ld_preload"]
        assert run.workload.mode == mode and run.workload.allocator == allocator


def test_inference_reports_latency_and_training_its_loss(matrix, kit_containers):
    mode, rows, runs = matrix
    for run in runs:
        latency = run.latency_ms
        assert latency.batches == 3
        assert 0 < latency.p50 <= latency.p90 <= latency.p99
        losses = [s["loss"] for s in run.steps]
        assert all(loss is None for loss in losses) if mode == "infer" else all(losses)
    if mode == "infer":
        assert all(r["latency_p50"] > 0 and r["mode"] == "infer" for r in rows)


def test_bf16_is_proven_by_onednn_or_refused(kit_images, kit_containers, tmp_path):
    """On a CPU with avx512_bf16 or amx_bf16, --verify shows oneDNN computing on bf16 data;
    on one without, bf16 is refused before anything runs."""
    argv = ["verify", "stock", "-p", "default", "--precision", "bf16", "--model", "tiny",
            "--results", str(tmp_path)]  # fmt: skip
    code, text = kit(*argv)
    if not HOST_BF16:
        assert code == 2 and "would be emulated" in text and "--allow-emulated" in text
        return
    assert code == 0, text
    with ResultsDB(tmp_path / "kit.db") as db:
        (session,) = db.sessions()
    (record,) = session.meta["verify"]
    assert record["precision"] == "bf16"
    assert record["bf16_executions"] > 0 and record["bf16_share"] > 0.5
    assert "bf16 time" in text


def test_tf_cnn_benchmarks_from_the_reference_checkout(kit_images, kit_containers, tmp_path):
    """The real tf_cnn_benchmarks (an unmodified copy of tensorflow/benchmarks' script folder),
    tiny sizes, with the allocator preloaded into its process."""
    if not (REFERENCE / "tf_cnn_benchmarks.py").is_file():
        missing = f"no tf_cnn_benchmarks checkout at {REFERENCE}"
        if os.environ.get("KIT_REQUIRE_DOCKER"):
            pytest.fail(missing)
        pytest.skip(missing)
    code, text = kit(
        "run", "stock", "-p", "tuned", "--workload", "tf_cnn_benchmarks", "--workload-dir",
        str(REFERENCE), "--model", "resnet50", "--batch-size", "2", "--num-batches", "2",
        "--num-warmup-batches", "1", "--allocator", "jemalloc", "--results", str(tmp_path),
    )  # fmt: skip
    assert code == 0, text
    (result,) = load_session(only_session(tmp_path))
    assert result.ok and result.images_per_sec > 0
    assert result.provenance["workload"] == "tf_cnn_benchmarks"
    assert result.provenance["allocator"]["loaded"] == ["jemalloc"]
    log = Path(result.log_path).read_text()
    assert "total images/sec:" in log and "--num_intra_threads=2" in " ".join(result.command)


def test_the_warmup_runs_until_the_step_time_settles_or_as_told(kit_images, kit_containers,
                                                               tmp_path):  # fmt: skip
    """One session, two cells: the warmup until settled (the default) and a fixed one, each
    run's warmup and timed batches in its record."""
    code, text = kit(
        "sweep", "stock", "-p", "default", "--knob", "warmup=auto,2", "--model", "tiny",
        "--batch-size", "8", "--num-batches", "6", "--repeats", "1", "--results", str(tmp_path),
        "--format", "json",
    )  # fmt: skip
    assert code == 0, text
    runs = {r.knobs["warmup"]: r for r in load_session(only_session(tmp_path))}
    auto, fixed = runs["auto"], runs["2"]
    assert auto.ok and fixed.ok
    w = auto.warmup
    assert w["mode"] == "auto" and len(w["step_seconds"]) == w["batches"]
    assert len(w["minor_faults"]) == w["batches"]
    assert w["settled"] is steady.settled(w["step_seconds"], w["minor_faults"])
    if w["settled"]:  # it stopped at the first settled window
        assert not steady.settled(w["step_seconds"][:-1], w["minor_faults"][:-1])
    else:  # or at a bound
        assert w["batches"] == steady.MAX_BATCHES or w["seconds"] >= steady.MAX_SECONDS
    assert "--num_warmup_batches=auto" in auto.command
    assert fixed.warmup["mode"] == "fixed" and fixed.warmup["batches"] == 2
    for run in (auto, fixed):
        assert len(run.step_seconds) == len(run.step_faults) == 6 and run.trend is not None
        assert run.provenance["workload_version"] == WORKLOAD_VERSION


EVERY_MODEL = r"""
import json, sys, types
import tensorflow as tf
from kit_workload import models, train
out = {}
for name in models.MODELS:
    for mode, precision in (("train", "fp32"), ("infer", "bf16")):
        models.set_precision(tf, precision)
        args = types.SimpleNamespace(model=name, image_size=75, batch_size=1, num_batches=1,
                                     num_warmup_batches=0, data_format="NHWC", mode=mode,
                                     display_every=1)
        out[f"{name}/{mode}/{precision}"] = train.run(tf, args)
        tf.keras.backend.clear_session()
print("kit-models: " + json.dumps(out))
"""


@pytest.mark.parametrize("flavor", ["stock", "latest"])
def test_every_model_trains_and_infers(kit_images, docker_client, flavor):
    """Each Keras application builds, trains a step in fp32 and infers in bf16 on TF 2.14
    (tf.keras) and TF 2.21 (Keras 3), at 75x75 (InceptionV3's smallest) to stay quick."""
    from kit.model.flavors import Flavor, image_tag

    # The flavor's image by its tag: earlier tests rebuild or re-pull it (a build is a new id,
    # its created label), and the id the fixture built first may be gone by now.
    output = docker_client.containers.run(
        image_tag(Flavor(flavor)), ["python", "-c", EVERY_MODEL], remove=True, network_mode="none",
        cpuset_cpus="0-1",
    ).decode()  # fmt: skip
    line = next(x for x in output.splitlines() if x.startswith("kit-models: "))
    rates = json.loads(line.removeprefix("kit-models: "))
    from kit.model.workload import Model

    assert set(rates) == {
        f"{m.value}/{mode}" for m in Model for mode in ("train/fp32", "infer/bf16")
    }
    assert all(rate > 0 for rate in rates.values()), rates


UPDATE_ORDER = r"""
import json
import numpy as np
import tensorflow as tf
from kit_workload import models, train
model = models.build_model(tf, "tiny", 32, "NHWC")
images, labels = train.synthetic_batch(tf, 4, 32, "NHWC")
step = train.make_step(tf, model, "train")
graph = step.get_concrete_function(images, labels).graph
updates = [op for op in graph.get_operations() if op.type == "ResourceApplyGradientDescent"]
gradients = {op.inputs[2].op.name for op in updates}
waits = [gradients <= {c.name for c in op.control_inputs} | {op.inputs[2].op.name}
         for op in updates]
variables = model.trainable_variables
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
with tf.GradientTape() as tape:
    loss = loss_fn(labels, model(images, training=True))
expected = [v.numpy() - train.LEARNING_RATE * g.numpy()
            for v, g in zip(variables, tape.gradient(loss, variables))]
before = [v.numpy() for v in variables]
step(images, labels)
error = max(float(np.max(np.abs(v.numpy() - e))) for v, e in zip(variables, expected))
change = max(float(np.max(np.abs(v.numpy() - m))) for v, m in zip(variables, before))
print("kit-update: " + json.dumps({"variables": len(variables), "updates": len(updates),
      "waits": waits, "error": error, "change": change}))
"""


@pytest.mark.parametrize("flavor", ["stock", "latest"])
def test_the_step_updates_every_weight_once_all_gradients_are_computed(
    kit_images, docker_client, flavor
):
    """One fused SGD update a weight, each waiting for every gradient of the step (run beside
    the backward pass, the updates oversubscribed the CPUs), with plain SGD's values: a step
    moves each weight by -learning rate x its gradient."""
    from kit.model.flavors import Flavor, image_tag

    output = docker_client.containers.run(
        image_tag(Flavor(flavor)), ["python", "-c", UPDATE_ORDER], remove=True,
        network_mode="none", cpuset_cpus="0-1",
    ).decode()  # fmt: skip
    line = next(x for x in output.splitlines() if x.startswith("kit-update: "))
    found = json.loads(line.removeprefix("kit-update: "))
    assert found["updates"] == found["variables"] == 8, found
    assert all(found["waits"]), found
    assert found["change"] > 1e-6, found
    assert found["error"] < 1e-5, found
