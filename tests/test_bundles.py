"""Bundles, import, replay and diff on the fake engine: the pure parts (recipe, per-cell
verdicts, placement changes, manifest checks) and every refusal. tests/test_replay_docker.py
runs the same paths on real engines."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
import zstandard

from kit.campaign.placing import cells_of, place
from kit.campaign.recipe import recipe_json, what_of
from kit.campaign.request import What
from kit.campaign.session import plan_record
from kit.judging.reproduce import (
    Agreement,
    answer_diffs,
    cell_diffs,
    placement_changes,
    system_diff,
)
from kit.model.workload import Model, WorkloadSpec
from kit.planning.knobs import BUILTIN, parse_knob
from kit.planning.sweep import Sweep
from kit.store.folder import load_session
from tests.conftest import invoke_with, session_dirs
from tests.fakes import C4, EPYC, FakeEngine, GivenEngines

TINY_W = WorkloadSpec(model=Model.tiny, batch_size=8, num_batches=3, num_warmup_batches=1)
SIZES = ["--model", "tiny", "--batch-size", "8", "--num-batches", "3", "--num-warmup-batches", "1"]
RATES = {"stock:default": 10.0, "stock:tuned": 12.0}


def _recorded(what: What, topology) -> list[dict]:
    """What replaying ``what``'s recipe plans on ``topology``, as session.json records it."""
    recipe = json.loads(json.dumps(recipe_json(what, *cells_of(what, topology))))  # as stored
    cells = [tuple(c) for c in recipe["cells"]] if recipe["cells"] else None
    from kit.campaign.recipe import recipe_cells

    again = what_of(recipe, cells or recipe_cells(recipe), what.repeats)
    return plan_record(place(again, topology, ["docker"]))


def test_a_recipe_plans_the_same_runs_again():
    what = What(("stock", "intel"), ("default", "tuned", "interleave"), workload=TINY_W,
                repeats=3, instances=2)  # fmt: skip
    assert _recorded(what, C4) == plan_record(place(what, C4, ["docker"]))


def test_a_sweeps_recipe_plans_its_cells_with_their_knobs():
    knobs = tuple(parse_knob(k, BUILTIN) for k in ("intra=1,2", "omp=1,{cores}"))
    what = What(("intel",), ("tuned",), workload=TINY_W, repeats=2, sweep=Sweep(knobs))
    assert _recorded(what, EPYC) == plan_record(place(what, EPYC, ["docker"]))


def test_placement_changes_on_another_topology_are_said():
    """A plan made on the 36-CPU c4.8xlarge, placed again on the 2-CPU host."""
    profiles = ("default", "tuned", "node0")
    what = What(("intel",), profiles, workload=TINY_W, keep_equivalent=True)  # as a replay
    there = plan_record(place(what, C4, ["docker"]))
    here = place(what, EPYC, ["docker"])
    lines = placement_changes(there, here)
    tuned = next(line for line in lines if line.startswith("intel:tuned"))
    assert "cpus 0-35 -> 0-1" in tuned
    assert "OMP_NUM_THREADS 18 -> 2" in tuned
    assert "--num_intra_threads=18" in tuned and "--num_intra_threads=2" in tuned
    node0 = next(line for line in lines if line.startswith("intel:node0"))
    assert "OMP_NUM_THREADS 9 -> 2" in node0  # one node's 9 cores there, both CPUs here
    assert placement_changes(there, place(what, C4, ["docker"])) == []


def _run(key: str, rate: float, repeat: int):
    from kit.model.results import RunResult, Status

    image, profile = key.split(":")
    return RunResult(
        index=repeat + 1,
        image=image,
        image_ref=f"kit/tensorflow:{image}",
        profile=profile,
        cpus="0-1",
        numactl="",
        command=(),
        env={},
        status=Status.ok,
        images_per_sec=rate,
        started=f"2026-12-06T00:{repeat:02d}:00+00:00",
        exit_code=0,
        repeat=repeat,
        ended=f"2026-12-06T00:{repeat:02d}:20+00:00",
        log_path=f"{repeat}.log",
    )  # fmt: skip  (each round's runs side by side, as a session runs them)


def _session(rates: dict[str, list[float]]):
    return [_run(k, r, i) for k, values in rates.items() for i, r in enumerate(values)]


