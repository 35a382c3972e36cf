"""Each option is declared once and offered only where it acts: every option a measuring command
offers changes the request it makes (or, for the output options, how it is shown); every option
another command offers is read by that command; an option given twice is refused."""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import fields

import pytest
from typer.main import get_command

from kit.cli import app, measure_request
from kit.cli.declare import declared, every_command
from kit.cli.options import CAMPAIGN, Options
from tests.conftest import DATA, invoke

ROOT = get_command(app)
TOPOLOGY = DATA / "topology"


def command_of(path: str):
    found = ROOT
    for name in path.split():
        found = found.commands[name]
    return found


def offered(path: str) -> list[str]:
    return [p.name for p in command_of(path).params if p.param_type_name == "option"
            and p.name not in ("help", "help_all")]  # fmt: skip


# What each command is given besides the option under test.
BASE = {"compare": ["stock"], "run": ["stock"], "verify": ["stock"], "plan": ["stock"],
        "sweep": ["stock", "-k", "intra=1,2"], "tune": ["stock", "-k", "intra=1,2"]}  # fmt: skip
GATE = ["--fail-if-slower", "5", "--baseline-session", "s1"]
SLURM = ["--engine", "slurm"]


def samples(tmp) -> dict[str, tuple[list[str], list[str]]]:
    """Per option: the arguments without it and with it (without: the command's base alone
    unless another option must be there for this one to mean anything)."""
    knobs = tmp / "knobs.toml"
    knobs.write_text('[mine]\nenv = "MY_VAR"\n')
    checkouts = [tmp / name for name in ("a", "b")]
    for checkout in checkouts:
        script = checkout / "scripts" / "tf_cnn_benchmarks" / "tf_cnn_benchmarks.py"
        script.parent.mkdir(parents=True)
        script.touch()
    cnn = ["--workload", "tf_cnn_benchmarks", "--workload-dir"]
    one = {
        "profile": ["-p", "tuned"], "profiles_file": ["--profiles", str(tmp / "p.toml")],
        "knob": ["-k", "inter=1,2"], "where": ["--where", "intra <= 1"],
        "budget": ["--budget", "10runs"], "strategy": ["--strategy", "grid"],
        "save_profile": ["--save-profile", str(tmp / "best.toml")],
        "preset": ["--preset", "seed"], "model": ["--model", "tiny"],
        "batch_size": ["--batch-size", "7"], "num_batches": ["--num-batches", "4"],
        "num_warmup_batches": ["--num-warmup-batches", "3"], "mode": ["--mode", "infer"],
        "precision": ["--precision", "bf16"], "data_format": ["--data-format", "NCHW"],
        "allocator": ["--allocator", "jemalloc"], "allow_emulated": ["--allow-emulated"],
        "workload": [*cnn, str(checkouts[0])],
        "timeout": ["--timeout", "60"], "cpus": ["--cpus", "0"], "cores": ["--cores", "1"],
        "nodes": ["--nodes", "0"], "one_thread_per_core": ["--one-thread-per-core"],
        "instances": ["--instances", "2"], "interleave": ["--interleave", "all"],
        "membind": ["--membind", "0"], "preferred": ["--preferred", "0"],
        "cpunodebind": ["--cpunodebind", "0"], "physcpubind": ["--physcpubind", "0"],
        "localalloc": ["--localalloc"],
        "topology": ["--topology", str(TOPOLOGY / "c4.8xlarge.lscpu")],
        "repeats": ["--repeats", "5"], "baseline": ["--baseline", "stock:tuned"],
        "keep_equivalent": ["--keep-equivalent"], "keep_disturbed": ["--keep-disturbed"],
        "wait_quiet": ["--wait-quiet", "5"], "fail_if_slower": GATE,
        "baseline_history": ["--fail-if-slower", "5", "--baseline-history", "3"],
        "engine": ["--engine", "local"], "host": ["--host", "tcp://127.0.0.1:2999"],
        "spread": ["--spread"], "build_missing": ["--build-missing"], "pull": ["--pull"],
        "registry": ["--registry", "localhost:5999"], "memory": ["--memory", "4g"],
        "pids_limit": ["--pids-limit", "99"], "allow_concurrent": ["--allow-concurrent"],
        "verify": ["--verify"], "fmt": ["-f", "json"], "plan_format": ["-f", "json"],
        "wide": ["--wide"], "export_json": ["--export-json", str(tmp / "t.json")],
        "export_csv": ["--export-csv", str(tmp / "t.csv")],
        "export_markdown": ["--export-markdown", str(tmp / "t.md")],
        "results": ["--results", str(tmp / "elsewhere")], "db": ["--db", str(tmp / "x.db")],
        "resume": ["--resume", "s0"],
    }  # fmt: skip
    pairs = {name: ([], given) for name, given in one.items()}
    auto = ["--repeats", "auto"]
    pairs |= {
        "knobs_file": ([], ["--knobs", str(knobs), "-k", "mine=1,2"]),
        "threads_per_core": (["--topology", str(TOPOLOGY / "c4.8xlarge.numactl-H")],
                             ["--topology", str(TOPOLOGY / "c4.8xlarge.numactl-H"),
                              "--threads-per-core", "2"]),
        "workload_dir": ([*cnn, str(checkouts[0])], [*cnn, str(checkouts[1])]),
        "ci_width": (auto, [*auto, "--ci-width", "5"]),
        "min_repeats": (auto, [*auto, "--min-repeats", "3"]),
        "max_repeats": (auto, [*auto, "--max-repeats", "4"]),
        "baseline_session": (["--fail-if-slower", "5", "--baseline-history", "3"], GATE),
        "gate_on": (GATE, [*GATE, "--gate-on", "p99"]),
        "gate_undecided": (GATE, [*GATE, "--gate-undecided", "pass"]),
        "partition": (SLURM, [*SLURM, "--partition", "p"]),
        "nodelist": (SLURM, [*SLURM, "--nodelist", "n1"]),
        "slurm_nodes": (SLURM, [*SLURM, "--slurm-nodes", "2"]),
        "constraint": (SLURM, [*SLURM, "--constraint", "c5"]),
        "account": (SLURM, [*SLURM, "--account", "a"]),
        "time_limit": (SLURM, [*SLURM, "--time", "1:00:00"]),
        "slurm_arg": (SLURM, [*SLURM, "--slurm-arg=--qos=high"]),
        "node_engine": (SLURM, [*SLURM, "--node-engine", "local"]),
        "node_python": (SLURM, [*SLURM, "--node-python", "/usr/bin/python3"]),
    }  # fmt: skip
    return pairs


