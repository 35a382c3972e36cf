"""Which settings can act on which build, said and merged before anything runs
(kit.model.acts), and confirmed by the verify run."""

from __future__ import annotations

import pytest

from kit.judging.onednn import OneDnnSummary, parse_verbose
from kit.judging.verify import fpmath_notes, warnings_for
from kit.model.acts import Needs, describe_inert, inert, needs
from kit.model.flavors import resolve_image
from kit.model.numa import NumaPolicy
from kit.model.profiles import ResolvedProfile, load_profiles
from kit.model.spec import RunSpec
from kit.model.workload import WorkloadSpec
from tests.conftest import invoke_with
from tests.fakes import FakeEngine

TUNED_ENV = load_profiles()["tuned"].env
POOL, ALWAYS = "oneDNN runs on TF's threadpool", "its oneDNN is always on"


@pytest.mark.parametrize(
    ("flavor", "env", "said"),
    [
        ("stock", TUNED_ENV, {k: "oneDNN runs on TF's threadpool" for k in TUNED_ENV}),
        ("latest", {"OMP_NUM_THREADS": "2"}, {"OMP_NUM_THREADS": POOL}),
        ("intel", TUNED_ENV, {}),
        ("intel", {"TF_ENABLE_ONEDNN_OPTS": "0"}, {"TF_ENABLE_ONEDNN_OPTS": ALWAYS}),
        ("stock", {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}, {}),
        ("stock", {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_DEFAULT_FPMATH_MODE": "BF16"},
         {"ONEDNN_DEFAULT_FPMATH_MODE": "TF_ENABLE_ONEDNN_OPTS=0 turns oneDNN off"}),
        ("intel", {"ZENDNN_TENSOR_POOL_LIMIT": "1", "TF_ENABLE_ZENDNN_OPTS": "1"},
         {v: "only AMD's ZenDNN (zentf) reads them"
          for v in ("TF_ENABLE_ZENDNN_OPTS", "ZENDNN_TENSOR_POOL_LIMIT")}),
        ("stock", {"MALLOC_ARENA_MAX": "2"}, {}),
    ],
)  # fmt: skip
def test_each_build_says_which_variables_it_never_reads(flavor, env, said):
    assert inert(resolve_image(flavor), env) == said


def test_an_image_that_is_no_flavor_is_not_judged():
    assert inert(resolve_image("registry:5000/team/tf:2.14"), TUNED_ENV) == {}


def test_a_declared_knob_wins_over_its_prefix():
    assert needs("OMP_WAIT_POLICY") is Needs.openmp
    assert needs("MKL_ENABLE_INSTRUCTIONS") is None
    assert (
        needs("MKL_ENABLE_INSTRUCTIONS", {"MKL_ENABLE_INSTRUCTIONS": Needs.openmp}) is Needs.openmp
    )


def test_the_words_group_variables_by_reason():
    found = {"KMP_BLOCKTIME": "a", "OMP_NUM_THREADS": "a", "ZENDNN_X": "b"}
    assert describe_inert(found, "stock") == (
        "KMP_BLOCKTIME, OMP_NUM_THREADS do nothing on stock (a); ZENDNN_X does nothing on stock (b)"
    )


def test_plan_says_which_settings_of_a_cell_cannot_act_and_merges_cells_that_differ_by_them(
    tmp_path,
):
    profiles = tmp_path / "p.toml"
    profiles.write_text(
        '[zen]\ndescription = "ZenDNN settings"\nenv = { ZENDNN_TENSOR_POOL_LIMIT = "1" }\n'
    )
    code, text = invoke_with(
        FakeEngine({}), "plan", "stock", "intel", "-p", "default", "-p", "tuned", "-p", "zen",
        "--profiles", str(profiles), "--model", "tiny",
    )  # fmt: skip
    assert code == 0, text
    assert (
        "note: stock:tuned: KMP_AFFINITY, KMP_BLOCKTIME, KMP_SETTINGS, OMP_NUM_THREADS do "
        "nothing on stock (oneDNN runs on TF's threadpool)"
    ) in text
    assert "intel:tuned:" not in text  # its OpenMP settings act
    for image in ("stock", "intel"):
        assert (
            f"merged: {image}:zen runs as {image}:default: ZENDNN_TENSOR_POOL_LIMIT does nothing "
            f"on {image} (only AMD's ZenDNN (zentf) reads them)"
        ) in text
    assert "4 cells (2 more merged into them) x 3 repeats" in text, text
    code, text = invoke_with(
        FakeEngine({}), "plan", "stock", "-p", "default", "-p", "zen", "--profiles",
        str(profiles), "--model", "tiny", "--keep-equivalent",
    )  # fmt: skip
    assert code == 0 and "2 cells x 3 repeats" in text, text


def test_verify_confirms_a_onednn_setting_that_could_not_act():
    env = {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}
    profile = ResolvedProfile("off", env, None, None, NumaPolicy(), ())
    spec = RunSpec(1, resolve_image("stock"), profile, (0, 1), WorkloadSpec(model="tiny"))
    said = warnings_for(spec, OneDnnSummary())
    assert "ONEDNN_DEFAULT_FPMATH_MODE cannot have had an effect: oneDNN did not run" in said


FPMATH_LINE = (
    "onednn_verbose,exec,cpu,convolution,{impl},forward_training,src_f32::blocked:acdb::f0 "
    "wei_f32:a:blocked:Acdb32a::f0 bia_undef::undef::: dst_f32::blocked:acdb::f0,"
    "attr-scratchpad:user attr-fpmath:bf16 ,alg:convolution_direct,mb8_ic16oc32_ih32oh32kh3sh1,0.81"
)


def _fpmath_spec(mode: str) -> RunSpec:
    env = {"ONEDNN_DEFAULT_FPMATH_MODE": mode}
    profile = ResolvedProfile("fpmath", env, None, None, NumaPolicy(), ())
    return RunSpec(1, resolve_image("stock"), profile, (0, 1), WorkloadSpec(model="tiny"))


@pytest.mark.parametrize(
    ("impl", "said"),
    [
        ("brgconv:avx512_core", "fpmath bf16 applied, but no bf16 kernel ran"),
        ("brgconv:avx512_core_amx", "fpmath bf16: 100% of oneDNN time in bf16 kernels"),
        ("brgconv:avx512_core_bf16", "fpmath bf16: 100% of oneDNN time in bf16 kernels"),
    ],
)
def test_verify_proves_the_fpmath_mode_from_the_log_and_says_whether_bf16_kernels_ran(impl, said):
    summary = parse_verbose([FPMATH_LINE.format(impl=impl)])
    assert summary.fpmath == "bf16"
    notes = fpmath_notes(_fpmath_spec("BF16"), summary)
    assert len(notes) == 1 and notes[0].startswith(said), notes
    assert fpmath_notes(_fpmath_spec("STRICT"), summary) == []  # fp32, nothing to prove


def test_an_fpmath_mode_no_primitive_carried_is_said():
    plain = parse_verbose([FPMATH_LINE.format(impl="x").replace(" attr-fpmath:bf16", "")])
    (note,) = fpmath_notes(_fpmath_spec("BF16"), plain)
    assert "no primitive ran with an fpmath mode" in note


def test_the_fpmath_knob_sets_onednns_variable_and_its_caveat_is_said_before_it_runs(tmp_path):
    code, text = invoke_with(
        FakeEngine(lambda spec: 10.0), "sweep", "stock", "-k", "fpmath=strict,bf16",
        "-k", "onednn=0,1", "--model", "tiny", "--repeats", "1", "--results", str(tmp_path),
    )  # fmt: skip
    assert code == 0, text
    assert "note: stock:fpmath=bf16 onednn=1: ONEDNN_DEFAULT_FPMATH_MODE=BF16 computes" in text
    # with oneDNN off the mode cannot act: merged into the strict cell
    assert (
        "stock:fpmath=bf16 onednn=0 runs as stock:fpmath=strict onednn=0: ONEDNN_DEFAULT_"
        "FPMATH_MODE does nothing on stock (TF_ENABLE_ONEDNN_OPTS=0 turns oneDNN off)"
    ) in text
