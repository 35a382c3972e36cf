"""What kit does differently on podman, as pure rules: where its socket is, how it is told
from Docker, the ulimits runc may set, and when it cannot place runs at all."""

from __future__ import annotations

import resource

from kit.engines.podman import (
    describe,
    host_ulimits,
    is_podman,
    lowered,
    placement_problem,
    podman_socket,
)


def test_the_socket_is_rootful_for_root_and_the_users_own_otherwise():
    assert podman_socket({}, uid=0) == "unix:///run/podman/podman.sock"
    assert podman_socket({"XDG_RUNTIME_DIR": "/run/user/1000"}, uid=1000) == (
        "unix:///run/user/1000/podman/podman.sock"
    )
    assert podman_socket({}, uid=1001) == "unix:///run/user/1001/podman/podman.sock"
    given = {"CONTAINER_HOST": "unix:///tmp/p/podman.sock", "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert podman_socket(given, uid=1000) == "unix:///tmp/p/podman.sock"  # podman's own variable
    assert podman_socket({"CONTAINER_HOST": "ssh://h/run/p.sock"}, uid=0).endswith(
        "/run/podman/podman.sock"
    )


def test_podman_is_told_from_docker_by_its_version_answer():
    assert is_podman({"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]})
    assert not is_podman({"Components": [{"Name": "Engine", "Version": "20.10.24"}]})
    assert not is_podman({})


def test_ulimits_start_at_this_hosts_hard_limits_and_are_lowered_as_runc_says():
    limits = host_ulimits()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert limits["nofile"] == min(hard, 1 << 20) or hard == resource.RLIM_INFINITY
    limits = {"nofile": 20000, "nproc": 96365}
    said = "runc create failed: error setting rlimit type 6: operation not permitted"
    assert lowered(limits, said) and limits == {"nofile": 20000, "nproc": 65536}
    assert lowered(limits, said) and limits["nproc"] == 32768
    assert lowered(limits, "error setting rlimit type 7: x") and limits["nofile"] == 16384
    assert not lowered(limits, "some other failure")
    floor = {"nofile": 1024, "nproc": 1024}
    assert not lowered(floor, said)
    assert describe({"nofile": 8, "nproc": 9}) == "--ulimit nofile=8:8 --ulimit nproc=9:9"


def test_rootless_podman_without_the_cpuset_controller_cannot_place_runs():
    def info(rootless, version, controllers):
        security = {"rootless": rootless}
        return {"host": {"security": security, "cgroupVersion": version,
                         "cgroupControllers": controllers}}  # fmt: skip

    said = placement_problem(info(True, "v1", []))
    assert "rootless podman without the cpuset cgroup controller (cgroup v1)" in said
    assert "cgroup v2" in placement_problem(info(True, "v2", ["memory", "pids"]))
    assert placement_problem(info(True, "v2", ["cpuset", "cpu", "memory"])) is None
    assert placement_problem(info(False, "v1", [])) is None
