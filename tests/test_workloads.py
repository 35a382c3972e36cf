"""Workloads as data: models, modes, precision, allocators, latency, and the gate on latency.
The real containers run them in tests/test_workloads_docker.py."""

from __future__ import annotations

import dataclasses

import pytest

from kit.errors import ConfigError, UsageError
from kit.judging.choices import GateOn
from kit.judging.gate import Gate, Outcome, judge_cells
from kit.judging.judge import workload_problems
from kit.judging.parse import parse_latency_line, parse_output
from kit.model.flops import FORWARD_FLOP, flop_per_image
from kit.model.latency import Latency
from kit.model.profiles import Profile, parse_profiles
from kit.model.results import RunResult, Status
from kit.model.workload import (
    Allocator,
    Mode,
    Model,
    Precision,
    Preset,
    Workload,
    WorkloadSpec,
    workload_from_json,
    workload_json,
)
from kit.model.workload_record import WorkloadRecord
from kit.planning.knobs import BUILTIN, apply, parse_knob
from kit.reporting.formats import Format
from kit.reporting.rows import rows
from kit.reporting.table import render
from kit.workload import preload
from kit.workload.train import latency_line, percentiles
from tests.conftest import DATA, invoke_with, json_rows
from tests.fakes import AVX2_FLAGS, FakeEngine

STOCK = {"kit/tensorflow:stock"}


def test_every_model_has_its_work_per_image():
    for model in Model:
        assert flop_per_image(model.value, None, forward_only=True) > 0
    assert set(FORWARD_FLOP) == {m.value for m in Model} - {"tiny"}
    resnet = flop_per_image("resnet50", None, forward_only=False)
    assert resnet == pytest.approx(3 * 7.723e9)
    assert flop_per_image("resnet50", 112, True) == pytest.approx(7.723e9 / 4)
    assert flop_per_image("inception_v3", 299, True) == FORWARD_FLOP["inception_v3"]


def test_presets_for_latency_and_throughput():
    latency = WorkloadSpec.from_preset(Preset.latency)
    assert (latency.mode, latency.batch_size) == (Mode.infer, 1)
    assert WorkloadSpec.from_preset(Preset.throughput).forward_only
    assert WorkloadSpec.from_preset(Preset.latency, mode=Mode.train).mode is Mode.train


def test_the_command_line_names_only_what_differs_from_the_defaults():
    plain = WorkloadSpec(model=Model.tiny).argv(None, None)
    assert not any(f.startswith(("--mode=", "--precision=", "--allocator=")) for f in plain)
    spec = WorkloadSpec(
        model=Model.densenet121, mode=Mode.infer, precision=Precision.bf16,
        allocator=Allocator.tcmalloc,
    )  # fmt: skip
    assert spec.argv(None, None)[-4:] == (
        "--data_format=NHWC", "--mode=infer", "--precision=bf16", "--allocator=tcmalloc"
    )  # fmt: skip
    assert "densenet121 inference" in spec.describe() and "bf16, tcmalloc" in spec.describe()


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"model": Model.mobilenet_v2, "data_format": "NCHW"}, "run NHWC only"),
        ({"precision": "fp16"}, "unknown precision 'fp16'"),
        ({"allocator": "mimalloc"}, "unknown allocator"),
    ],
)
def test_workloads_that_cannot_run_are_refused(values, match):
    with pytest.raises(UsageError, match=match):
        WorkloadSpec(**values)


def test_tf_cnn_benchmarks_takes_its_own_models_and_the_script_folder(tmp_path):
    (tmp_path / "tf_cnn_benchmarks.py").write_text("")
    spec = WorkloadSpec(workload=Workload.tf_cnn_benchmarks, workload_dir=tmp_path)
    assert spec.workload_dir == tmp_path  # the scripts/tf_cnn_benchmarks folder itself
    for values, match in (
        ({"model": Model.densenet121}, "has no 'densenet121' model"),
        ({"model": Model.mobilenet_v2}, "mobilenet model needs TensorFlow 1"),
        ({"precision": Precision.bf16}, "no bf16"),
    ):
        with pytest.raises(UsageError, match=match):
            dataclasses.replace(spec, **values)


def test_old_records_read_forward_only_as_the_mode():
    data = workload_json(WorkloadSpec(mode=Mode.infer, allocator=Allocator.jemalloc))
    assert workload_from_json(data) == WorkloadSpec(mode=Mode.infer, allocator=Allocator.jemalloc)
    old = {k: v for k, v in data.items() if k not in ("mode", "precision", "allocator")}
    assert workload_from_json({**old, "forward_only": True}).mode is Mode.infer


