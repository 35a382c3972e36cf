import pytest

from kit import __version__
from kit.errors import KitError, UsageError
from kit.images.distribution import _stream, compression_for, registry_from, remote_name
from kit.model.flavors import Flavor


def test_registry_comes_from_the_option_then_the_environment_then_the_default():
    assert registry_from("reg.example:5000", {"KIT_REGISTRY": "other"}) == "reg.example:5000"
    assert registry_from(None, {"KIT_REGISTRY": "mirror.local/"}) == "mirror.local"
    assert registry_from(None, {}) == "localhost:5000"
    with pytest.raises(UsageError, match="not a registry host"):
        registry_from("https://reg.example", {})


def test_remote_names_carry_flavor_tf_and_kit_versions():
    name = remote_name(Flavor.intel, "localhost:5000")
    assert name.repository == "localhost:5000/kit/tensorflow"
    assert name.tags == (f"intel-2.14.0-kit{__version__}", "intel")
    assert name.primary == f"localhost:5000/kit/tensorflow:intel-2.14.0-kit{__version__}"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.tar.zst", "zstd"),
        ("a.tar.zstd", "zstd"),
        ("a.tar.gz", "gzip"),
        ("a.tgz", "gzip"),
        ("a.tar", None),
    ],
)
def test_archive_kinds(tmp_path, name, kind):
    assert compression_for(tmp_path / name) == kind


def test_unknown_archive_kind_is_refused(tmp_path):
    with pytest.raises(UsageError, match="unknown archive type"):
        compression_for(tmp_path / "images.zip")


def test_progress_events_and_errors():
    seen = []
    aux = _stream(
        iter([
            {"status": "Pushing", "id": "0123456789ab",
             "progressDetail": {"current": 5, "total": 10}},
            {"aux": {"Tag": "stock", "Digest": "sha256:abc", "Size": 1}},
        ]),
        lambda *event: seen.append(event),
    )  # fmt: skip
    assert aux["Digest"] == "sha256:abc"
    assert seen[0] == ("0123456789ab", "Pushing", 5, 10)
    with pytest.raises(KitError, match="denied"):
        _stream(iter([{"error": "denied: requested access"}]), lambda *event: None)
