import itertools
import resource
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.errors import UsageError
from kit.judging.onednn import (
    WITH_ENGINE,
    WITHOUT_ENGINE,
    Head,
    Layout,
    OneDnnSummary,
    Tally,
    VerboseAccumulator,
    parse_exec,
    parse_head,
    parse_isa,
    parse_runtime,
    parse_template,
    parse_verbose,
    parse_version,
)
from kit.judging.parse import parse_output
from tests.conftest import DATA

LOGS = DATA / "onednn"
CONV_3X = (
    "cpu,convolution,jit:avx512_core,forward_training,src_f32::blocked:acdb::f0 "
    "wei_f32::blocked:Acdb16a::f0 bia_f32::blocked:a::f0 dst_f32::blocked:acdb::f0,,"
    "alg:convolution_direct,mb32_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3,1.23"
)
TEMPLATE = (
    "template:operation,engine,primitive,implementation,prop_kind,memory_descriptors,"
    "attributes,auxiliary,problem_desc,exec_time"
)


def parse_file(name):
    with (LOGS / name).open() as log:
        return parse_verbose(log)


def test_onednn_3x_with_template():
    summary = parse_file("onednn-3.2-template.log")
    assert summary.enabled
    assert summary.version == "3.2.1"
    assert (summary.runtime, summary.threads) == ("threadpool", 2)
    assert summary.isa == "Intel AVX-512 with Intel DL Boost and bfloat16 support"
    assert summary.primitives[("convolution", "jit:avx512_core")] == Tally(2, 2.5)
    assert summary.primitives[("batch_normalization", "bnorm_jit:avx512_core")] == Tally(1, 0.5)
    assert len(summary.primitives) == 7
    assert summary.total_exec == 8
    assert summary.total_ms == 5.0
    assert summary.ref_ms == 1.0
    assert summary.ref_share == 0.2
    assert summary.malformed == 0
    assert summary.verbose_lines == 13


def test_onednn_v0_tags_and_timestamps():
    summary = parse_file("onednn-v0-timestamp.log")
    assert summary.version == "3.4.1"
    assert (summary.runtime, summary.threads) == ("OpenMP", 8)
    assert summary.isa == "Intel AVX2"
    # create:cache_miss is not an execution, and graph partitions repeat their primitives' time.
    assert dict(summary.primitives) == {
        ("convolution", "brg_conv_fwd:avx2"): Tally(2, 4.0),
        ("matmul", "brg_matmul:avx2"): Tally(1, 1.5),
        ("reorder", "ref:any"): Tally(1, 0.5),
    }
    assert summary.total_ms == 6.0
    assert summary.ref_share == pytest.approx(0.5 / 6.0)
    assert summary.malformed == 0


def test_dnnl_1x():
    summary = parse_file("dnnl-1.6.log")
    assert summary.version == "1.6.0"
    assert (summary.runtime, summary.threads) == ("OpenMP", None)
    assert summary.isa == "Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions"
    assert summary.primitives[("reorder", "simple:any")] == Tally(1, 0.0078125)
    assert summary.primitives[("convolution", "gemm:jit")] == Tally(1, 4.0)
    assert summary.total_exec == 5
    assert summary.ref_ms == 1.0
    assert summary.ref_share == pytest.approx(1.0 / 8.5078125)


def test_mkldnn_0x_has_no_engine_column():
    summary = parse_file("mkldnn-0.21.log")
    assert summary.version == "0.21.0"
    assert summary.runtime is None and summary.threads is None
    assert summary.isa == "Intel(R) Advanced Vector Extensions 2 (Intel(R) AVX2)"
    assert dict(summary.primitives) == {
        ("reorder", "jit:uni"): Tally(1, 0.5),
        ("convolution", "jit:avx2"): Tally(2, 3.0),
        ("eltwise", "jit:avx2"): Tally(1, 0.25),
        ("pooling", "jit:avx"): Tally(1, 0.25),
        ("lrn", "ref:any"): Tally(1, 2.5),
    }
    assert summary.ref_share == 2.5 / 6.5
    assert summary.malformed == 0