def test_precision_and_allocator_are_knobs_and_profile_settings():
    profile = Profile("base")
    for text, field, value in (("precision=bf16", "precision", "bf16"),
                               ("allocator=jemalloc", "allocator", "jemalloc")):  # fmt: skip
        knob = parse_knob(text, BUILTIN)
        assert getattr(apply(profile, knob.knob, knob.resolve({})[0]), field) == value
    with pytest.raises(UsageError, match="'int8' is not one of fp32, bf16"):
        parse_knob("precision=fp32,int8", BUILTIN).resolve({})
    saved = parse_profiles('[fast.run]\nprecision = "bf16"\nallocator = "tcmalloc"\n', "p.toml")
    assert (saved["fast"].precision, saved["fast"].allocator) == ("bf16", "tcmalloc")
    with pytest.raises(ConfigError, match="run allocator must be system or jemalloc or tcmalloc"):
        parse_profiles('[x.run]\nallocator = "hoard"\n', "p.toml")


def test_percentiles_and_the_latency_line_round_trip():
    times = [0.010 + i * 0.001 for i in range(100)]
    p50, p90, p99 = percentiles(times)
    assert (p50, p90, p99) == pytest.approx((59.5, 99.1, 108.01))
    assert percentiles([0.004]) == (4.0, 4.0, 4.0)
    parsed = parse_latency_line(latency_line(times))
    assert parsed == Latency(59.5, 99.1, 108.01, 100)


def test_latency_output_of_the_real_workload_golden():
    """Captured from `python -m kit_workload --mode infer --allocator jemalloc` in the stock
    image (tiny model, batch 4, 5 batches)."""
    with (DATA / "kit-infer-tiny.log").open() as log:
        parsed = parse_output(log)
    assert parsed.images_per_sec == 1879.29
    assert parsed.latency == Latency(1.942, 2.555, 2.782, 5)
    assert all(step.loss is None for step in parsed.steps) and len(parsed.steps) == 5
    assert parsed.provenance["allocator"]["loaded"] == ["jemalloc"]
    assert parsed.provenance["mode"] == "infer"