class Captured(Exception):
    pass


@pytest.fixture
def capture(monkeypatch):
    """The request a measuring command makes, or None where it was refused."""
    made = []
    real = measure_request.measure_request

    def record(*args):
        made.append(real(*args))
        raise Captured

    monkeypatch.setattr(measure_request, "measure_request", record)

    def request_of(path: str, args: list[str]):
        made.clear()
        try:
            code, text = invoke(path, *BASE[path], *args)
        except Captured:
            return made[0]
        assert code == 2, (path, args, text)  # refused, not crashed
        return None

    return request_of


CASES = [(path, name) for path in CAMPAIGN for name in offered(path)]


@pytest.mark.parametrize(("path", "name"), CASES, ids=[f"{p} {n}" for p, n in CASES])
def test_each_option_of_a_measuring_command_changes_its_request(capture, tmp_path, path, name):
    without, given = samples(tmp_path)[name]
    if name == "budget" and path != "tune":  # the repeats' budget goes with --repeats auto
        without, given = ["--repeats", "auto"], ["--repeats", "auto", *given]
    (param,) = [p for p in command_of(path).params if p.name == name]
    flag = max(param.opts, key=len)
    assert any(a.split("=")[0] in param.opts for a in given), (name, given)
    with_it = capture(path, given)
    assert with_it is not None, f"kit {path} {' '.join(given)} was refused"
    assert with_it != capture(path, without), f"kit {path}: {flag} changes nothing"


def test_every_option_declared_is_offered_by_the_commands_it_names():
    for f in fields(Options):
        for path in declared(f).on:
            assert f.name in offered(path), f"{f.name} is declared for {path}, not offered there"
    assert every_command(Options) >= {"compare", "history", "images build"}


def _reads(body, name: str) -> bool:
    tree = ast.parse(textwrap.dedent(inspect.getsource(body)))
    return any(
        isinstance(n, ast.Attribute) and n.attr == name and getattr(n.value, "id", "") == "o"
        for n in ast.walk(tree)
    )


OTHERS = sorted(every_command(Options) - set(CAMPAIGN))


@pytest.mark.parametrize("path", OTHERS)
def test_every_option_of_another_command_is_read_by_it(path):
    body = inspect.unwrap(command_of(path).callback)
    unread = [name for name in offered(path) if not _reads(body, name)]
    assert unread == [], f"kit {path} offers {unread} and never reads them"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["compare", "stock", "--cpus", "0", "--cpus", "1"], "--cpus was given 2 times"),
        (["run", "stock", "-p", "tuned", "-p", "interleave"], "takes one profile"),
        (["compare", "stock", "-p", "tuned,interleave"], "-p tuned -p interleave"),
        (["compare", "stock", "--verify", "--no-verify"], "--verify was given 2 times"),
        (["compare", "stock", "--ci-width", "5"], "--ci-width goes with --repeats auto"),
        (["compare", "stock", "--gate-undecided", "pass"], "--gate-undecided goes with"),
        (["topology", "-H", "a", "-H", "b"], "reads one host"),
        (["compare", "stock", "--repeats", "auto", "--ci-width", "0"], "above 0 and below 100"),
        (
            ["plan", "stock", "--topology", str(DATA / "exports" / "table.txt")],
            "is not a line of CPU,Core,Socket,Node numbers",
        ),
    ],
)
def test_repeated_and_lone_options_are_refused(args, said):
    code, text = invoke(*args)
    assert code == 2 and said in text, text
