"""A new host without a build: images through a real registry (Debian's docker-registry on
loopback) and through an archive file, each then run with no network."""

from __future__ import annotations

import gzip

import pytest

from kit.store.folder import load_session
from tests.conftest import TINY, invoke, only_session

pytestmark = pytest.mark.docker


def _forget(docker_client) -> str:
    """Remove the latest flavor's image and every tag pointing at it, as on a host that never
    had it; returns its id. (Read now: an earlier test may have rebuilt it.)"""
    image_id = docker_client.images.get("kit/tensorflow:latest").id
    docker_client.images.remove(image_id, force=True)
    assert not [i for i in docker_client.images.list() if i.id == image_id]
    return image_id


def _runs_offline(tmp_path) -> float:
    code, text = invoke("run", "latest", *TINY, "--results", str(tmp_path))
    assert code == 0, text
    (result,) = load_session(only_session(tmp_path))
    assert result.ok and result.tf_version == "2.21.0"
    return result.images_per_sec


def test_push_forget_pull_run(kit_images, kit_containers, docker_client, registry, tmp_path):
    code, text = invoke("images", "push", "latest", "--registry", registry)
    assert code == 0, text
    assert "sha256:" in text
    image_id = _forget(docker_client)
    code, text = invoke("images", "pull", "latest", "--registry", registry)
    assert code == 0, text
    assert "digest checked" in text
    assert docker_client.images.get("kit/tensorflow:latest").id == image_id
    assert _runs_offline(tmp_path) > 0


def test_compare_pulls_what_is_missing(
    kit_images, kit_containers, docker_client, registry, tmp_path
):
    assert invoke("images", "push", "latest", "--registry", registry)[0] == 0
    image_id = _forget(docker_client)
    code, text = invoke(
        "compare",
        "latest",
        "-p",
        "default",
        *TINY,
        "--repeats",
        "1",
        "--pull",
        "--registry",
        registry,
        "--results",
        str(tmp_path),
    )
    assert code == 0, text
    assert docker_client.images.get("kit/tensorflow:latest").id == image_id


def test_pulling_what_the_registry_lacks_says_how_to_get_it(docker_client, registry):
    code, text = invoke("images", "pull", "intel", "--registry", registry)
    assert code == 2
    assert "is not in the registry" in text and "kit images push intel" in text


@pytest.mark.parametrize("suffix", [".tar.zst", ".tar.gz"])
def test_save_forget_load_run(kit_images, kit_containers, docker_client, tmp_path, suffix):
    archive = tmp_path / f"kit-images{suffix}"
    code, text = invoke("images", "save", "latest", "-o", str(archive))
    assert code == 0, text
    assert archive.stat().st_size > 100 * 2**20
    image_id = _forget(docker_client)
    code, text = invoke("images", "load", str(archive))
    assert code == 0, text
    assert "kit/tensorflow:latest" in text
    assert docker_client.images.get("kit/tensorflow:latest").id == image_id
    assert _runs_offline(tmp_path / "results") > 0


def _tar_gz() -> bytes:
    """A gzipped tar with a large member, as an archive cut short would start."""
    import io
    import os
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = os.urandom(1_000_000)
        info = tarfile.TarInfo("layer.tar")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("make", "said"),
    [(lambda p: p.write_bytes(_tar_gz()[:3000]), "cut short"),
     (lambda p: p.write_bytes(b""), "not an image archive"),
     (lambda p: p.write_bytes(gzip.compress(b"x" * 10240)), "not a tar file"),
     (lambda p: p.write_bytes(gzip.compress(b"\0" * 10240)), "not an image archive")],
)  # fmt: skip
def test_a_bad_archive_is_said_in_one_line(docker_client, tmp_path, make, said):
    path = tmp_path / "kit-images.tar.gz"
    make(path)
    code, text = invoke("images", "load", str(path))
    assert code == 1 and said in text and "docker-import-" not in text
    assert "Aborted" not in text and "Traceback" not in text


def test_a_push_to_no_registry_says_so_and_leaves_no_tag(kit_images, docker_client):
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, text = invoke("images", "push", "stock", "--registry", f"127.0.0.1:{port}")
    assert code == 1 and f"no registry answers at 127.0.0.1:{port}" in text
    tags = [t for i in docker_client.images.list() for t in i.tags]
    assert not [t for t in tags if t.startswith(f"127.0.0.1:{port}/")]