def test_the_maps_tell_which_allocator_is_loaded():
    maps = (
        "7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 \n"
        "7f1c2b2d3000-7f1c2b2e4000 r-xp 00002000 00:32 1475104   /usr/lib/x86_64-linux-gnu/"
        "libtcmalloc_minimal.so.4.5.10\n"
        "7ffd5e3f4000-7ffd5e415000 rw-p 00000000 00:00 0                          [stack]\n"
        "7f1c2b000000-7f1c2b100000 r--p 00000000 00:32 99 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    )
    assert preload.mapped(maps) == {
        "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10"
    }
    assert preload.mapped("55f-56f r--p 0 00:32 1 /usr/lib/libjemalloc.so.2\n") == {
        "jemalloc": "/usr/lib/libjemalloc.so.2"
    }
    assert preload.mapped("") == {}


def _spec(**workload):
    from kit.model.numa import NumaPolicy
    from kit.model.profiles import ResolvedProfile
    from kit.model.spec import ImageRef, RunSpec

    profile = ResolvedProfile("default", {}, None, None, NumaPolicy(), ())
    return RunSpec(1, ImageRef("stock", "kit/tensorflow:stock", "stock"), profile, (0, 1),
                   WorkloadSpec(**workload))  # fmt: skip


def test_a_run_that_did_not_get_its_allocator_or_precision_is_caught():
    jemalloc = _spec(allocator=Allocator.jemalloc)
    assert workload_problems(jemalloc, {"allocator": {"loaded": ["jemalloc"]}}) == []
    assert workload_problems(jemalloc, {"allocator": {"loaded": []}}) == [
        "allocator jemalloc requested, but the process maps no jemalloc"
    ]
    assert "maps tcmalloc" in workload_problems(_spec(), {"allocator": {"loaded": ["tcmalloc"]}})[0]
    assert "rebuild it" in workload_problems(jemalloc, {})[0]  # an image from before allocators
    bf16 = _spec(precision=Precision.bf16)
    policy = {"allocator": {"loaded": []}, "precision": {"keras_policy": "float32"}}
    assert workload_problems(bf16, policy) == ["Keras policy float32, not mixed_bfloat16"]


def test_bf16_is_refused_where_the_cpu_would_emulate_it(tmp_path):
    avx2 = FakeEngine({"stock:default": 5.0}, images=STOCK, isa_flags=AVX2_FLAGS)
    args = ["run", "stock", "--precision", "bf16", "--results", str(tmp_path)]
    code, text = invoke_with(avx2, *args)
    assert code == 2 and len(text.strip().splitlines()) <= 2, text
    assert "bf16 on fake (Test CPU) would be emulated" in text and "--allow-emulated" in text
    assert avx2.ran == []
    # A sweep reaching bf16 through its knob is refused the same way.
    code, text = invoke_with(avx2, "sweep", "stock", "-k", "precision=fp32,bf16",
                             "--results", str(tmp_path))  # fmt: skip
    assert code == 2 and "would be emulated" in text and avx2.ran == []
    code, text = invoke_with(avx2, *args, "--allow-emulated", "--format", "json")
    assert code == 0, text
    assert [s.workload.precision for s in avx2.ran] == [Precision.bf16]
    native = FakeEngine({"stock:default": 5.0}, images=STOCK)  # Zen 4: avx512_bf16
    assert invoke_with(native, *args)[0] == 0


def _result(repeat, rate, p99, cell=1):
    return RunResult(
        index=repeat + 1, image="stock", image_ref="kit/tensorflow:stock", profile="default",
        cpus="0-1", numactl="-", command=("python",), env={}, status=Status.ok,
        images_per_sec=rate, started="", ended="", exit_code=0, log_path="/x.log", cell=cell,
        repeat=repeat, workload=WorkloadRecord("resnet50", 32, 10, 2, mode=Mode.infer),
        latency_ms=Latency(p99 * 0.8, p99 * 0.9, p99, 50),
    )  # fmt: skip


def test_the_gate_on_latency_fails_a_longer_tail_at_the_same_throughput():
    before = [_result(i, 100.0 + i, 20.0 + 0.1 * i) for i in range(3)]
    after = [_result(i, 100.0 + i, 26.0 + 0.1 * i) for i in range(3)]  # p99 30% longer

    def failed(now, then, on=GateOn.throughput):
        result = judge_cells(now, then, Gate("before", 5, on))
        return [d.line for d in result.of(Outcome.failed)]

    assert failed(after, before) == []
    (failure,) = failed(after, before, GateOn.p99)
    assert failure.startswith("stock:default: 0.77x of the baseline session in p99 latency")
    assert failed(before, after, GateOn.p99) == []  # shorter is better
    assert failed(after, before, GateOn.p50) != []


def test_inference_tables_show_latency(tmp_path):
    table = [_result(i, 100.0 + i, 20.0 + i) for i in range(3)]
    (row,) = rows(table)
    assert (row.mode, row.latency_p99) == ("infer", 21.0)
    assert row.latency_p50 == pytest.approx(16.8)
    text = render(table, Format.table)
    assert "p50 ms" in text and "p99 ms" in text and "21.0" in text
    train = [
        dataclasses.replace(r, workload=dataclasses.replace(r.workload, mode=Mode.train))
        for r in table
    ]
    assert "p99 ms" not in render(train, Format.table)


def test_latency_through_the_cli_and_its_gate(tmp_path):
    fast = FakeEngine({"stock:default": 100.0}, images=STOCK)
    base = ["compare", "stock", "-p", "default", "--preset", "latency", "--results", str(tmp_path)]
    code, text = invoke_with(fast, *base, "--format", "json")
    assert code == 0, text
    (row,) = json_rows(text)
    assert row["mode"] == "infer" and row["latency_p99"] == pytest.approx(13.0)
    assert {s.workload.batch_size for s in fast.ran} == {1}
    first = sorted(p for p in tmp_path.iterdir() if p.is_dir())[0].name
    slow = FakeEngine({"stock:default": 70.0}, images=STOCK)
    gate = ["--baseline-session", first, "--fail-if-slower", "5", "--gate-on", "p99"]
    code, text = invoke_with(slow, *base, *gate)
    assert code == 1 and "in p99 latency" in text
    code, text = invoke_with(slow, *base, "--gate-on", "p99")
    assert code == 2 and "--gate-on goes with" in text


def test_the_docs_list_every_model_with_its_work():
    import re

    from tests.conftest import DATA as data

    readme = (data.parent.parent / "docs" / "workloads.md").read_text()
    table = dict(re.findall(r"^\| `(\w+)` \| .+ \| \d+ \| ([0-9.]+) \|$", readme, re.MULTILINE))
    assert set(table) == {m.value for m in Model}
    for name, flop in FORWARD_FLOP.items():
        assert float(table[name]) == pytest.approx(flop / 1e9, abs=0.006)


def test_profiles_show_says_what_a_profile_fixes_for_its_runs(tmp_path):
    from tests.conftest import invoke

    saved = tmp_path / "p.toml"
    saved.write_text('[fast]\nextends = "tuned"\n[fast.run]\nprecision = "bf16"\n')
    code, text = invoke("profiles", "show", "fast", "--profiles", str(saved), "--cpus", "0")
    assert code == 0 and "run:          precision=bf16" in text


def test_a_records_workload_reads_older_records_and_refuses_what_cannot_be():
    older = {
        "model": "resnet50",
        "batch_size": 128,
        "num_batches": 30,
        "num_warmup_batches": 2,
        "data_format": "NHWC",
        "forward_only": True,
    }  # as records were before `mode`
    record = WorkloadRecord.from_json(older)
    assert record.mode is Mode.infer and record.precision == "fp32"
    assert record.describe() == "resnet50 infer, batch 128, 30 batches, warmup 2, NHWC"
    assert WorkloadRecord.from_json(record.to_json()) == record
    assert WorkloadRecord.from_json(None) is None
    with pytest.raises(ValueError, match="batch_size cannot be 0"):
        WorkloadRecord("tiny", 0, 10, "auto")
    with pytest.raises(ValueError, match="num_warmup_batches cannot be 'soon'"):
        WorkloadRecord("tiny", 8, 10, "soon")