def test_cells_reproduce_within_noise_or_tolerance_and_else_differ():
    there = _session({"a:x": [10.0, 10.2, 9.9], "b:x": [10, 10.1], "c:x": [10, 10.05, 10.1, 10.05],
                      "d:x": [5.0], "e:x": [7.0, 7.1]})  # fmt: skip
    here = _session({"a:x": [10.1, 9.8, 10.0], "b:x": [12, 12.1], "c:x": [10.2, 10.25, 10.3, 10.25],
                     "d:x": [5.1], "f:x": [1.0, 1.1]})  # fmt: skip
    got = {d.key: d.agreement for d in cell_diffs(there, here, tolerance=0.05)}
    assert got == {
        "a:x": Agreement.reproduced,  # within noise
        "b:x": Agreement.faster,  # 20%, significant
        "c:x": Agreement.reproduced,  # 2%, significant, but within the tolerance
        "d:x": Agreement.unknown,  # one repeat a side
        "e:x": Agreement.missing,
        "f:x": Agreement.missing,
    }
    strict = {d.key: d.agreement for d in cell_diffs(there, here, tolerance=0.0)}
    assert strict["c:x"] is Agreement.faster


def test_the_sessions_answer_is_judged_within_rounds_so_a_host_drift_cancels():
    """Here the host ran 30% faster in every run: each cell differs, but each cell's speedup
    over the baseline (the session's answer) is the same; a cell whose speedup moved is said."""
    there = _session({"s:base": [10.0, 10.4, 9.8], "s:tuned": [12.0, 12.5, 11.7],
                      "s:other": [8.0, 8.3, 7.9]})  # fmt: skip
    here = _session({"s:base": [13.0, 13.5, 12.7], "s:tuned": [15.7, 16.1, 15.3],
                     "s:other": [13.1, 13.4, 12.8]})  # fmt: skip
    cells_moved = {d.key: d.agreement for d in cell_diffs(there, here, tolerance=0.05)}
    assert cells_moved["s:tuned"] is Agreement.faster
    answers = {d.key: d for d in answer_diffs(there, here, tolerance=0.05)}
    assert sorted(answers) == ["s:other", "s:tuned"]  # the baseline is the first cell
    assert answers["s:tuned"].agreement is Agreement.reproduced
    assert answers["s:tuned"].there == pytest.approx(1.2, abs=0.01)
    assert answers["s:other"].agreement is Agreement.faster  # 0.80x there, 1.01x here
    other_base = _session({"s:tuned": [12.0, 12.5], "s:base": [10.0, 10.4]})
    assert answer_diffs(there, other_base) == []  # a different baseline: nothing to compare


def test_system_diff_names_each_field_that_differs():
    there = {"cpu": "Xeon", "isa": ["avx2", "avx512f"], "cores": 18, "tf": {"v": "2.14"}}
    here = {"cpu": "Xeon", "isa": ["avx2"], "cores": 2, "tf": {"v": "2.14"}, "new": 1}
    assert system_diff(there, here) == [
        ("isa", "avx2 avx512f", "avx2"),
        ("cores", "18", "2"),
        ("new", "-", "1"),
    ]


@pytest.fixture
def session(tmp_path):
    """A recorded tiny session on the fake engine: its results folder and engine."""
    engine = FakeEngine(RATES)
    results = tmp_path / "there"
    code, text = invoke_with(
        engine, "compare", "stock", "-p", "default", "-p", "tuned", *SIZES,
        "--repeats", "2", "--results", str(results),
    )  # fmt: skip
    assert code == 0, text
    return results, engine


@pytest.fixture
def bundle(session, tmp_path) -> Path:
    """That session exported."""
    path = tmp_path / "s.kit.tar.zst"
    code, text = _export(session[0], path)
    assert code == 0, text
    return path


def _rows(text: str, table: int = 0) -> dict[str, str]:
    """The rows of a comparison's cells (``table`` 0) or of its answer (1), by cell."""
    tables = text.split("the session's answer")
    lines = tables[table].splitlines() if table < len(tables) else []
    return {line.split()[0]: line for line in lines if line.startswith("stock:")}


def _export(results: Path, out: Path, *more: str) -> tuple[int, str]:
    return invoke_with(FakeEngine(RATES), "export", "latest", "-o", str(out),
                       "--results", str(results), *more)  # fmt: skip