def test_mixed_with_tensorflow_output():
    summary = parse_file("mixed-tf-noise.log")
    assert summary.version == "2.7.3"
    assert (summary.runtime, summary.threads) == ("threadpool", 4)
    assert dict(summary.primitives) == {
        ("convolution", "jit:avx512_core"): Tally(2, 5.0),
        ("eltwise", "jit:avx512_core"): Tally(1, 0.5),
        ("reorder", "simple:any"): Tally(1, 0.5),
    }
    assert summary.ref_share == 0.0
    # A truncated record, two records on one line, and a record spliced into a TF log line.
    assert summary.malformed == 3
    assert summary.verbose_lines == 12


def test_verbose_noise_leaves_the_throughput_alone():
    with (LOGS / "mixed-tf-noise.log").open() as log:
        assert parse_output(log).images_per_sec == 33.62


def test_a_log_without_verbose_output():
    summary = parse_verbose(["total images/sec: 33.62", "", "Step\tImg/sec\ttotal_loss"])
    assert summary == OneDnnSummary()
    assert not summary.enabled
    assert (summary.total_exec, summary.total_ms, summary.ref_share) == (0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("line", "head"),
    [
        ("onednn_verbose,exec,cpu,x", Head("exec", None, "cpu,x")),
        ("onednn_verbose,info,oneDNN v3.2.1", Head("info", None, "oneDNN v3.2.1")),
        ("onednn_verbose,v0,info,cpu,isa:AVX2", Head("info", None, "cpu,isa:AVX2")),
        ("onednn_verbose,v1,primitive,exec,cpu,x", Head("exec", "primitive", "cpu,x")),
        ("onednn_verbose,1700000000000.123,primitive,exec,cpu", Head("exec", "primitive", "cpu")),
        (
            "onednn_verbose,v1,1700000000000.123,primitive,exec,cpu",
            Head("exec", "primitive", "cpu"),
        ),
        ("dnnl_verbose,1607393146348.667969,exec,cpu", Head("exec", None, "cpu")),
        ("dnnl_verbose,create:cache_miss,cpu,x", Head("create:cache_miss", None, "cpu,x")),
        ("mkldnn_verbose,exec,convolution,jit:avx2", Head("exec", None, "convolution,jit:avx2")),
        ("onednn_verbose,graph,exec,cpu,1", Head("exec", "graph", "cpu,1")),
        ("onednn_verbose,info", Head("info", None, "")),
    ],
)
def test_heads(line, head):
    assert parse_head(line) == head


@pytest.mark.parametrize(
    "line",
    [
        "",
        "onednn_verbose",
        "onednn_verbose,",
        "onednn_verbose,1700000000000.123",
        "ONEDNN_VERBOSE=1",
        "xonednn_verbose,exec,cpu",
        "I tensorflow] onednn_verbose,exec,cpu",
    ],
)
def test_non_heads(line):
    assert parse_head(line) is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("oneDNN v3.2.1 (commit N/A)", ("3.2.1", None)),
        ("oneDNN v3.4.0-rc (commit 1234)", ("3.4.0-rc", None)),
        ("DNNL v1.6.0 (commit 1ebcea79a1f1f25e63fcb2ea7ab7ad6b8c3a0537)", ("1.6.0", None)),
        ("Intel MKL-DNN v0.21.0 (commit abc)", ("0.21.0", None)),
        ("Intel(R) MKL-DNN v0.20.3 (Git Hash abc),Intel(R) AVX2", ("0.20.3", "Intel(R) AVX2")),
        ("cpu,runtime:OpenMP", None),
        ("oneDNN custom operations are on", None),
    ],
)
def test_versions(payload, expected):
    assert parse_version(payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("cpu,runtime:threadpool,nthr:2", ("threadpool", 2)),
        ("cpu,runtime:OpenMP,nthr:56", ("OpenMP", 56)),
        ("cpu,runtime:OpenMP", ("OpenMP", None)),
        ("cpu,runtime:sequential,nthr:1", ("sequential", 1)),
        ("cpu,runtime:TBB,nthr:0", ("TBB", None)),
        ("gpu,runtime:none", None),
        ("cpu,isa:Intel AVX2", None),
        ("cpu,runtime:OpenMP,nthr:many", None),
    ],
)
def test_runtimes(payload, expected):
    assert parse_runtime(payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("cpu,isa:Intel AVX-512 with Intel DL Boost", "Intel AVX-512 with Intel DL Boost"),
        ("cpu,isa:Intel AVX-512 with AVX512BW, AVX512VL", "Intel AVX-512 with AVX512BW, AVX512VL"),
        ("Detected ISA is Intel AVX2", "Intel AVX2"),
        ("gpu,runtime:none", None),
    ],
)
def test_isas(payload, expected):
    assert parse_isa(payload) == expected


