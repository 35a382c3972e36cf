"""--model FILE: the user's saved Keras model. Here what kit does before any run (refusals, the
workload it records, the mount, the series its digest makes); tests/test_user_model_docker.py
runs real models of each input kind in the real images."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kit.engines.container import container_kwargs
from kit.model.flavors import resolve_image
from kit.model.numa import NumaPolicy
from kit.model.profiles import ResolvedProfile
from kit.model.results import RunOutcome, RunResult, Status
from kit.model.spec import RunSpec
from kit.model.workload import MODEL_MOUNT, WorkloadSpec, workload_from_json, workload_json
from kit.model.workload_record import WorkloadRecord
from tests.conftest import invoke_with
from tests.fakes import FakeEngine


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "mine.keras"
    path.write_bytes(b"PK\x03\x04 a zip, as Keras writes it")
    return path


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("resnet5", "neither a built-in model nor a file (did you mean resnet50?"),
        ("{folder}", "is a folder with no saved_model.pb"),
        ("{folder}/notes.txt", "kit reads saved Keras models (.keras, .h5)"),
    ],
)
def test_a_model_kit_cannot_read_is_refused_before_any_engine_is_asked(tmp_path, given, said):
    (tmp_path / "notes.txt").write_text("not a model")
    engine = FakeEngine({})
    code, text = invoke_with(engine, "compare", "latest", "--model", given.format(folder=tmp_path),
                             "--results", str(tmp_path))  # fmt: skip
    assert code == 2 and said in text and engine.ran == [], text


def test_slurm_cannot_see_a_file_of_this_machine(model):
    code, text = invoke_with(None, "plan", "latest", "--model", str(model), "--engine", "slurm")
    assert code == 2 and "Slurm's nodes cannot see it" in text, text


def test_the_model_is_mounted_read_only_and_named_by_its_digest(model, tmp_path):
    engine = FakeEngine(lambda spec: 10.0)
    code, text = invoke_with(engine, "run", "latest", "--model", str(model), "--mode", "infer",
                             "--results", str(tmp_path / "r"))  # fmt: skip
    assert code == 0, text
    (spec,) = engine.ran
    w = spec.workload
    assert w.model_file == model.resolve() and len(w.model_digest) == 64
    assert f"--model_file={MODEL_MOUNT}/mine.keras" in spec.command()
    volumes = container_kwargs(spec, "s")["volumes"]
    assert volumes[str(model.resolve())] == {"bind": f"{MODEL_MOUNT}/mine.keras", "mode": "ro"}
    assert f"--model_file={model.resolve()}" in spec.host_command("python")  # no mount
    assert f"mine.keras ({w.model_digest[:12]}) inference" in text
    assert workload_from_json(workload_json(w)) == w


def test_the_same_file_name_with_other_content_is_another_series(model):
    first = WorkloadSpec(model_file=model, model_digest="a" * 64)
    other = WorkloadSpec(model_file=model, model_digest="b" * 64)
    describe = [WorkloadRecord.of(w).describe() for w in (first, other)]
    assert describe[0] != describe[1] and describe[0].startswith("mine.keras (aaaaaaaaaaaa)")


def test_its_work_per_example_is_what_tensorflows_profiler_counted(model):
    spec = RunSpec(1, resolve_image("latest"),
                   ResolvedProfile("default", {}, None, None, NumaPolicy(), ()), (0, 1),
                   WorkloadSpec(model_file=model, model_digest="a" * 64))  # fmt: skip
    record = WorkloadRecord.of(spec.workload)
    assert record.model == "mine.keras" and record.model_digest == "a" * 64
    assert WorkloadRecord.from_json(record.to_json()) == record

    def run(forward):
        prov = {"model_file": {"forward_flop": forward}}
        return RunResult(1, "latest", "r", "default", "0-1", "-", (), {}, Status.ok, 10.0, "",
                         "", 0, "", provenance=prov, workload=record)  # fmt: skip

    assert run(1000.0).flop_per_image == 3000.0  # training: three forward passes
    assert run(None).flop_per_image is None  # the profiler could not count: unknown, said


def test_a_refusal_from_the_workload_stops_the_session_in_one_line(model, tmp_path):
    class Refusing(FakeEngine):  # what the real workload prints for a model it cannot run
        def run(self, spec, session_id, log_path, on_line):
            self.ran.append(spec)
            text = "kit-refused: input 'ids' has shape (None, None): kit fixes only the batch"
            log_path.write_text(text + "\n")
            on_line(text)
            now = datetime.now(UTC)
            return RunOutcome(started=now, ended=now, exit_code=2, log_path=log_path,
                              image_id=self.image_id(spec.image.reference))  # fmt: skip

    engine = Refusing(lambda spec: 10.0)
    code, text = invoke_with(engine, "compare", "latest", "--model", str(model), "--repeats", "2",
                             "--results", str(tmp_path))  # fmt: skip
    assert code == 2, text
    assert "kit's workload refused it: input 'ids' has shape (None, None)" in text
    assert len(engine.ran) < 4  # stopped at its first round, not run again and again


def test_a_bundle_of_your_models_session_replays_only_with_that_model_here(model, tmp_path):
    there, bundle = tmp_path / "there", tmp_path / "s.kit.tar.zst"
    code, text = invoke_with(FakeEngine(lambda spec: 10.0), "compare", "latest", "--model",
                             str(model), "--mode", "infer", "--repeats", "2", "--results",
                             str(there))  # fmt: skip
    assert code == 0, text
    code, text = invoke_with(FakeEngine({}), "export", "latest", "-o", str(bundle), "--results",
                             str(there))  # fmt: skip
    assert code == 0, text
    model.write_bytes(b"PK\x03\x04 another model under the same name")
    replay = ("replay", str(bundle), "--results", str(tmp_path / "here"))
    engine = FakeEngine(lambda spec: 10.0)
    code, text = invoke_with(engine, *replay)
    assert code == 2 and "the session ran your model mine.keras (sha256" in text, text
    assert "there is another file" in text and engine.ran == []
    model.unlink()
    code, text = invoke_with(engine, *replay)
    assert code == 2 and "is not there" in text and engine.ran == []


def test_a_model_the_containers_user_cannot_read_is_refused(model, tmp_path):
    model.chmod(0o600)
    code, text = invoke_with(FakeEngine({}), "plan", "latest", "--model", str(model))
    assert code == 2 and f"chmod -R o+rX {model}" in text, text
    code, text = invoke_with(FakeEngine({}), "plan", "latest", "--model", str(model), "--engine",
                             "local")  # fmt: skip
    assert "chmod" not in text  # the local engine runs as you


def test_a_savedmodel_folder_runs_forward_only_and_its_files_make_the_digest(tmp_path):
    saved = tmp_path / "saved"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    (saved / "variables" / "variables.index").write_bytes(b"weights")
    code, text = invoke_with(FakeEngine({}), "plan", "latest", "--model", str(saved))
    assert code == 2 and "is a SavedModel: kit runs it forward only" in text, text
    engine = FakeEngine(lambda spec: 10.0)
    code, text = invoke_with(engine, "run", "latest", "--model", str(saved), "--mode", "infer",
                             "--results", str(tmp_path / "r"))  # fmt: skip
    assert code == 0, text
    first = engine.ran[0].workload.model_digest
    (saved / "variables" / "variables.index").write_bytes(b"other weights")
    engine = FakeEngine(lambda spec: 10.0)
    invoke_with(engine, "run", "latest", "--model", str(saved), "--mode", "infer", "--results",
                str(tmp_path / "r"))  # fmt: skip
    assert engine.ran[0].workload.model_digest != first  # its weights changed: another model