@pytest.mark.parametrize("suffix", [".kit.tar.zst", ".kit.tar.gz"])
def test_export_then_import_round_trips_the_session(session, tmp_path, suffix):
    results, _ = session
    bundle = tmp_path / f"s{suffix}"
    code, text = _export(results, bundle)
    assert code == 0, text
    (original,) = session_dirs(results)
    code, text = invoke_with(None, "import", str(bundle), "--results", str(tmp_path / "here"))
    assert code == 0 and "imported: session" in text, text
    (copied,) = session_dirs(tmp_path / "here")
    assert copied.name == original.name
    assert load_session(copied) == load_session(original)
    for name in ("session.json", "results.jsonl", "summary.md"):
        assert (copied / name).read_bytes() == (original / name).read_bytes()
    code, text = invoke_with(None, "report", "latest", "--results", str(tmp_path / "here"))
    assert code == 0 and "tuned" in text, text
    code, text = invoke_with(None, "import", str(bundle), "--results", str(tmp_path / "here"))
    assert code == 0 and "already imported" in text
    code, text = invoke_with(None, "history", "--results", str(tmp_path / "here"))
    assert text.count(original.name) == 1


def test_a_bundle_holds_system_images_and_profiles(bundle, tmp_path):
    members = _members(bundle)
    manifest = json.loads(members["manifest.json"])
    assert next(iter(members)) == "manifest.json"
    assert set(manifest["members"]) == set(members) - {"manifest.json"}
    system = json.loads(members["system.json"])["fake"]
    assert system["host_processor_core_count"] == 2
    assert system["host_processor_model_name"] == "Test CPU"
    images = json.loads(members["images.json"])
    assert images["stock"]["reference"] == "kit/tensorflow:stock"
    assert images["stock"]["id"].startswith("sha256:")
    assert "[tuned.env]" in members["profiles.toml"].decode()
    assert 'OMP_NUM_THREADS = "{cores}"' in members["profiles.toml"].decode()
    recipe = json.loads(members["session/session.json"])["recipe"]
    assert [p["name"] for p in recipe["profiles"]] == ["default", "tuned"]