@pytest.mark.parametrize(
    ("payload", "layout"),
    [
        ("prim_" + TEMPLATE, WITH_ENGINE),
        (TEMPLATE, WITH_ENGINE),
        (TEMPLATE.replace("template:", "template:timestamp,"), WITH_ENGINE),
        (TEMPLATE.replace(",exec_time", "") + ",exec_time,extra", Layout(0, 1, 2, 1)),
        ("template:operation,primitive,implementation,exec_time", WITHOUT_ENGINE),
        ("template:operation,engine,primitive", None),
        ("template:primitive,operation,implementation,exec_time", None),
        ("cpu,isa:Intel AVX2", None),
    ],
)
def test_templates(payload, layout):
    assert parse_template(payload) == layout


@pytest.mark.parametrize(
    ("rest", "layout", "expected"),
    [
        (CONV_3X, None, ("cpu", "convolution", "jit:avx512_core", 1.23)),
        (CONV_3X, WITH_ENGINE, ("cpu", "convolution", "jit:avx512_core", 1.23)),
        (
            "gpu:0,matmul,jit:gemm:any,undef,src,,,4x4:4x4,0.7",
            None,
            ("gpu:0", "matmul", "jit:gemm:any", 0.7),
        ),
        (
            "cpu,reorder,simple:any,undef,src dst,,,64,0.01",
            None,
            ("cpu", "reorder", "simple:any", 0.01),
        ),
        ("reorder,jit:uni,undef,in out,num:1,64,0.5", None, ("cpu", "reorder", "jit:uni", 0.5)),
        ("cpu,reorder,jit:uni,undef,in out,,,64,0.5", WITHOUT_ENGINE, None),
        ("cpu,convolution,jit:avx2,forward_trai", None, None),
        ("cpu,convolution,jit:avx2", None, None),
        ("cpu,convolution,jit:avx2,,,,,1.5x", None, None),
        ("cpu,convolution,jit:avx2,,,,,nan", None, None),
        ("cpu,convolution,jit:avx2,,,,,-1", None, None),
        ("cpu,Convolution!,jit:avx2,,,,,1", None, None),
        ("cpu,convolution,,,,,,1", None, None),
        ("cpu,eltwise,jit:avx2,,,,0.1onednn_verbose,exec,cpu,reorder,jit:uni,,,,0.2", None, None),
        ("", None, None),
    ],
)
def test_exec_fields(rest, layout, expected):
    parsed = parse_exec(rest, layout)
    assert (parsed if parsed is None else tuple(parsed)) == expected


