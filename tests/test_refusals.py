"""Values that used to be accepted (or crashed) and must be refused up front, each with one
line that says what to do: limits, environment variables, ports, CPU ids, output paths, image
references for a base, profile environment values the kernel would refuse."""

from pathlib import Path

import pytest

from kit.errors import UsageError
from kit.model.spec import Limits
from tests.conftest import invoke, invoke_with, one_message
from tests.fakes import FakeEngine
from tests.test_campaign import RATES


@pytest.mark.parametrize(
    ("limits", "match"),
    [({"memory": "1k"}, "below Docker's minimum"), ({"memory": "5m"}, "below Docker's minimum"),
     ({"memory": "lots"}, "is not a size"), ({"pids": 99_999_999_999}, "outside"),
     ({"pids": 3}, "outside")],
)  # fmt: skip
def test_limits_outside_what_docker_and_the_kernel_take(limits, match):
    with pytest.raises(UsageError, match=match):
        Limits(**limits)


def test_a_memory_limit_is_read_in_bytes():
    assert Limits(memory="6m").memory_bytes == 6 * 2**20
    assert Limits(memory="8G").memory_bytes == 8 * 2**30


@pytest.mark.parametrize(
    ("env", "value", "match"),
    [("KIT_RECONNECT_S", "abc", "KIT_RECONNECT_S='abc'"), ("KIT_RECONNECT_S", "inf", "seconds"),
     ("KIT_LOCK_FILE", "/", "KIT_LOCK_FILE"), ("KIT_LOCK_FILE", "/no/such/dir/lock", "missing"),
     # /proc lets root "write" by permission bits: only making the file tells, and it says so
     ("KIT_LOCK_FILE", "/proc/kit.lock", "the session lock /proc/kit.lock cannot be created")],
)  # fmt: skip
def test_bad_environment_variables_are_refused_before_any_engine(
    tmp_path, monkeypatch, env, value, match
):
    monkeypatch.setenv(env, value)
    engine = FakeEngine({"stock:default": 5.0}, name="docker")
    code, text = invoke_with(engine, "run", "stock", "--results", str(tmp_path))
    assert code == 2 and match in text and engine.ran == []


@pytest.mark.parametrize(
    ("args", "match"),
    [(["plan", "stock", "--cpus", "99999999999"], "beyond the largest id"),
     (["compare", "stock", "--host", "tcp://127.0.0.1:99999"], "out of range (1-65535)"),
     (["plan", "stock", "--memory", "99999g"], None),
     (["compare", "stock", "--memory", "99999g"], "more than this host's"),
     (["report", "--output", "/"], "is a folder"),
     (["images", "save", "-o", "/no/such/folder/x.tar.zst"], "does not exist"),
     (["images", "save", "stock", "-o", "/proc/kit.tar.zst"], "cannot be written"),
     (["report", "--output", "/proc/report.html"], "cannot be written"),
     (["site", "-o", "/proc/kit-site"], "--output /proc/kit-site cannot be"),
     (["compare", "stock", "--db", "/proc/kit.db"], "results database /proc/kit.db cannot be"),
     (["images", "build", "stock", "--base", "UPPER/x"], "neither a flavor"),
     (["history", "--limit", "99999999999999999999"], "Invalid value"),
     (["history", "--limit", "0"], "Invalid value")],
)  # fmt: skip
def test_values_refused_with_one_line(tmp_path, args, match):
    engine = FakeEngine({}, name="docker")
    code, text = invoke_with(engine, *args, *(["--results", str(tmp_path)] if args[0] in (
        "compare", "report", "history", "site") else []))  # fmt: skip
    if match is None:  # plan does not run: it shows the limit, and compare refuses it
        assert code == 0
        return
    assert code == 2 and match in text and "Traceback" not in text and engine.ran == []


