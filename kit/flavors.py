"""Flavors: the TensorFlow builds kit ships images for, each a pinned package set in
``docker/flavors/<flavor>.txt``, and how a name on the command line becomes an image."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from kit.spec import ImageRef

IMAGE_REPOSITORY = "kit/tensorflow"


class Flavor(StrEnum):
    stock = "stock"
    intel = "intel"
    latest = "latest"


def docker_dir() -> Path:
    """The Dockerfile's folder: the source tree's ``docker/`` or the copy shipped in the wheel."""
    here = Path(__file__).resolve().parent
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


def resolve_image(name: str) -> ImageRef:
    """A flavor name becomes kit's tag for it; anything else is taken as an image reference."""
    try:
        flavor = Flavor(name)
    except ValueError:
        return ImageRef(label=name, reference=name)
    return ImageRef(label=name, reference=image_tag(flavor), flavor=flavor.value)
