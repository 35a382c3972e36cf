import pytest

from kit.engines.container import LABEL_MANAGED, container_kwargs
from kit.errors import UsageError
from kit.model.flavors import resolve_image
from kit.model.profiles import Placement, load_profiles
from kit.model.spec import RunSpec
from kit.model.workload import DataFormat, Model, Workload, WorkloadSpec

HOST = Placement(cores=2, threads=2, nodes=1, last_node=0)


def spec(profile="default", cpus=(0, 1), **workload) -> RunSpec:
    resolved = load_profiles()[profile].resolve(HOST)
    return RunSpec(
        index=3,
        image=resolve_image("intel"),
        profile=resolved,
        cpus=cpus,
        workload=WorkloadSpec(**workload),
    )


def test_default_profile_container():
    kwargs = container_kwargs(spec(), "S1")
    assert kwargs["image"] == "kit/tensorflow:intel"
    assert kwargs["cpuset_cpus"] == "0-1"
    assert kwargs["environment"] == {}
    assert kwargs["command"][:3] == ["python", "-m", "kit_workload"]
    assert "--model=resnet50" in kwargs["command"]
    assert not any(a.startswith("--num_intra_threads") for a in kwargs["command"])
    assert "cap_add" not in kwargs
    assert kwargs["labels"][LABEL_MANAGED] == "1"
    assert kwargs["labels"]["kit.session"] == "S1"


def test_least_privilege_for_every_container():
    kwargs = container_kwargs(spec("interleave"), "S1")
    assert kwargs["privileged"] is False
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges"]
    assert kwargs["network_mode"] == "none"
    assert kwargs["read_only"] is True
    assert "volumes" not in kwargs


def test_tuned_sets_env_and_thread_flags_without_numactl():
    kwargs = container_kwargs(spec("tuned", cpus=(1,)), "S1")
    assert kwargs["cpuset_cpus"] == "1"
    assert kwargs["environment"]["OMP_NUM_THREADS"] == "2"
    assert kwargs["command"][0] == "python"
    assert "--num_inter_threads=2" in kwargs["command"]
    assert "--num_intra_threads=2" in kwargs["command"]
    assert "cap_add" not in kwargs


def test_interleave_prefixes_numactl_and_adds_only_sys_nice():
    kwargs = container_kwargs(spec("interleave"), "S1")
    assert kwargs["command"][:2] == ["numactl", "--interleave=all"]
    assert kwargs["command"][2:5] == ["python", "-m", "kit_workload"]
    assert kwargs["cap_add"] == ["SYS_NICE"]


def test_tf_cnn_benchmarks_mounts_the_checkout_read_only(tmp_path):
    script = tmp_path / "scripts" / "tf_cnn_benchmarks" / "tf_cnn_benchmarks.py"
    script.parent.mkdir(parents=True)
    script.write_text("")
    kwargs = container_kwargs(
        spec(workload=Workload.tf_cnn_benchmarks, workload_dir=tmp_path), "S1"
    )
    assert kwargs["volumes"] == {str(tmp_path): {"bind": "/opt/tf-benchmarks", "mode": "ro"}}
    assert kwargs["command"][:3] == ["python", "-m", "kit_workload.cnn_benchmarks"]


def test_workload_dir_without_the_script_is_refused(tmp_path):
    with pytest.raises(UsageError, match="has no scripts/tf_cnn_benchmarks"):
        WorkloadSpec(workload=Workload.tf_cnn_benchmarks, workload_dir=tmp_path)


def test_nchw_with_onednn_off_is_refused():
    with pytest.raises(UsageError, match="NCHW training needs oneDNN"):
        spec("eigen", data_format=DataFormat.NCHW)


@pytest.mark.parametrize(
    "fields",
    [
        {"batch_size": 0},
        {"batch_size": -1},
        {"batch_size": 65537},
        {"num_batches": 0},
        {"num_warmup_batches": -1},
    ],
)
def test_bad_sizes_are_refused(fields):
    with pytest.raises(UsageError):
        WorkloadSpec(**fields)


def test_tiny_model_argv():
    argv = WorkloadSpec(model=Model.tiny, batch_size=8, num_batches=3, num_warmup_batches=1).argv(
        None, 4
    )
    assert argv == (
        "python",
        "-m",
        "kit_workload",
        "--model=tiny",
        "--batch_size=8",
        "--num_batches=3",
        "--num_warmup_batches=1",
        "--data_format=NHWC",
        "--num_intra_threads=4",
    )


def test_any_image_reference_is_kept_as_given():
    ref = resolve_image("registry.example/kit:stock")
    assert ref.reference == "registry.example/kit:stock"
    assert ref.flavor is None
    assert resolve_image("stock").reference == "kit/tensorflow:stock"


def test_a_containers_lifetime_from_dockers_timestamps():
    from kit.engines.container import lifetime

    assert lifetime("2026-11-26T11:40:05.696328408Z", "2026-11-26T11:40:07.196328999Z") == 1.5
    assert lifetime("0001-01-01T00:00:00Z", "2026-11-26T11:40:07Z") is None  # never started
    assert lifetime("2026-11-26T11:40:05Z", None) is None


def test_an_orphan_is_a_container_whose_kit_on_this_boot_no_longer_runs():
    from kit.engines.orphans import LABEL_OWNER, orphaned, owner

    here = owner().split("/")[0]
    assert not orphaned({LABEL_OWNER: owner()}, here)  # this kit: alive
    assert orphaned({LABEL_OWNER: f"{here}/{2**22 + 7}/1"}, here)  # no such process
    pid, start = owner().split("/")[1:]
    assert orphaned({LABEL_OWNER: f"{here}/{pid}/{int(start) + 1}"}, here)  # the pid reused
    assert not orphaned({LABEL_OWNER: "another-boot/1/1"}, here)  # another machine's kit
    assert not orphaned({}, here)  # started before kit labelled its owner: left alone