def test_a_profile_env_value_the_kernel_would_refuse(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text(f'[big]\nenv = {{ X = "{"a" * 200_000}" }}\n')
    code, text = invoke("plan", "stock", "--profiles", str(path), "-p", "big")
    assert code == 2 and "the kernel takes at most" in text


NUMACTL_OPTIONS = ("--interleave", "--membind", "--preferred", "--cpunodebind", "--physcpubind")


@pytest.mark.parametrize("option", NUMACTL_OPTIONS)
@pytest.mark.parametrize("value", ["", " ", "x", "0-", "1-0", "0,,1", "all,0", "99999999"])
def test_every_numactl_option_refuses_an_empty_or_malformed_value_before_any_run(
    tmp_path, option, value
):
    engine = FakeEngine(RATES, name="docker")
    code, text = invoke_with(
        engine, "run", "stock", "-p", "default", option, value, "--results", str(tmp_path)
    )
    lines = [line for line in text.splitlines() if line.strip()]
    assert code == 2, text
    assert len(lines) == 1 and option.lstrip("-") in lines[0], text
    assert "Traceback" not in text and engine.ran == []


@pytest.mark.parametrize(
    ("args", "near"),
    [
        (["plan", "stock", "intell", "-p", "tuned"], "did you mean intel?"),
        (["plan", "stock", "-p", "tunde"], "did you mean tuned?"),
        (["sweep", "stock", "-k", "intr=1,2"], "did you mean intra?"),
        (["compare", "stock", "stok", "-p", "default"], "did you mean stock?"),
    ],
)
def test_a_typo_of_a_flavor_profile_or_knob_is_refused_with_the_near_name(tmp_path, args, near):
    engine = FakeEngine(RATES, name="docker", images={"kit/tensorflow:stock"})
    results = [] if args[0] == "plan" else ["--results", str(tmp_path)]
    code, text = invoke_with(engine, *args, *results)
    assert code == 2 and near in text, text
    assert engine.ran == []


@pytest.mark.parametrize(
    ("args", "near"),
    [
        (["compare", "stock", "--model", "resnet5"], "did you mean resnet50?"),
        (["compare", "stock", "--preset", "quik"], "did you mean quick?"),
        (["run", "stock", "--mode", "infr"], "did you mean infer?"),
        (["report", "-f", "jsn"], "did you mean json?"),
        (["compare", "stock", "--modle", "tiny"], "--model"),
    ],
)
def test_a_usage_error_from_the_framework_is_kits_one_line(tmp_path, args, near):
    """Through the real entry point (`kit`), as a person types it: no framework box."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "kit", *args], capture_output=True, text=True, timeout=120,
        check=False,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    said = one_message(done.stderr)
    assert said.startswith("kit: error: ") and near in said, done.stderr
    assert "╭" not in done.stderr + done.stdout


def test_a_profiles_cpu_binding_against_the_cpus_chosen_names_the_profile_and_the_option():
    lscpu = Path(__file__).parent / "data" / "topology" / "c4.8xlarge.lscpu"  # 2 nodes
    code, text = invoke("plan", "stock", "-p", "node0", "--nodes", "1", "--topology", str(lscpu))
    assert code == 2, text
    assert "profile 'node0' (built-in) binds its CPUs with numactl --cpunodebind=0" in text
    assert "the CPUs --nodes 1 chose (9-17,27-35) have none of those" in text
    assert "drop --nodes 1 (node0 chooses its CPUs itself)" in text and "-p tuned" in text
    assert "--cpunodebind 0" not in text and "--cpus" not in text  # options not given
    code, text = invoke("plan", "stock", "-p", "node0", "--cpus", "9-12", "--cores", "2",
                        "--topology", str(lscpu))  # fmt: skip
    assert code == 2 and "the CPUs --cpus 9-12 and --cores 2 chose (9-10)" in text, text
    code, text = invoke("plan", "stock", "--cpunodebind", "0", "--nodes", "1", "--topology",
                        str(lscpu))  # fmt: skip
    assert code == 2 and "stock:default: --cpunodebind 0 has no CPU in the run" in text, text