def test_other_engines_are_seen_but_not_timed():
    summary = parse_verbose(
        [
            "onednn_verbose,exec,gpu,convolution,jit:ir,forward_training,src,,,mb1,9.0",
            "onednn_verbose,exec,cpu2gpu,reorder,ocl:simple:any,undef,src dst,,,64,2.0",
            "onednn_verbose,exec,cpu," + CONV_3X.removeprefix("cpu,"),
        ]
    )
    assert summary.verbose_lines == 3 and summary.malformed == 0
    assert summary.total_exec == 1 and summary.total_ms == 1.23


def test_template_columns_win_over_the_guess():
    # A template that moves the time one column before the end: the guess would read "x".
    lines = [
        "onednn_verbose,info,prim_" + TEMPLATE.replace(",exec_time", ",exec_time,note"),
        "onednn_verbose,exec,cpu,convolution,jit:avx2,forward,src,,,mb1,2.5,x",
    ]
    assert parse_verbose(lines).primitives == {("convolution", "jit:avx2"): Tally(1, 2.5)}
    assert parse_verbose(lines[1:]).malformed == 1


def test_first_header_wins_and_a_bad_template_is_counted():
    summary = parse_verbose(
        [
            "onednn_verbose,info,oneDNN v3.2.1 (commit N/A)",
            "onednn_verbose,info,cpu,runtime:OpenMP,nthr:4",
            "onednn_verbose,info,cpu,isa:Intel AVX2",
            "onednn_verbose,info,oneDNN v3.3.0 (commit N/A)",
            "onednn_verbose,info,cpu,runtime:threadpool,nthr:8",
            "onednn_verbose,info,cpu,isa:Intel AVX-512",
            "onednn_verbose,info,prim_template:operation,exec_time",
        ]
    )
    assert (summary.version, summary.runtime, summary.threads) == ("3.2.1", "OpenMP", 4)
    assert summary.isa == "Intel AVX2"
    assert summary.malformed == 1


def test_summary_is_available_midway_and_frozen():
    accumulator = VerboseAccumulator()
    accumulator.feed("onednn_verbose,exec," + CONV_3X + "\n")
    first = accumulator.summary()
    accumulator.feed("onednn_verbose,exec," + CONV_3X + "\r\n")
    assert first.total_exec == 1
    assert accumulator.summary().total_exec == 2
    with pytest.raises(TypeError):
        first.primitives[("x", "y")] = Tally(1, 1.0)


def test_summary_validates_itself():
    with pytest.raises(UsageError):
        OneDnnSummary(malformed=2, verbose_lines=1)
    with pytest.raises(UsageError):
        OneDnnSummary(threads=0)


@given(st.lists(st.text(max_size=120), max_size=30))
def test_parser_never_raises(lines):
    summary = parse_verbose(lines)
    assert summary.malformed <= summary.verbose_lines
    assert 0.0 <= summary.ref_share <= 1.0


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["onednn_verbose,exec,", "dnnl_verbose,exec,", "mkldnn_verbose,"]),
            st.text(alphabet="cpu,refany:jitx0.15 ", max_size=60),
        ),
        max_size=30,
    )
)
def test_parser_never_raises_on_verbose_like_lines(pairs):
    summary = parse_verbose(marker + rest for marker, rest in pairs)
    assert summary.verbose_lines <= len(pairs)
    assert 0.0 <= summary.ref_share <= 1.0


BIG_LOG_MB = 200
MB = 1024 * 1024


def synthetic_log(megabytes):
    """The captured samples over and over, lazily, until the size is reached; each line a new
    string, as a file read gives, so keeping lines would cost their full size."""
    sample = [
        line
        for name in sorted(LOGS.glob("*.log"))
        if name.name != "mkldnn-0.21.log"  # one library per process, as in a real log
        for line in name.read_text().splitlines(keepends=True)
    ]
    budget = megabytes * MB
    for line in itertools.cycle(sample):
        budget -= len(line)
        if budget < 0:
            return
        yield line[:-1] + "\n"


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def test_memory_stays_bounded_on_a_large_log():
    before = peak_rss_mb()
    summary = parse_verbose(synthetic_log(BIG_LOG_MB))
    assert summary.total_exec > 500_000
    assert len(summary.primitives) < 30
    # The peak only grows: keeping the log's lines would add some 200 MB to it.
    assert peak_rss_mb() - before < 50


