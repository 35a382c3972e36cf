"""Building and listing kit's images through the Docker SDK.

The build context is assembled in memory (Dockerfile, the flavor's pins, the workload and a CA
bundle), so the same build works from a source tree or an installed wheel, and behind a
TLS-inspecting proxy.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kit import __version__
from kit.errors import BuildError, UsageError
from kit.inputs import read_text_file
from kit.lazy import lazy_module
from kit.model.flavors import IMAGE_REPOSITORY, Flavor, docker_dir, image_tag, tf_package
from kit.model.spec import ImageRef
from kit.workload import WORKLOAD_VERSION

docker = lazy_module("docker")
requests = lazy_module("requests")

DEFAULT_BASE = "python:3.11-slim-bookworm"
LOCAL_BASE = "kit/debian:bookworm"
LOCAL_BASE_PACKAGES = ("ca-certificates", "python3", "python3-venv", "numactl")
CA_ENV_VARS = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE")
LABEL_FLAVOR = "kit.flavor"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

Say = Callable[[str], None]


@dataclass(frozen=True)
class ImageInfo:
    tags: tuple[str, ...]
    flavor: str
    tf_package: str
    size_bytes: int
    id: str
    created: str


def default_ca_bundle(environ: dict[str, str] | None = None) -> Path | None:
    """The host's CA bundle, from the standard variables, when one names an existing file."""
    env = os.environ if environ is None else environ
    for var in CA_ENV_VARS:
        value = env.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return None


def check_ca_bundle(path: Path | None) -> None:
    """A CA bundle pip can trust: a readable PEM file with at least one certificate (anything
    else fails the build much later with a misleading pip error)."""
    if path is None:
        return

    hint = "pass the PEM bundle your proxy's CA is in, e.g. /etc/ssl/certs/ca-certificates.crt"
    if "-----BEGIN CERTIFICATE-----" not in read_text_file(path, "--ca-bundle", hint):
        raise UsageError(f"--ca-bundle {path} holds no PEM certificate", hint)


# What an image is made of, in the repository: its Dockerfile and pins, the workload, and the
# build (its labels). A commit elsewhere (docs, the CLI) changes no image.
IMAGE_SOURCES = ("docker", "kit/workload", "kit/images")


