"""The kinds of engine a command can ask for, as the CLI offers them (a small module, so that
`kit --help` lists them without loading the engines)."""

from enum import StrEnum


class EngineKind(StrEnum):
    auto = "auto"
    docker = "docker"
    local = "local"
    podman = "podman"  # podman's Docker-compatible API, rootful or rootless (kit.engines.podman)
    slurm = "slurm"  # the nodes a Slurm cluster allocates, each an engine (kit.engines.slurm)


class ContainerEngine(StrEnum):
    """The engines that run kit's images (``kit doctor``, ``kit images``)."""

    docker = "docker"
    podman = "podman"
