import io
import tarfile

import pytest

from kit.errors import UsageError
from kit.images.build import (
    build_context,
    check_ca_bundle,
    default_ca_bundle,
    image_labels,
    local_base_command,
)
from kit.model.flavors import Flavor, requirements, tf_package


def members(blob: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_context_is_laid_out_like_the_repository():
    files = members(build_context(Flavor.intel, None))
    assert set(files) >= {
        "docker/Dockerfile",
        "docker/flavors/intel.txt",
        "docker/flavors/intel.lock",
        "kit/workload/__main__.py",
        "kit/workload/train.py",
        "kit/workload/provenance.py",
    }
    assert "docker/ca-bundle.crt" not in files
    assert not any("stock" in name for name in files)


def test_context_carries_the_ca_bundle_when_given(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(b"-----BEGIN CERTIFICATE-----\n...\n")
    files = members(build_context(Flavor.stock, bundle))
    assert files["docker/ca-bundle.crt"] == bundle.read_bytes()


def test_default_ca_bundle_follows_the_standard_variables(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    assert default_ca_bundle({"PIP_CERT": str(bundle)}) == bundle
    assert default_ca_bundle({"SSL_CERT_FILE": str(tmp_path / "missing")}) is None
    assert default_ca_bundle({}) is None


def test_missing_ca_bundle_is_refused(tmp_path):
    with pytest.raises(UsageError, match="No such file"):
        check_ca_bundle(tmp_path / "nope.pem")


def test_a_ca_bundle_that_is_not_pem_is_refused(tmp_path):
    (tmp_path / "x.pem").write_text("not a certificate\n")
    with pytest.raises(UsageError, match="holds no PEM certificate"):
        check_ca_bundle(tmp_path / "x.pem")
    (tmp_path / "ok.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"
    )
    check_ca_bundle(tmp_path / "ok.pem")


@pytest.mark.parametrize(
    ("flavor", "package"),
    [
        (Flavor.stock, "tensorflow-cpu==2.14.1"),
        (Flavor.intel, "intel-tensorflow==2.14.0"),
        (Flavor.latest, "tensorflow-cpu==2.21.0"),
    ],
)
def test_flavor_pins(flavor, package):
    assert tf_package(flavor) == package
    assert package in requirements(flavor)
    labels = image_labels(flavor, "kit/debian:bookworm")
    assert labels["kit.flavor"] == flavor.value
    assert labels["kit.tf-package"] == package
    assert labels["org.opencontainers.image.base.name"] == "kit/debian:bookworm"


def test_tf_2_14_flavors_pin_numpy_below_2():
    for flavor in (Flavor.stock, Flavor.intel):
        assert any(p.startswith("numpy==1.") for p in requirements(flavor))


def test_local_base_commands():
    mm = local_base_command("mmdebstrap", "/tmp/x.tar")
    assert mm[0] == "mmdebstrap" and mm[-2:] == ["bookworm", "/tmp/x.tar"]
    assert "--include=ca-certificates,python3,python3-venv,numactl" in mm
    assert local_base_command("debootstrap", "/tmp/root")[0] == "debootstrap"


def test_the_images_date_is_its_sources_last_commit_so_other_commits_change_no_image(
    tmp_path, monkeypatch
):
    """A docs or CLI commit leaves the created label, hence every image id, as it was; a commit
    to the workload moves it."""
    import subprocess
    from pathlib import Path

    from kit.images.build import source_date

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    repo = Path(__file__).resolve().parents[1]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--local", str(repo), str(clone)], check=True)

    def commit(path: str, when: int) -> None:
        (clone / path).write_text((clone / path).read_text() + "\n")
        env = {"GIT_AUTHOR_DATE": f"{when} +0000", "GIT_COMMITTER_DATE": f"{when} +0000",
               "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}  # fmt: skip
        subprocess.run(["git", "-C", str(clone), "commit", "-qam", "x"], check=True, env=env)

    before = source_date(clone)
    commit("README.md", 4_000_000_000)
    assert source_date(clone) == before
    commit("kit/workload/speed.py", 4_000_000_100)
    assert source_date(clone) == "2096-10-02T07:08:20+00:00"