def source_date(repo: Path | None = None) -> str:
    """When the image's sources were made, not when it was built, so that the same Dockerfile,
    pins and kit give the same image id: reproducible builds' SOURCE_DATE_EPOCH, else the time
    of the last commit that changed IMAGE_SOURCES, else kit's release (the clock would make
    every build a new image, and history would show each as an image change)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not epoch.isdigit():
        repo = repo or Path(__file__).resolve().parents[2]
        try:
            git = ["git", "-C", str(repo), "log", "-1", "--format=%ct", "--", *IMAGE_SOURCES]
            done = subprocess.run(git, capture_output=True, text=True, timeout=10, check=False)
            epoch = done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            epoch = ""
    if not epoch.isdigit():
        return f"kit {__version__}"
    return datetime.fromtimestamp(int(epoch), UTC).isoformat(timespec="seconds")


def image_labels(flavor: Flavor, base: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": f"kit TensorFlow ({flavor.value})",
        "org.opencontainers.image.description": (
            f"{tf_package(flavor)} with numactl and kit's synthetic-ImageNet workload"
        ),
        "org.opencontainers.image.version": __version__,
        "org.opencontainers.image.created": source_date(),
        "org.opencontainers.image.base.name": base,
        "org.opencontainers.image.licenses": "Apache-2.0",
        LABEL_FLAVOR: flavor.value,
        "kit.tf-package": tf_package(flavor),
        "kit.workload-version": WORKLOAD_VERSION,
        "kit.version": __version__,
    }


DOCKERFILE = "docker/Dockerfile"


def build_context(flavor: Flavor, ca_bundle: Path | None) -> bytes:
    """A gzipped tar laid out like the repository (as compose.yaml's context): the Dockerfile,
    the flavor's pins, the workload and, when given, the CA bundle."""
    source = docker_dir()
    workload = Path(__file__).resolve().parents[1] / "workload"
    files = {DOCKERFILE: source / "Dockerfile"}
    for suffix in ("txt", "lock"):
        name = f"{flavor.value}.{suffix}"
        files[f"docker/flavors/{name}"] = source / "flavors" / name
    for path in sorted(workload.glob("*.py")):
        files[f"kit/workload/{path.name}"] = path
    if ca_bundle is not None:
        files["docker/ca-bundle.crt"] = ca_bundle
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for arcname, path in files.items():
            data = path.read_bytes()
            # Only content matters: the same files from any checkout hit the layer cache.
            info = tarfile.TarInfo(arcname)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _has_image(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.NotFound:
        return False
    return True


def ensure_base(client: docker.DockerClient, base: str, say: Say) -> str:
    """The base to build on: ``base`` if present or pullable, else a local Debian base."""
    if _has_image(client, base):
        return base
    try:
        say(f"pulling base image {base}")
        client.images.pull(base)
        return base
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        reason = getattr(exc, "explanation", None) or str(exc)
        say(
            f"cannot pull {base} ({reason.splitlines()[0][:160]}); "
            f"using a local Debian base, {LOCAL_BASE}, instead"
        )
    if not _has_image(client, LOCAL_BASE):
        make_local_base(client, say)
    return LOCAL_BASE


def local_base_command(tool: str, target: str) -> list[str]:
    """The command that writes a bookworm root filesystem as a tar to ``target``."""
    include = ",".join(LOCAL_BASE_PACKAGES)
    if tool == "mmdebstrap":
        cmd = ["mmdebstrap", "--variant=minbase", f"--include={include}"]
        hooks = Path("/usr/share/mmdebstrap/hooks/merged-usr")
        if hooks.is_dir():
            cmd.append(f"--hook-dir={hooks}")
        return [*cmd, "bookworm", target]
    return ["debootstrap", "--variant=minbase", f"--include={include}", "bookworm", target]


def make_local_base(client: docker.DockerClient, say: Say) -> None:
    """mmdebstrap (or debootstrap) a minimal bookworm with python3 and numactl, then import it."""
    tool = shutil.which("mmdebstrap") or shutil.which("debootstrap")
    if tool is None:
        raise BuildError(
            f"no base image: {DEFAULT_BASE} cannot be pulled and neither mmdebstrap nor "
            "debootstrap is installed",
            "apt-get install mmdebstrap, or pass --base with an image this engine has",
        )
    name = Path(tool).name
    say(f"building {LOCAL_BASE} with {name} (about half a minute)")
    with tempfile.TemporaryDirectory(prefix="kit-base-") as tmp:
        if name == "mmdebstrap":
            tarball = Path(tmp) / "rootfs.tar"
            _run_tool(local_base_command(name, str(tarball)))
        else:
            rootfs = Path(tmp) / "rootfs"
            _run_tool(local_base_command(name, str(rootfs)))
            tarball = Path(tmp) / "rootfs.tar"
            _run_tool(["tar", "-C", str(rootfs), "-cf", str(tarball), "."])
        repository, tag = LOCAL_BASE.split(":")
        client.api.import_image_from_file(
            str(tarball),
            repository=repository,
            tag=tag,
            changes=["ENV LANG=C.UTF-8", 'CMD ["bash"]'],
        )
    say(f"imported {LOCAL_BASE}")


def _run_tool(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:])
        raise BuildError(
            f"{cmd[0]} failed (exit {proc.returncode}): {tail}",
            "check that this host reaches Debian's mirror, or pass --base",
        )


def build_image(
    client: docker.DockerClient,
    flavor: Flavor,
    base: str,
    ca_bundle: Path | None,
    say: Say,
    on_log: Say,
    network: str | None = None,
) -> str:
    """Build one flavor; return the image id. Tags ``kit/tensorflow:<flavor>`` and
    ``kit/tensorflow:<flavor>-<tf version>``. ``network`` is the network the build's steps
    use (``host`` where the engine's bridge reaches nothing outside)."""
    base = ensure_base(client, base, say)
    context = build_context(flavor, ca_bundle)
    tag = image_tag(flavor)
    say(f"building {tag} ({tf_package(flavor)}) on {base}")
    tail: list[str] = []
    image_id = None
    try:
        stream = client.api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            encoding="gzip",
            tag=tag,
            dockerfile=DOCKERFILE,
            buildargs={
                "BASE": base,
                "FLAVOR": flavor.value,
                "KIT_VERSION": __version__,
                "WORKLOAD_VERSION": WORKLOAD_VERSION,
            },
            labels=image_labels(flavor, base),
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
            network_mode=network,
        )
        for chunk in stream:
            if "error" in chunk:
                tail.append(ANSI.sub("", chunk["error"]).strip())
                raise BuildError(
                    f"building {tag} failed: {' | '.join(tail[-6:])}",
                    "read the build log above; behind a TLS proxy pass --ca-bundle; if the "
                    "engine's bridge reaches no index (pip then reports a conflict), pass "
                    "--network host",
                )
            for line in ANSI.sub("", chunk.get("stream", "")).splitlines():
                if line.strip():
                    tail = [*tail[-20:], line]
                    on_log(line)
            image_id = (chunk.get("aux") or {}).get("ID", image_id)
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        raise BuildError(f"building {tag} failed: {exc}") from None
    if image_id is None:
        raise BuildError(f"building {tag} produced no image: {' | '.join(tail[-6:])}")
    version = tf_package(flavor).split("==")[-1]
    client.api.tag(image_id, IMAGE_REPOSITORY, f"{flavor.value}-{version}")
    return image_id


def missing_flavors(client: docker.DockerClient, refs: Sequence[ImageRef]) -> list[Flavor]:
    """Flavors among ``refs`` whose image this engine lacks (other references cannot be built)."""
    wanted = dict.fromkeys(Flavor(r.flavor) for r in refs if r.flavor)
    return [f for f in wanted if not _has_image(client, image_tag(f))]


def list_images(client: docker.DockerClient) -> list[ImageInfo]:
    infos = []
    for image in client.images.list(filters={"label": LABEL_FLAVOR}):
        labels = image.labels or {}
        infos.append(
            ImageInfo(
                tags=tuple(image.tags),
                flavor=labels.get(LABEL_FLAVOR, "?"),
                tf_package=labels.get("kit.tf-package", "?"),
                size_bytes=int(image.attrs.get("Size", 0)),
                id=image.short_id.removeprefix("sha256:"),
                created=str(image.attrs.get("Created", ""))[:19].replace("T", " "),
            )
        )
    return sorted(infos, key=lambda i: (i.flavor, i.created))
