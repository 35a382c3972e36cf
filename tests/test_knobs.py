"""Knobs as data and the sweep's grid: how each kind is applied, placeholders and ranges, when a
knob can act (per oneDNN runtime, per node count), merging, --where, user knobs from TOML."""

import pytest

from kit.errors import ConfigError, UsageError
from kit.model.profiles import load_profiles
from kit.model.workload import WorkloadSpec
from kit.planning.knobs import BUILTIN, KnobKind, apply, parse_knob, parse_knobs, registry
from kit.planning.sweep import grid
from tests.fakes import C4, EPYC

PROFILES = load_profiles()
WORKLOAD = WorkloadSpec(model="tiny", batch_size=8, num_batches=2, num_warmup_batches=1)


def knobs(*texts, extra=None):
    return [parse_knob(t, registry(extra)) for t in texts]


def sweep(images, *texts, base="default", topology=EPYC, where=None, extra=None):
    return grid(images, knobs(*texts, extra=extra), PROFILES[base], topology, WORKLOAD, where=where)


def test_every_issue_knob_is_built_in():
    wanted = "inter intra omp blocktime affinity onednn numa cores smt instances batch image"
    assert set(wanted.split()) <= set(BUILTIN)


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("intra=3", lambda p: p.intra_op == "3"),
        ("inter=2", lambda p: p.inter_op == "2"),
        ("blocktime=0", lambda p: p.env["KMP_BLOCKTIME"] == "0"),
        ("affinity=compact", lambda p: p.env["KMP_AFFINITY"] == "granularity=fine,compact,1,0"),
        ("affinity=none", lambda p: p.env["KMP_AFFINITY"] == "disabled"),
        ('affinity="granularity=fine,scatter"', lambda p: "scatter" in p.env["KMP_AFFINITY"]),
        ("onednn=0", lambda p: p.env["TF_ENABLE_ONEDNN_OPTS"] == "0"),
        ("omp={cores}", lambda p: p.env["OMP_NUM_THREADS"] == "2"),
        ("numa=interleave", lambda p: dict(p.numactl) == {"interleave": "all"}),
        ("numa=local", lambda p: dict(p.numactl) == {"cpunodebind": "0", "membind": "0"}),
        ("numa=localalloc", lambda p: p.numactl["localalloc"] is True),
        ("cores=1", lambda p: p.select["cores"] == 1),
        ("smt=one", lambda p: p.select["one_thread_per_core"] is True),
        ("instances=2", lambda p: p.instances == 2),
        ("batch=64", lambda p: p.batch_size == 64),
    ],
)
def test_each_kind_is_applied_to_the_profile(text, check):
    (one,) = knobs(text)
    (value,) = one.resolve({"cores": 2, "threads": 2, "nodes": 1, "last_node": 0})
    assert check(apply(PROFILES["default"], one.knob, value))


def test_numa_replaces_the_base_policy():
    (one,) = knobs("numa=none")
    assert dict(apply(PROFILES["interleave"], one.knob, "none").numactl) == {}


def test_placeholders_and_ranges_resolve_against_the_host():
    (cores,) = knobs("cores=1..{cores}")
    assert cores.resolve({"cores": 4, "threads": 8, "nodes": 1, "last_node": 0}) == (
        "1", "2", "3", "4",
    )  # fmt: skip
    (intra,) = knobs("intra=1,2,{cores}")
    assert intra.resolve({"cores": 2, "threads": 2, "nodes": 1, "last_node": 0}) == ("1", "2")


@pytest.mark.parametrize(
    "text",
    ["nope=1", "intra", "=1", "intra=", "intra=1,,2", "intra=0", "intra=x", "numa=everywhere",
     "smt=two", "cores=3..1", "intra={sockets}", "batch=-1"],
)  # fmt: skip
def test_bad_knobs_are_refused(text):
    with pytest.raises(UsageError):
        for one in knobs(text):
            one.resolve({"cores": 2, "threads": 2, "nodes": 1, "last_node": 0})


def test_a_grid_is_the_cross_product_with_one_column_per_knob():
    g = sweep(["intel"], "intra=1,2", "blocktime=0,1,200")
    assert g.knobs == ("intra", "blocktime")
    assert len(g.cells) == 6 and not g.merged
    assert g.cells[0].profile.name == "intra=1 blocktime=0"
    assert g.knob_values()["intel:intra=2 blocktime=200"] == {"intra": "2", "blocktime": "200"}


