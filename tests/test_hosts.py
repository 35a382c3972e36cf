"""A new host without a build (a dockerd of the suite's own): images through a real registry
(Debian's docker-registry on loopback) and through an archive file, each then run with no
network."""

from __future__ import annotations

import gzip

import pytest

from kit.store.folder import load_session
from tests.conftest import TINY, invoke, only_session
from tests.engines import another_engine

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def new_engine(kit_images):
    """A host that never had kit's images: a dockerd of the suite's own. This host's engine keeps
    its images (a session beside the suite may be running them)."""
    engine = another_engine("kit-hosts", 254)
    yield engine
    engine.remove()


@pytest.fixture
def new_host(new_engine, monkeypatch):
    """The new host, holding no image yet; the test calls it to point kit there (DOCKER_HOST)
    and gets that engine's client."""
    client = new_engine.client()
    for image in client.images.list():
        client.images.remove(image.id, force=True)
    assert not client.images.list()

    def point_kit_there():
        monkeypatch.setenv("DOCKER_HOST", new_engine.socket_url)
        return client

    return point_kit_there


def _runs_offline(tmp_path) -> float:
    code, text = invoke("run", "latest", *TINY, "--results", str(tmp_path))
    assert code == 0, text
    (result,) = load_session(only_session(tmp_path))
    assert result.ok and result.tf_version == "2.21.0"
    return result.images_per_sec


def _latest(client) -> str:
    return client.images.get("kit/tensorflow:latest").id


def test_push_forget_pull_run(kit_images, kit_containers, docker_client, registry, new_host,
                              tmp_path):  # fmt: skip
    code, text = invoke("images", "push", "latest", "--registry", registry)
    assert code == 0, text
    assert "sha256:" in text
    there = new_host()
    code, text = invoke("images", "pull", "latest", "--registry", registry)
    assert code == 0, text
    assert "digest checked" in text
    assert _latest(there) == _latest(docker_client)
    assert _runs_offline(tmp_path) > 0


def test_compare_pulls_what_is_missing(kit_images, kit_containers, docker_client, registry,
                                       new_host, tmp_path):  # fmt: skip
    assert invoke("images", "push", "latest", "--registry", registry)[0] == 0
    there = new_host()
    code, text = invoke("compare", "latest", "-p", "default", *TINY, "--repeats", "1", "--pull",
                        "--registry", registry, "--results", str(tmp_path))  # fmt: skip
    assert code == 0, text
    assert _latest(there) == _latest(docker_client)


def test_pulling_what_the_registry_lacks_says_how_to_get_it(docker_client, registry):
    code, text = invoke("images", "pull", "intel", "--registry", registry)
    assert code == 2
    assert "is not in the registry" in text and "kit images push intel" in text


@pytest.mark.parametrize("suffix", [".tar.zst", ".tar.gz"])
def test_save_forget_load_run(kit_images, kit_containers, docker_client, new_host, tmp_path,
                              suffix):  # fmt: skip
    archive = tmp_path / f"kit-images{suffix}"
    code, text = invoke("images", "save", "latest", "-o", str(archive))
    assert code == 0, text
    assert archive.stat().st_size > 100 * 2**20
    there = new_host()
    code, text = invoke("images", "load", str(archive))
    assert code == 0, text
    assert "kit/tensorflow:latest" in text
    assert _latest(there) == _latest(docker_client)
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
    """Of its own, that is: a tag an earlier push made stays."""
    import socket

    from kit.images.distribution import remote_name
    from kit.model.flavors import Flavor

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = remote_name(Flavor.stock, f"127.0.0.1:{port}")
    earlier = f"{name.repository}:{name.tags[0]}"  # as an earlier push to it left it
    docker_client.images.get(kit_images["stock"]).tag(name.repository, name.tags[0])
    try:
        code, text = invoke("images", "push", "stock", "--registry", f"127.0.0.1:{port}")
        assert code == 1 and f"no registry answers at 127.0.0.1:{port}" in text
        tags = [t for i in docker_client.images.list() for t in i.tags]
        assert [t for t in tags if t.startswith(f"127.0.0.1:{port}/")] == [earlier]
    finally:
        docker_client.images.remove(earlier, noprune=True)
