import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.errors import ParseError
from kit.judging.parse import (
    parse_intelai_line,
    parse_output,
    parse_provenance_line,
    parse_step_line,
    parse_total_line,
    require_throughput,
)
from tests.conftest import DATA

LOGS = DATA / "logs"


def parse_file(name):
    with (LOGS / name).open() as log:
        return parse_output(log)


def test_tf_cnn_benchmarks_log():
    parsed = parse_file("tf_cnn_benchmarks-resnet50.log")
    assert parsed.images_per_sec == 7.17
    assert parsed.source == "tf_cnn_benchmarks"
    assert len(parsed.steps) == 10
    assert parsed.steps[0].images_per_sec == 7.3
    assert parsed.steps[0].loss == 7.926
    assert parsed.steps[1].stderr == 0.1
    assert parsed.provenance is None


def test_intelai_log():
    parsed = parse_file("intelai-resnet50.log")
    assert parsed.images_per_sec == 85.833
    assert parsed.source == "intelai"


def test_kit_workload_log_captured_from_a_real_container():
    parsed = parse_file("kit-tiny-interleave.log")
    assert parsed.source == "tf_cnn_benchmarks"
    assert parsed.images_per_sec and parsed.images_per_sec > 0
    assert parsed.provenance["numactl_show"].startswith("policy: interleave")
    assert parsed.provenance["workload_version"] == "2"
    assert parsed.provenance["tf_version"].startswith("2.")
    assert parsed.steps[-1].step == 3


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1\timages/sec: 7.3 +/- 0.0 (jitter = 0.0)\t7.926", (1, 7.3, 0.0, 0.0, 7.926)),
        ("10\timages/sec: 1234.5 +/- 12.25 (jitter = 3.5)\tnan", (10, 1234.5, 12.25, 3.5, None)),
        ("  3  images/sec: 5 +/- 1 (jitter = 2)", (3, 5.0, 1.0, 2.0, None)),
    ],
)
def test_step_lines(line, expected):
    step = parse_step_line(line)
    assert (step.step, step.images_per_sec, step.stderr, step.jitter, step.loss) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "images/sec: 7.3",
        "total images/sec: 7.17",
        "Step\tImg/sec\ttotal_loss",
        "x1\timages/sec: 7.3 +/- 0.0 (jitter = 0.0)",
    ],
)
def test_non_step_lines(line):
    assert parse_step_line(line) is None


def test_total_and_intelai_lines():
    assert parse_total_line("total images/sec: 33.62") == 33.62
    assert parse_total_line("total images/sec: 33.62 extra") is None
    assert parse_intelai_line("Throughput: 85.833 images/sec") == 85.833
    assert parse_intelai_line("Throughput: fast") is None


def test_provenance_line():
    assert parse_provenance_line('kit-provenance: {"a": 1}') == {"a": 1}
    assert parse_provenance_line('kit-provenance: {"a": ') is None
    assert parse_provenance_line("kit-provenance: [1]") is None
    assert parse_provenance_line('{"a": 1}') is None


def test_last_total_wins_and_tail_is_kept():
    parsed = parse_output(["total images/sec: 1.0", "total images/sec: 2.5", "bye"])
    assert parsed.images_per_sec == 2.5
    assert parsed.tail[-1] == "bye"


def test_garbage_raises_with_the_tail_quoted():
    parsed = parse_output(["Traceback (most recent call last):", "MemoryError"])
    with pytest.raises(ParseError, match="MemoryError"):
        require_throughput(parsed)


def test_tail_is_bounded():
    parsed = parse_output(f"line {i}" for i in range(100_000))
    assert len(parsed.tail) <= 15
    assert parsed.tail[-1] == "line 99999"


@given(st.lists(st.text(max_size=80), max_size=30))
def test_parser_never_raises_and_never_invents_a_number(lines):
    parsed = parse_output(lines)
    if parsed.images_per_sec is not None:
        assert any("images/sec" in line for line in lines)


@given(st.floats(min_value=0.01, max_value=1e6, allow_nan=False))
def test_total_round_trips_any_printed_rate(rate):
    assert parse_total_line(f"total images/sec: {rate:.2f}") == pytest.approx(round(rate, 2))