def test_openmp_knobs_merge_on_a_threadpool_build_only():
    g = sweep(["stock", "intel"], "intra=1,2", "blocktime=0,1")
    stock = [c for c in g.cells if c.image == "stock"]
    intel = [c for c in g.cells if c.image == "intel"]
    assert len(stock) == 2 and len(intel) == 4
    assert len(g.merged) == 2
    assert all("TF's threadpool" in m.reason for m in g.merged)
    assert g.merged[0].describe() == (
        "stock:intra=1 blocktime=1 runs as stock:intra=1 blocktime=0: KMP_BLOCKTIME does "
        "nothing on stock (oneDNN runs on TF's threadpool)"
    )


def test_memory_policies_merge_on_one_node_but_not_on_two():
    one = sweep(["intel"], "numa=none,interleave,membind", base="tuned")
    assert len(one.cells) == 1 and "one NUMA node" in one.merged[0].reason
    two = sweep(["intel"], "numa=none,interleave,membind", base="tuned", topology=C4)
    assert len(two.cells) == 3 and not two.merged


def test_values_that_resolve_alike_merge():
    g = sweep(["intel"], "intra=2,{cores}", "smt=one,all")
    assert len(g.cells) == 1  # two cores, no SMT: smt=one is every thread already
    assert {m.reason for m in g.merged} == {"the same runs once placeholders resolve on this host"}
    smt = sweep(["intel"], "smt=one,all", topology=C4)
    assert len(smt.cells) == 2


def test_an_image_knob_is_its_own_axis():
    g = sweep(["stock"], "image=stock,intel", "intra=1,2")
    assert g.images == ("stock", "intel") and g.knobs == ("image", "intra")
    assert g.cells[0].values == (("image", "stock"), ("intra", "1"))


def test_where_filters_cells_and_names_are_checked():
    g = sweep(["intel"], "inter=1,2", "intra=1,2", where="inter * intra <= threads")
    assert len(g.cells) == 3 and g.left_out == 1
    g = sweep(["intel"], "affinity=compact,scatter", where="affinity == 'compact'")
    assert len(g.cells) == 1
    for bad in ("inter >", "sockets > 1", "__import__('os')", "inter ** 2 > 1", "intra / 0"):
        with pytest.raises(UsageError):
            sweep(["intel"], "inter=1,2", "intra=1,2", where=bad)


def test_an_empty_where_result_is_refused():
    with pytest.raises(UsageError, match="leaves no cell"):
        sweep(["intel"], "intra=1,2", where="intra > 5")


def test_a_value_beyond_the_host_is_refused_with_the_plan():
    with pytest.raises(UsageError, match="cell intel:cores=64: --cores 64 asks for more than"):
        sweep(["intel"], "cores=1,64")


def test_a_knob_given_twice_is_refused():
    with pytest.raises(UsageError, match="twice"):
        sweep(["intel"], "intra=1", "intra=2")


def test_user_knobs_from_toml():
    extra = parse_knobs(
        '[arenas]\nenv = "MALLOC_ARENA_MAX"\ndescription = "glibc arenas"\n'
        '[spin]\nenv = "KMP_LIBRARY"\nacts = "openmp"\naliases = { fast = "turnaround" }\n',
        "knobs.toml",
    )
    assert extra["arenas"].kind is KnobKind.env and extra["spin"].source == "knobs.toml"
    g = sweep(["stock"], "arenas=1,4", "spin=fast,throughput", extra=extra)
    assert len(g.cells) == 2  # spin acts only on OpenMP
    assert g.cells[0].profile.env == {"MALLOC_ARENA_MAX": "1", "KMP_LIBRARY": "turnaround"}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[a]\nenv = \n", "knobs.toml:2"),
        ('[a]\nenv = "X"\n\n[intra]\nenv = "Y"\n', "knobs.toml:4"),
        ('[a]\nvar = "X"\n', "knobs.toml:1"),
        ('[a]\nenv = "1X"\n', "knobs.toml:1"),
        ('[a]\nenv = "X"\nacts = "numa"\n', "knobs.toml:1"),
        ("a = 1\n", "knobs.toml:1"),
    ],
)
def test_user_knob_errors_name_file_and_line(text, where):
    with pytest.raises((ConfigError, UsageError)) as info:
        parse_knobs(text, "knobs.toml")
    assert where in info.value.message


def test_a_user_knob_acting_on_openmp_only_merges_on_stock():
    extra = parse_knobs('[mkl]\nenv = "MKL_ENABLE_INSTRUCTIONS"\nacts = "openmp"\n', "k.toml")
    assert len(sweep(["stock"], "mkl=AVX2,AVX512", extra=extra).cells) == 1
    assert len(sweep(["intel"], "mkl=AVX2,AVX512", extra=extra).cells) == 2
