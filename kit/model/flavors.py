"""Flavors: the TensorFlow builds kit ships images for, each a pinned package set in
``docker/flavors/<flavor>.txt``, and how a name on the command line becomes an image."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from kit.errors import UsageError, did_you_mean
from kit.model.spec import ImageRef

IMAGE_REPOSITORY = "kit/tensorflow"


class Flavor(StrEnum):
    stock = "stock"
    intel = "intel"
    latest = "latest"
    zentf = "zentf"  # AMD's ZenDNN plugin on the latest stock TensorFlow: inference


# The flavors that train: zentf's ZenDNN ops are inference kernels (its own guide).
TRAINS = frozenset({Flavor.stock, Flavor.intel, Flavor.latest})


def docker_dir() -> Path:
    """The Dockerfile's folder: the source tree's ``docker/`` or the copy shipped in the wheel."""
    here = Path(__file__).resolve().parents[1]  # kit/
    for candidate in (here.parent / "docker", here / "_docker"):
        if (candidate / "Dockerfile").is_file():
            return candidate
    raise FileNotFoundError("kit's docker/ folder is missing from this installation")


def requirements(flavor: Flavor) -> list[str]:
    text = (docker_dir() / "flavors" / f"{flavor.value}.txt").read_text(encoding="utf-8")
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def tf_package(flavor: Flavor) -> str:
    """The pinned TensorFlow distribution, e.g. ``tensorflow-cpu==2.14.1``."""
    pins = requirements(flavor)
    return next((p for p in pins if "tensorflow" in p.split("==")[0]), pins[0])


def image_tag(flavor: Flavor) -> str:
    return f"{IMAGE_REPOSITORY}:{flavor.value}"


# The image reference grammar of the distribution spec (docker/distribution's reference package):
# [domain[:port]/]path[/path...][:tag][@algorithm:hex], path components lowercase.
_DOMAIN = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
)
_DOMAIN += r"(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64}|@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,})?"
)
MAX_NAME = 255


def _name_of(reference: str) -> str:
    """The reference without its digest and tag."""
    name = reference.split("@", 1)[0]
    head, colon, tail = name.rpartition(":")
    return head if colon and "/" not in tail else name


def check_reference(text: str) -> str:
    """The reference, if it is one Docker accepts; else UsageError saying what form it takes."""
    first, slash, _ = text.partition("/")
    # As Docker reads it, a first component is a registry only with a dot, a port or as
    # localhost; otherwise it is part of the (lowercase) path.
    registry = slash and ("." in first or ":" in first or first == "localhost")
    path_ok = registry or not slash or re.fullmatch(_COMPONENT, first)
    if (
        not text.isascii()
        or not _REFERENCE.fullmatch(text)
        or not path_ok
        or len(_name_of(text)) > MAX_NAME
    ):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise UsageError(
            f"{shown!r} is neither a flavor ({', '.join(f.value for f in Flavor)}) nor an image "
            "reference",
            "write it like kit/tensorflow:stock or registry:5000/team/tf:2.14: a lowercase "
            "name, then an optional :tag and @sha256:<64 hex digits>",
        )
    return text


def resolve_image(name: str) -> ImageRef:
    """A flavor name becomes kit's tag for it; anything else must be an image reference."""
    try:
        flavor = Flavor(name)
    except ValueError:
        return ImageRef(label=name, reference=check_reference(name))
    return ImageRef(label=name, reference=image_tag(flavor), flavor=flavor.value)


def near_flavor(name: str) -> str:
    """The start of a hint when ``name`` looks like a flavor mistyped (``intell``), else ""."""
    return did_you_mean(name, [f.value for f in Flavor])
