import json

import pytest
from typer.testing import CliRunner

from kit import cli
from tests.conftest import invoke, invoke_with, json_rows, one_message, session_dirs
from tests.fakes import FakeEngine

runner = CliRunner()


@pytest.fixture
def fake():
    engine = FakeEngine(
        {"stock:default": 5.48, "intel:default": 33.62, "intel:tuned": 33.9},
        images={"kit/tensorflow:stock", "kit/tensorflow:intel"},
    )
    return engine


def test_help_lists_choices():
    code, text = invoke("compare", "--help")
    assert code == 0
    for word in ("quick", "seed", "resnet50", "tiny", "markdown", "csv", "json"):
        assert word in text


def test_profiles_list_and_show():
    code, text = invoke("profiles", "list")
    assert code == 0 and "interleave" in text and "eigen" in text
    code, text = invoke("profiles", "show", "interleave", "--cpus", "1")
    assert code == 0
    assert "OMP_NUM_THREADS=1" in text
    assert "numactl --interleave=all" in text
    assert "SYS_NICE" in text


def test_compare_prints_table_and_keeps_results(fake, tmp_path):
    code, text = invoke_with(
        fake,
        "compare",
        "stock",
        "intel",
        "--profile",
        "default",
        "--model",
        "tiny",
        "--results",
        str(tmp_path),
        "--format",
        "json",
    )
    assert code == 0, text
    table = json_rows(text)
    assert [r["images_per_sec"] for r in table] == [5.48, 33.62]
    assert table[1]["speedup"] == pytest.approx(33.62 / 5.48)
    (session,) = session_dirs(tmp_path)
    assert (session / "summary.md").exists()


