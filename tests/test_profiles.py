import pytest

from kit.errors import ConfigError, UsageError
from kit.model.numa import NumaPolicy
from kit.model.profiles import Placement, load_profiles, parse_profiles, pick

TWO_SOCKET = Placement(cores=18, threads=36, nodes=2, last_node=1)
THIS_HOST = Placement(cores=2, threads=2, nodes=1, last_node=0)


def test_builtins_are_the_experiments_setups():
    profiles = load_profiles()
    assert {"default", "eigen", "tuned", "interleave"} <= set(profiles)
    assert dict(profiles["default"].env) == {}
    assert profiles["eigen"].env["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_tuned_resolves_cores_to_physical_cores():
    tuned = load_profiles()["tuned"].resolve(TWO_SOCKET)
    assert tuned.env["OMP_NUM_THREADS"] == "18"
    assert tuned.env["KMP_AFFINITY"] == "granularity=fine,verbose,compact,1,0"
    assert tuned.env["KMP_BLOCKTIME"] == "1"
    assert tuned.env["KMP_SETTINGS"] == "1"
    assert (tuned.inter_op, tuned.intra_op) == (2, 18)
    assert tuned.numa.argv() == ()


def test_interleave_extends_tuned_and_adds_numactl():
    resolved = load_profiles()["interleave"].resolve(THIS_HOST)
    assert resolved.env["OMP_NUM_THREADS"] == "2"
    assert resolved.numa.argv() == ("numactl", "--interleave=all")
    assert resolved.numa.needs_sys_nice


@pytest.mark.parametrize(
    ("policy", "argv", "nice"),
    [
        (NumaPolicy(), (), False),
        (NumaPolicy(membind="1"), ("numactl", "--membind=1"), True),
        (NumaPolicy(preferred="1"), ("numactl", "--preferred=1"), True),
        (NumaPolicy(localalloc=True), ("numactl", "--localalloc"), True),
        (NumaPolicy(cpunodebind="0"), ("numactl", "--cpunodebind=0"), False),
        (NumaPolicy(physcpubind="0-3"), ("numactl", "--physcpubind=0-3"), False),
        (
            NumaPolicy(cpunodebind="0", membind="0"),
            ("numactl", "--membind=0", "--cpunodebind=0"),
            True,
        ),
    ],
)
def test_numa_policy_argv_and_capability(policy, argv, nice):
    assert policy.argv() == argv
    assert policy.needs_sys_nice is nice


def test_two_memory_policies_are_refused():
    with pytest.raises(UsageError, match="exclude each other"):
        NumaPolicy(interleave="all", membind="0")


USER_FILE = """
[mine]
description = "tuned on last node"
extends = "tuned"
env = { KMP_BLOCKTIME = "0", MY_THREADS = "{threads}" }
numactl = { membind = "{last_node}" }
"""


def test_user_profile_extends_a_builtin_and_overrides():
    builtins = load_profiles()
    mine = parse_profiles(USER_FILE, "user.toml", known=builtins)["mine"].resolve(TWO_SOCKET)
    assert mine.env["KMP_BLOCKTIME"] == "0"
    assert mine.env["KMP_SETTINGS"] == "1"
    assert mine.env["MY_THREADS"] == "36"
    assert mine.numa.argv() == ("numactl", "--membind=1")
    assert mine.intra_op == 18


def test_load_profiles_with_user_file(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(USER_FILE)
    profiles = load_profiles(path)
    assert profiles["mine"].source == str(path)
    assert "tuned" in profiles


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[a]\nenv = { X = "1" }\nbogus = 1\n', "unknown key bogus"),
        ('[a]\nenv = { "1BAD" = "1" }\n', "not a valid environment variable name"),
        ('[a]\nenv = { X = "a\\u0000b" }\n', "NUL or line break"),
        ('[a]\nenv = { X = "a\\nb" }\n', "NUL or line break"),
        ('[a]\nextends = "nope"\n', "extends unknown profile 'nope'"),
        ('[a]\nextends = "b"\n[b]\nextends = "a"\n', "extends itself"),
        ("[a]\nthreads = { intra = 2 }\n", "threads takes only"),
        ("[a]\nnumactl = { interleave_all = true }\n", "unknown numactl setting"),
        ('[a]\nnumactl = { localalloc = "yes" }\n', "true or false"),
        ("a = 1\n", "is not a table"),
    ],
)
def test_bad_profiles_are_refused_with_the_reason(text, match):
    with pytest.raises(UsageError, match=match):
        parse_profiles(text, "p.toml")


def test_malformed_toml_names_file_and_line():
    with pytest.raises(ConfigError, match=r"p\.toml:3: not valid TOML"):
        parse_profiles('[a]\nenv = { X = "1" }\nenv = [\n', "p.toml")


def test_unknown_placeholder_is_refused_at_resolve():
    (profile,) = parse_profiles('[a]\nenv = { X = "{sockets}" }\n', "p.toml").values()
    with pytest.raises(UsageError, match=r"unknown placeholder \{sockets\}"):
        profile.resolve(THIS_HOST)


def test_non_positive_thread_count_is_refused():
    (profile,) = parse_profiles('[a]\nthreads = { intra_op = "0" }\n', "p.toml").values()
    with pytest.raises(UsageError, match="not a positive integer"):
        profile.resolve(THIS_HOST)


def test_pick_unknown_profile_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown profile nope") as info:
        pick(load_profiles(), ["tuned", "nope"])
    assert "interleave" in str(info.value)


def test_missing_profiles_file(tmp_path):
    with pytest.raises(UsageError, match=r"cannot read --profiles .*missing\.toml: No such file"):
        load_profiles(tmp_path / "missing.toml")


def test_a_user_profile_named_like_a_built_in_is_refused(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[mine]\nextends = "tuned"\n\n[tuned]\nenv = { X = "1" }\n')
    with pytest.raises(
        UsageError, match=r"mine.toml:4: profile 'tuned' has the name of a built-in"
    ):
        load_profiles(path)


def test_a_profile_may_fix_its_run_settings_and_round_trips_through_toml():
    from kit.model.profiles import to_toml

    text = '[wide]\nextends = "tuned"\nrun = { instances = 2, batch_size = 64 }\n'
    profiles = parse_profiles(text, "p.toml", known=load_profiles())
    wide = profiles["wide"]
    assert (wide.instances, wide.batch_size) == (2, 64)
    again = parse_profiles(to_toml(wide, "again", "saved"), "saved.toml", known=load_profiles())
    saved = again["again"]
    assert (saved.env, saved.inter_op, saved.intra_op) == (wide.env, wide.inter_op, wide.intra_op)
    assert (saved.instances, saved.batch_size) == (2, 64)


@pytest.mark.parametrize(
    "run", ["{ instances = 0 }", "{ batch_size = true }", "{ batch = 3 }", '{ instances = "x" }']
)
def test_bad_run_settings_are_refused(run):
    with pytest.raises(ConfigError):
        parse_profiles(f"[p]\nrun = {run}\n", "p.toml")