def _members(bundle: Path) -> dict[str, bytes]:
    raw = zstandard.ZstdDecompressor().stream_reader(bundle.open("rb"))
    with tarfile.open(fileobj=raw, mode="r|") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def _write(bundle: Path, members: dict[str, bytes]) -> None:
    with (
        bundle.open("wb") as raw,
        zstandard.ZstdCompressor().stream_writer(raw) as z,
        tarfile.open(fileobj=z, mode="w|") as tar,
    ):
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _changed(members: dict[str, bytes], name: str) -> dict[str, bytes]:
    data = bytearray(members[name])
    data[len(data) // 2] ^= 0x01
    return {**members, name: bytes(data)}


def _newer(members: dict[str, bytes]) -> dict[str, bytes]:
    manifest = json.loads(members["manifest.json"])
    manifest["kit_bundle"] = 99
    return {**members, "manifest.json": json.dumps(manifest).encode()}


def _cut(bundle: Path) -> None:
    data = bundle.read_bytes()
    bundle.write_bytes(data[: len(data) * 2 // 3])


@pytest.mark.parametrize(
    "damage, said",
    [
        (
            lambda m: _changed(m, "session/results.jsonl"),
            "member session/results.jsonl does not match its manifest",
        ),
        (
            lambda m: {k: v for k, v in m.items() if k != "system.json"},
            "lacks its member system.json",
        ),
        (lambda m: {**m, "extra.sh": b"echo hi"}, "holds extra.sh, which its manifest does not"),
        (_newer, "bundle schema 99); this kit"),
        (lambda m: {k: v for k, v in m.items() if k != "manifest.json"}, "not a kit bundle"),
    ],
    ids=["one-byte-changed", "missing-member", "added-member", "newer-schema", "no-manifest"],
)
def test_a_damaged_bundle_is_refused_naming_what(bundle, tmp_path, damage, said):
    _write(bundle, damage(_members(bundle)))
    for command in (
        ["import", str(bundle)],
        ["replay", str(bundle)],
        ["diff", str(bundle), str(bundle)],
    ):
        code, text = invoke_with(FakeEngine(RATES), *command, "--results", str(tmp_path / "h"))
        assert code == 2, text
        assert said in text and "Traceback" not in text
        assert len(text.strip().splitlines()) <= 2
    assert not (tmp_path / "h").exists() or not session_dirs(tmp_path / "h")


def test_a_cut_short_or_foreign_file_is_refused(bundle, tmp_path):
    _cut(bundle)
    code, text = invoke_with(None, "import", str(bundle), "--results", str(tmp_path / "h"))
    assert code == 2 and "damaged or cut short" in text, text
    bundle.write_bytes(b"not a bundle at all")
    code, text = invoke_with(None, "import", str(bundle), "--results", str(tmp_path / "h"))
    assert code == 2 and str(bundle) in text, text
    code, text = invoke_with(None, "import", str(tmp_path / "missing.kit.tar.zst"))
    assert code == 2 and "no bundle at" in text, text
    (tmp_path / "s.zip").write_bytes(b"PK")
    code, text = invoke_with(None, "import", str(tmp_path / "s.zip"))
    assert code == 2 and ".tar.zst or .tar.gz" in text


def test_replay_places_runs_compares_and_links(bundle, tmp_path):
    here = tmp_path / "here"
    code, text = invoke_with(FakeEngine(RATES), "replay", str(bundle), "--results", str(here))
    assert code == 0, text
    assert "every run has the placement it had there" in text
    rows = _rows(text)
    assert "reproduced" in rows["stock:default"] and "reproduced" in rows["stock:tuned"]
    assert "the two machines' descriptions are the same" in text
    original, replayed = session_dirs(here)  # the original was imported beside it
    meta = json.loads((replayed / "session.json").read_text())
    assert meta["replay_of"] == original.name
    assert len(load_session(replayed)) == 4  # as many repeats as the original
    code, text = invoke_with(None, "history", "--results", str(here), "-f", "json")
    commands = {s["session"]: s["command"] for s in json.loads(text)["sessions"]}
    assert commands[replayed.name] == f"replay of {original.name}", commands


def test_replay_on_a_slower_host_with_another_topology_says_so(bundle, tmp_path):
    slower = FakeEngine({"stock:default": 5.0, "stock:tuned": 12.0}, topology=C4)
    code, text = invoke_with(
        GivenEngines(slower, topology=C4), "replay", str(bundle), "--repeats", "3",
        "--results", str(tmp_path / "h"),
    )  # fmt: skip
    assert code == 0, text
    assert "placement: stock:tuned: cpus 0-1 -> 0-35" in text
    assert "OMP_NUM_THREADS 2 -> 18" in text
    rows = _rows(text)
    assert "slower" in rows["stock:default"] and "0.50x" in rows["stock:default"]
    assert "reproduced" in rows["stock:tuned"]
    # its answer moved: tuned was 1.20x of default there, 2.40x here (another topology)
    assert "2.00x" in _rows(text, 1)["stock:tuned"] and "faster" in _rows(text, 1)["stock:tuned"]
    assert "host_processor_core_count" in text and "18" in text


class OtherImage(FakeEngine):
    def image_id(self, reference: str) -> str:
        return "sha256:" + "e" * 64


def test_replay_refuses_a_different_image_unless_allowed(bundle, tmp_path):
    here = tmp_path / "here"
    code, text = invoke_with(OtherImage(RATES), "replay", str(bundle), "--results", str(here))
    assert code == 2, text
    assert "kit/tensorflow:stock is sha256:eeeeeeeeeeee, the session ran sha256:" in text
    assert "--allow-different-image" in text
    assert not here.exists() or not session_dirs(here)
    code, text = invoke_with(OtherImage(RATES), "replay", str(bundle), "--allow-different-image",
                             "--results", str(here))  # fmt: skip
    assert code == 0, text
    replayed = session_dirs(here)[-1]
    meta = json.loads((replayed / "session.json").read_text())
    assert meta["different_images"] and "sha256:eeeeeeeeeeee" in meta["different_images"][0]


def test_a_session_without_recipe_cannot_be_replayed(bundle, tmp_path):
    members = _members(bundle)
    meta = json.loads(members["session/session.json"])
    del meta["recipe"]
    members["session/session.json"] = json.dumps(meta).encode()
    manifest = json.loads(members["manifest.json"])
    import hashlib

    data = members["session/session.json"]
    manifest["members"]["session/session.json"] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    members["manifest.json"] = json.dumps(manifest).encode()
    _write(bundle, members)
    code, text = invoke_with(FakeEngine(RATES), "replay", str(bundle), "--results", str(tmp_path))
    assert code == 2 and "has no recipe" in text, text


def test_diff_of_two_sessions_gates_on_slower_cells(session, tmp_path):
    results, _ = session
    slow = FakeEngine({"stock:default": 8.0, "stock:tuned": 12.0})
    code, text = invoke_with(
        slow, "compare", "stock", "-p", "default", "-p", "tuned", *SIZES, "--repeats", "2",
        "--results", str(results),
    )  # fmt: skip
    assert code == 0, text
    first, second = (p.name for p in session_dirs(results))
    code, text = invoke_with(None, "diff", first, second, "--results", str(results))
    assert code == 0, text
    rows = _rows(text)
    assert "0.80x" in rows["stock:default"] and "slower" in rows["stock:default"]
    code, text = invoke_with(None, "diff", first, second, "--fail-if-slower", "10",
                             "--results", str(results))  # fmt: skip
    assert code == 1 and "stock:default: 0.80x" in text, text
    code, text = invoke_with(None, "diff", first, second, "--fail-if-slower", "25",
                             "--results", str(results))  # fmt: skip
    assert code == 0, text
    code, text = invoke_with(None, "diff", first, "nope", "--results", str(results))
    assert code == 2, text


def test_bad_replay_options_are_refused_before_anything_runs(session, bundle, tmp_path):
    results, _ = session
    engine = FakeEngine(RATES)
    for bad, said in ((["--repeats", "two"], "--repeats"), (["--tolerance", "150"], "--tolerance")):
        code, text = invoke_with(engine, "replay", str(bundle), *bad, "--results", str(tmp_path))
        assert code == 2 and said in text, text
    assert engine.ran == []
    code, text = _export(results, tmp_path / "s.zip")
    assert code == 2 and ".tar.zst or .tar.gz" in text
    code, text = _export(results, tmp_path / "s.kit.tar.zst", "--with-images")
    assert code == 2 and "needs a Docker engine" in text


def test_recorded_digests_name_the_image_in_another_registry():
    from kit.images.delivery import pulled_names

    digests = ["localhost:5000/kit/tensorflow@sha256:ab", "reg.example/kit/tensorflow@sha256:ab",
               "kit/tensorflow@sha256:cd", "no-digest"]  # fmt: skip
    assert pulled_names(digests, "127.0.0.1:5001") == [
        "127.0.0.1:5001/kit/tensorflow@sha256:ab",
        "127.0.0.1:5001/kit/tensorflow@sha256:cd",
    ]


class StopsAtThird(FakeEngine):
    def run(self, spec, session_id, log_path, on_line):
        if len(self.ran) == 2:
            self.ran.append(spec)
            raise KeyboardInterrupt
        return super().run(spec, session_id, log_path, on_line)


def test_an_interrupted_replay_resumes_where_it_stopped(bundle, tmp_path):
    here = tmp_path / "here"
    code, text = invoke_with(StopsAtThird(RATES), "replay", str(bundle), "--results", str(here))
    assert code == 130, text
    replayed = session_dirs(here)[-1]
    assert f"--resume {replayed.name}" in text
    assert len(load_session(replayed)) == 2
    engine = FakeEngine(RATES)
    code, text = invoke_with(engine, "replay", str(bundle), "--resume", replayed.name,
                             "--results", str(here))  # fmt: skip
    assert code == 0, text
    assert len(engine.ran) == 2 and len(load_session(replayed)) == 4
    assert "reproduced" in text


def test_a_sweeps_session_replays_its_knob_cells(tmp_path):
    results = tmp_path / "there"
    code, text = invoke_with(
        FakeEngine(lambda spec: 10.0), "sweep", "stock", "-k", "intra=1,2", *SIZES,
        "--repeats", "2", "--results", str(results),
    )  # fmt: skip
    assert code == 0, text
    bundle = tmp_path / "s.kit.tar.zst"
    assert _export(results, bundle)[0] == 0
    engine = FakeEngine(lambda spec: 10.0)
    code, text = invoke_with(engine, "replay", str(bundle), "--results", str(tmp_path / "h"))
    assert code == 0, text
    assert sorted({s.profile.intra_op for s in engine.ran}) == [1, 2]
    rows = _rows(text)
    assert len(rows) == 2 and all("reproduced" in row for row in rows.values())
    assert list(_rows(text, 1)) == ["stock:intra=2"] and "reproduced" in text.split("answer")[1]


def test_an_image_rebuilt_since_the_session_gets_no_digests_and_cannot_be_carried():
    from types import SimpleNamespace

    from kit.errors import UsageError as Refused
    from kit.images.delivery import registry_digests

    said = []
    feedback = SimpleNamespace(say=said.append)
    now = "sha256:" + "b" * 64
    store = SimpleNamespace(name="docker", repo_digests=lambda ref: (now, ["r/kit@sha256:1"]))
    ran = replace(_run("stock:default", 10.0, 0), image_id="sha256:" + "a" * 64)
    assert registry_digests(store, [ran], False, feedback) == {"kit/tensorflow:stock": []}
    assert "is now sha256:bbbbbbbbbbbb; the session ran sha256:aaaaaaaaaaaa" in said[0]
    with pytest.raises(Refused, match="export without --with-images"):
        registry_digests(store, [ran], True, feedback)
    same = replace(ran, image_id=now)
    digests = registry_digests(store, [same], False, feedback)
    assert digests == {"kit/tensorflow:stock": ["r/kit@sha256:1"]}