def test_compare_with_a_failed_run_exits_non_zero_and_keeps_the_rest(fake, tmp_path):
    code, text = invoke_with(
        fake,
        "compare",
        "stock",
        "intel",
        "--profile",
        "default",
        "--profile",
        "tuned",
        "--repeats",
        "1",
        "--results",
        str(tmp_path),
    )
    assert code == 1
    assert "1 of 4 runs were not ok" in text
    (session,) = session_dirs(tmp_path)
    assert len((session / "results.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["compare", "stock", "--profile", "nope"], "unknown profile nope"),
        (["compare", "stock", "--cpus", "3-1"], "runs backwards"),
        (["compare", "stock", "--cpus", "0-"], "not a number or a range"),
        (["compare", "stock", "--cpus", "64"], "not on this host"),
        (["compare", "stock", "--batch-size", "0"], "batch size must be between"),
        (["compare", "stock", "--batch-size", "70000"], "batch size must be between"),
        (["compare", "stock", "--num-batches", "-1"], "number of batches"),
        (["compare", "stock", "--baseline", "intel:default"], "baseline 'intel:default'"),
        (["compare", "latest"], "image 'kit/tensorflow:latest' is not on this Docker engine"),
        (["run", "stock", "--profile", "eigen", "--data-format", "NCHW"], "needs oneDNN"),
        (["compare", "stock", "--workload", "tf_cnn_benchmarks"], "needs --workload-dir"),
        (["compare", "stock", "--nodes", "3"], "node 3 not on this host"),
        (["compare", "stock", "--cpus", "0", "--nodes", "0", "--cores", "2"], "more than the 1"),
        (["compare", "stock", "--membind", "5"], "--membind node 5 not on this host"),
        (["compare", "stock", "--interleave", "all", "--membind", "0"], "exclude each other"),
        (["compare", "stock", "--instances", "3"], "more than the 2 physical cores"),
        (["compare", "stock", "--instances", "zero"], "--instances takes a positive number"),
        (["compare", "stock", "--physcpubind", "0", "--cpus", "1"], "outside the run's cpuset"),
        (["compare", "stock", "--cores", "0"], "--cores must be positive"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(fake, tmp_path, args, match):
    code, text = invoke_with(fake, *args, "--results", str(tmp_path))
    assert code == 2, text
    assert match in text
    assert fake.ran == []


def test_results_path_that_is_a_file(fake, tmp_path):
    path = tmp_path / "f"
    path.write_text("")
    code, text = invoke_with(fake, "compare", "stock", "--results", str(path))
    words = " ".join(text.replace("│", " ").split())  # Typer's box wraps a long path anywhere
    assert (code, "is a file" in words) == (2, True)
    assert fake.ran == []


def test_bad_profiles_file_names_file_and_line(fake, tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text("[x]\nenv = {\n")
    code, text = invoke_with(
        fake,
        "compare",
        "stock",
        "--profiles",
        str(bad),
        "--profile",
        "x",
        "--results",
        str(tmp_path),
    )
    assert code == 2
    assert f"{bad}:2" in text or f"{bad}:3" in text


def test_unknown_format_is_a_usage_error(fake, tmp_path):
    result = runner.invoke(cli.app, ["compare", "stock", "--format", "xml"])
    assert result.exit_code == 2
    assert "xml" in result.output


def test_main_prints_one_line_and_exits_with_the_code(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["kit", "compare", "stock", "--cpus", "a"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kit: error: bad --cpus")


def test_an_unexpected_error_is_one_line_naming_its_traceback_file(monkeypatch, capsys, tmp_path):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("kit.host.topology_file.format_topology", broken)  # a bug, played
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["kit", "topology"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    line = one_message(capsys.readouterr().err)
    assert line.startswith("kit: internal error: ZeroDivisionError: a bug (the traceback is in ")
    (log,) = tmp_path.glob("kit-error-*.log")
    assert "Traceback (most recent call last)" in log.read_text() and str(log) in line


def test_topology_command():
    code, text = invoke("topology")
    assert code == 0 and "allowed:" in text and "node 0:" in text
    code, text = invoke("topology", "--format", "json")
    assert json.loads(text)["logical_cpus"] >= 1


def test_a_run_whose_placement_differs_is_invalid(monkeypatch, tmp_path):
    def tamper(prov):  # a container that ignored the interleave request
        return {**prov, "numactl_show": "policy: default\npreferred node: current\n"}

    engine = FakeEngine({"stock:interleave": 7.0}, tamper=tamper)
    code, text = invoke_with(engine, "run", "stock", "-p", "interleave", "--results", str(tmp_path))
    assert code == 1
    assert "1 of 1 runs were not ok (failed, INVALID or disturbed)" in text
    (session,) = session_dirs(tmp_path)
    record = json.loads((session / "results.jsonl").read_text())
    assert record["status"] == "INVALID"
    assert "memory policy is default, asked for interleave" in record["error"]
    assert "INVALID" in (session / "summary.md").read_text()


def test_instances_report_each_and_the_sum(monkeypatch, tmp_path):
    engine = FakeEngine({"stock:tuned": 3.5})
    code, text = invoke_with(
        engine,
        "run",
        "stock",
        "-p",
        "tuned",
        "--instances",
        "2",
        "--results",
        str(tmp_path),
        "--format",
        "json",
    )
    assert code == 0, text
    rows = json_rows(text)
    assert rows[0]["profile"] == "tuned" and rows[0]["instances"] == 2
    assert rows[0]["kind"] == "cell" and rows[0]["images_per_sec"] == 7.0
    assert [r["cpus"] for r in rows[1:]] == ["0", "1"]
    assert [r["images_per_sec"] for r in rows[1:]] == [3.5, 3.5]
    assert sorted(s.cpus for s in engine.ran) == [(0,), (1,)]


def test_repeats_interleave_and_give_a_verdict(monkeypatch, tmp_path):
    engine = FakeEngine({"stock:default": 5.48, "intel:default": 33.62})
    code, text = invoke_with(
        engine,
        "compare",
        "stock",
        "intel",
        "-p",
        "default",
        "--repeats",
        "3",
        "--results",
        str(tmp_path),
        "--format",
        "json",
    )
    assert code == 0, text
    rounds = [engine.ran[i : i + 2] for i in range(0, 6, 2)]  # each cell once a round
    assert all({s.key for s in r} == {"stock:default", "intel:default"} for r in rounds)
    assert [s.repeat for s in engine.ran] == [0, 0, 1, 1, 2, 2]
    rows = json_rows(text)
    assert rows[0]["baseline"] and rows[0]["repeats"] == 3
    assert rows[1]["verdict"] == "faster"
    assert rows[1]["speedup"] == pytest.approx(33.62 / 5.48)


def test_regression_gate(monkeypatch, tmp_path):
    slow = FakeEngine({"stock:default": 5.0})
    assert invoke_with(slow, "run", "stock", "--repeats", "3", "--results", str(tmp_path))[0] == 0
    (first,) = session_dirs(tmp_path)
    fast = FakeEngine({"stock:default": 6.0})
    code, text = invoke_with(
        fast,
        "compare",
        "stock",
        "-p",
        "default",
        "--baseline-session",
        first.name,
        "--fail-if-slower",
        "5",
        "--results",
        str(tmp_path),
    )
    assert code == 0, text  # faster than the baseline passes
    second = sorted(session_dirs(tmp_path))[-1]
    code, text = invoke_with(
        slow,
        "compare",
        "stock",
        "-p",
        "default",
        "--baseline-session",
        second.name,
        "--fail-if-slower",
        "5",
        "--results",
        str(tmp_path),
    )
    assert code == 1
    assert "stock:default: 0.83x of the baseline session" in text


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--fail-if-slower", "5"], "goes with --baseline-session or --baseline-history"),
        (["--baseline-session", "x"], "goes with --baseline-session or --baseline-history"),
        (
            ["--baseline-history", "5", "--baseline-session", "x", "--fail-if-slower", "5"],
            "two baselines",
        ),
        (["--baseline-history", "2", "--fail-if-slower", "5"], "3 to 1000 sessions"),
        (["--baseline-session", "nope", "--fail-if-slower", "5"], "no kit session"),
        (["--baseline-session", "x", "--fail-if-slower", "150"], "percentage"),
        (["--repeats", "0"], "--repeats must be between 1 and 1000"),
    ],
)
def test_bad_gate_and_repeat_options(fake, tmp_path, args, match):
    code, text = invoke_with(fake, "compare", "stock", *args, "--results", str(tmp_path))
    assert code == 2 and match in text
    assert fake.ran == []


def test_history_and_report_from_the_database(monkeypatch, tmp_path):
    engine = FakeEngine({"stock:default": 5.48, "intel:default": 33.62})
    code, text = invoke_with(
        engine,
        "compare",
        "stock",
        "intel",
        "-p",
        "default",
        "--repeats",
        "2",
        "--results",
        str(tmp_path),
    )
    assert code == 0, text
    (session,) = session_dirs(tmp_path)
    code, text = invoke_with(engine, "history", "--results", str(tmp_path))
    assert code == 0 and session.name in text and "intel:default 33.62" in text
    code, text = invoke_with(engine, "report", "--results", str(tmp_path), "--format", "csv")
    assert code == 0 and text.splitlines()[0].startswith("schema,kind,engine,host,image")
    code, text = invoke_with(
        engine, "report", session.name[:8], "--results", str(tmp_path), "--format", "html", "--plot"
    )
    assert code == 0, text
    html = (session / "report.html").read_text()
    png = (session / "plot-images-per-sec.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert "data:image/png;base64," in html and "6.14x" in html


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "html"])
def test_report_writes_every_format_to_its_output_file(tmp_path, fmt):
    engine = FakeEngine({"stock:default": 5.48, "intel:default": 33.62})
    args = ("stock", "intel", "-p", "default", "--repeats", "2", "--results", str(tmp_path))
    assert invoke_with(engine, "compare", *args)[0] == 0
    target = tmp_path / f"report.{fmt}"
    code, text = invoke_with(
        engine, "report", "--results", str(tmp_path), "-f", fmt, "--output", str(target)
    )
    assert code == 0, text
    assert "33.62" in target.read_text() and "33.62" not in text  # written there, not printed
    assert f"report: {target}" in text.replace("\n", "")


def test_report_without_a_database_says_what_to_do(tmp_path):
    code, text = invoke("report", "--results", str(tmp_path))
    assert code == 2 and "no results database" in text


def test_two_engines_in_one_table(monkeypatch, tmp_path):
    engines = {
        "docker": FakeEngine({"stock:default": 7.0}, name="docker"),
        "local": FakeEngine({"stock:default": 7.35}, name="local"),
    }
    code, text = invoke_with(
        list(engines.values()),
        "compare",
        "stock",
        "-p",
        "default",
        "--engine",
        "docker",
        "--engine",
        "local",
        "--repeats",
        "2",
        "--baseline",
        "stock:default@docker",
        "--results",
        str(tmp_path),
        "--format",
        "json",
    )
    assert code == 0, text
    rows = json_rows(text)
    assert [(r["engine"], r["image"]) for r in rows] == [("docker", "stock"), ("local", "stock")]
    assert rows[1]["speedup"] == pytest.approx(1.05)
    # the engines took turns: each once a round, the rounds one after the other
    order = [s.engine for e in engines.values() for s in e.ran]
    assert sorted(order) == ["docker", "docker", "local", "local"]
    turns = sorted((s.index, s.repeat) for e in engines.values() for s in e.ran)
    assert [repeat for _, repeat in turns] == [0, 0, 1, 1]


def test_version():
    from kit import __version__

    code, text = invoke("--version")
    assert code == 0 and text.strip() == f"kit {__version__}"


def test_a_provisional_table_follows_each_round_of_repeats_but_the_last(tmp_path):
    engine = FakeEngine({"stock:default": 5.0, "stock:tuned": 6.0})
    code, text = invoke_with(engine, "compare", "stock", "-p", "default", "-p", "tuned",
                             "--repeats", "3", "--results", str(tmp_path))  # fmt: skip
    assert code == 0, text
    assert text.count("so far:") == 2
    first = text[text.index("after 1 round(s) of repeats, so far:") :]
    first = first.split("after 2 round(s)")[0]
    assert "tuned" in first and "too few repeats" in first  # one repeat: no verdict yet


def test_the_session_bar_says_the_time_left_from_the_runs_so_far():
    import io

    from rich.console import Console

    from kit.cli.ui import RunDisplay
    from kit.model.workload import WorkloadSpec

    display = RunDisplay(Console(file=io.StringIO()), WorkloadSpec(), bounded=True)
    assert display._left(10) == "time left: after the first run"
    display.took, display.finished = [30.0, 30.0], [object(), object()]
    assert display._left(10) == "at most 4 min left"  # 8 runs x 30 s
    display.bounded = False
    display.took = [1.0, 3.0]
    assert display._left(4) == "4 s left"


def test_exports_are_written_as_runs_arrive_and_whole_at_the_end(tmp_path):
    import csv as csv_module

    seen = []

    def rate(spec):  # each run looks at the JSON export as it stands when the run starts
        path = tmp_path / "t.json"
        seen.append(len(json.loads(path.read_text())["rows"]) if path.exists() else 0)
        return 5.0 if spec.profile.name == "default" else 6.0

    engine = FakeEngine(rate)
    out = {f: tmp_path / f"t.{f}" for f in ("json", "csv", "md")}
    code, text = invoke_with(
        engine, "compare", "stock", "-p", "default", "-p", "tuned", "--repeats", "2",
        "--results", str(tmp_path / "r"), "--export-json", str(out["json"]),
        "--export-csv", str(out["csv"]), "--export-markdown", str(out["md"]),
    )  # fmt: skip
    assert code == 0, text
    assert seen[0] == 0 and seen[-1] >= 1  # the file grew while the session ran
    rows = json.loads(out["json"].read_text())["rows"]
    assert {r["profile"] for r in rows} == {"default", "tuned"} and rows[0]["repeats"] == 2
    assert len(list(csv_module.DictReader(out["csv"].open()))) == len(rows)
    assert "| stock" in out["md"].read_text()
    assert not list(tmp_path.glob("*.part"))


def test_an_export_file_that_cannot_be_written_is_refused_before_any_run(tmp_path):
    engine = FakeEngine({"stock:default": 5.0})
    code, text = invoke_with(engine, "run", "stock", "--export-json", str(tmp_path),
                             "--results", str(tmp_path / "r"))  # fmt: skip
    assert code == 2 and "--export-json" in text and engine.ran == []