def test_no_line_outlives_its_turn():
    # Traced allocations show what the peak RSS above cannot (an earlier, higher peak hides
    # growth): retained lines would make the traced peak at least the 10 MB read.
    tracemalloc.start()
    try:
        parse_verbose(synthetic_log(10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 * MB


def test_gemm_api_lines_of_stock_tensorflow_count():
    """Captured from stock TF 2.14 on an AVX2 host: Eigen's matmuls reach oneDNN's gemm API,
    whose exec lines leave the implementation empty."""
    lines = [
        "onednn_verbose,info,oneDNN v3.2.1 (commit N/A)",
        "onednn_verbose,info,cpu,runtime:threadpool,nthr:2",
        "onednn_verbose,info,cpu,isa:Intel AVX2",
        "onednn_verbose,info,prim_template:operation,engine,primitive,implementation,prop_kind,"
        "memory_descriptors,attributes,auxiliary,problem_desc,exec_time",
        "onednn_verbose,exec,cpu,gemm_api,,undef,src_f32::blocked:ab:f0 wei_f32::blocked:ab:f0 "
        "dst_f32::blocked:ab:f0,,,216x147:147x16,26.198",
        "onednn_verbose,exec,cpu,gemm_api,,undef,src_f32::blocked:ab:f0 wei_f32::blocked:ab:f0 "
        "dst_f32::blocked:ab:f0,,,216x147:147x16,1.802",
    ]
    summary = parse_verbose(lines)
    assert summary.malformed == 0
    assert summary.runtime == "threadpool"
    assert summary.primitives[("gemm_api", "gemm_api")].count == 2
    assert summary.total_ms == pytest.approx(28.0)


def _without_memory(monkeypatch, lines):
    with monkeypatch.context() as m:
        m.setattr("kit.judging.onednn.SEEN_LIMIT", 0)  # every line read in full
        return parse_verbose(lines)


@pytest.mark.parametrize("name", sorted(p.name for p in LOGS.glob("*.log")))
def test_remembered_executions_read_as_the_first_time(monkeypatch, name):
    lines = (LOGS / name).read_text().splitlines() * 3
    assert parse_verbose(lines) == _without_memory(monkeypatch, lines)


@given(
    st.lists(
        st.sampled_from(
            [
                "onednn_verbose,exec,cpu,convolution,jit:avx512_core,forward_training,"
                "src_f32::blocked:acdb::f0,,,mb1,0.5",
                "onednn_verbose,1700000000000.125,exec,cpu,convolution,jit:avx512_core,fwd,"
                "src_bf16::blocked:acdb::f0,,,mb1,0.25",
                "onednn_verbose,v1,primitive,exec,cpu,eltwise,ref:any,fwd,data_f32,,,4,1e-1",
                "onednn_verbose,exec,gpu,convolution,ocl:any,fwd,src_f32,,,mb1,2",
                "onednn_verbose,exec,cpu,convolution,jit:avx512_core,forward_training,"
                "src_f32::blocked:acdb::f0,,,mb1,nan",
                "onednn_verbose,exec,cpu,convolution,jit:avx512_core,forward_training,"
                "src_f32::blocked:acdb::f0,,,mb1,-1",
                "onednn_verbose,exec,cpu,convolution,jit:avx512_core,forward_training,"
                "src_f32::blocked:acdb::f0,,,mb1,0.5onednn_verbose,exec,cpu,x,y,1",
                "x onednn_verbose,exec,cpu,convolution,jit:avx512_core,fwd,src_f32,,,mb1,0.5",
                "onednn_verbose,graph,exec,cpu,convolution,jit:avx512_core,fwd,src_f32,,,mb1,1",
                "onednn_verbose,info,prim_template:operation,engine,primitive,implementation,"
                "prop_kind,memory_descriptors,attributes,auxiliary,problem_desc,exec_time",
                "onednn_verbose,info,prim_template:timestamp,operation,engine,primitive,"
                "implementation,exec_time,prop_kind",
                "dnnl_verbose,exec,cpu,inner_product,gemm:jit,forward_training,src_f32,,,mb1,3",
            ]
        ),
        max_size=40,
    )
)
def test_remembering_never_changes_a_summary(lines):
    with pytest.MonkeyPatch.context() as m:
        m.setattr("kit.judging.onednn.SEEN_LIMIT", 0)
        fresh = parse_verbose(lines)
    assert parse_verbose(lines) == fresh


def test_bf16_executions_are_told_by_their_descriptors():
    lines = [
        "onednn_verbose,exec,cpu,convolution,brg:avx512_core_amx_bf16,forward_training,"
        "src_bf16::blocked:acdb::f0 wei_bf16::blocked:AcdB16b16a2b::f0 dst_bf16::blocked:acdb::f0"
        ",,alg:convolution_direct,mb8_ic64oc64_ih56oh56kh3sh1dh0ph1_iw56ow56kw3sw1dw0pw1,3",
        "onednn_verbose,exec,cpu,convolution,jit:avx512_core_bf16,forward_training,"
        "src_f32::blocked:acdb::f0 wei_f32::blocked:Acdb16a::f0 dst_f32::blocked:acdb::f0"
        ",,alg:convolution_direct,mb8_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3,1",
    ] * 2
    summary = parse_verbose(lines)
    assert (summary.bf16_exec, summary.bf16_ms, summary.total_ms) == (2, 6.0, 8.0)
    assert summary.bf16_share == pytest.approx(0.75)


def test_onednn_37_descriptors_tell_bf16():
    """Captured from TF 2.21 (oneDNN 3.7, ``src:bf16::`` descriptors) training under Keras'
    mixed_bfloat16 policy on an AMX host."""
    lines = (LOGS / "onednn-3.7-v1-bf16.log").read_text().splitlines()
    summary = parse_verbose(lines)
    assert summary.version == "3.7.3" and summary.malformed == 0
    executions = [line for line in lines if ",exec," in line]
    assert summary.total_exec == len(executions)
    assert summary.bf16_exec == sum(":bf16:" in line for line in executions) > 0


def test_eigens_calls_to_onednns_sgemm_are_not_taken_for_tensorflows_onednn_ops():
    """Stock TF's Eigen kernels call oneDNN's sgemm (gemm_api) with its oneDNN ops off: measured
    on TF 2.14 with TF_ENABLE_ONEDNN_OPTS=0, and on the Haswell guest by default."""
    from kit.judging.verify import verify_record, verify_rows
    from kit.model.flavors import resolve_image
    from kit.model.numa import NumaPolicy
    from kit.model.profiles import ResolvedProfile
    from kit.model.spec import RunSpec
    from kit.model.workload import WorkloadSpec

    sgemm = "onednn_verbose,exec,cpu,gemm_api,,undef,src_f32::blocked:ab::f0,,,64x64:64x64,0.02"
    summary = parse_verbose(["onednn_verbose,info,oneDNN v3.2.1 (commit N/A)", sgemm, sgemm])
    profile = ResolvedProfile("default", {}, None, None, NumaPolicy(), ())
    spec = RunSpec(1, resolve_image("stock"), profile, (0, 1), WorkloadSpec(model="tiny"))
    record = verify_record(spec, summary, "log")
    assert record["enabled"] and not record["ops"]
    (row,) = verify_rows([record])
    assert row[2] == "sgemm only"
    said = "Eigen's matrix products called its sgemm (2 times)"
    assert any(said in warning for warning in record["warnings"])
