"""What a campaign asks for, as one typed request: what to run (images x profiles, the workload,
the CPUs, repeats), where (engines, hosts, a cluster) and how (results, resume, verify, baseline,
gate). Frozen and self-validating: a bad request is refused before anything is asked of an
engine."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kit.campaign.schedules.adaptive import Adaptive
from kit.campaign.schedules.tuning import Tuning
from kit.engines.endpoints import Endpoint
from kit.engines.kinds import EngineKind
from kit.engines.slurm.options import SlurmOptions
from kit.errors import UsageError
from kit.judging.gate import Gate
from kit.model.flavors import TRAINS, Flavor, resolve_image
from kit.model.numa import NumaPolicy
from kit.model.profiles import Profile
from kit.model.spec import ImageRef, Limits
from kit.model.workload import Mode, Workload, WorkloadSpec
from kit.planning.placement import CpuSelection
from kit.planning.sweep import Sweep
from kit.store.folder import DB_NAME

MAX_REPEATS = 1000
MAX_TIMEOUT_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class What:
    """What to run: images x profiles, the workload, where on the CPUs, how often."""

    images: tuple[str, ...]
    profiles: tuple[str, ...] = ("default",)
    profiles_file: Path | None = None
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    selection: CpuSelection = field(default_factory=CpuSelection)
    numactl: NumaPolicy = field(default_factory=NumaPolicy)  # on top of every profile
    instances: int | str = 1
    limits: Limits = field(default_factory=Limits)
    repeats: int = 1
    timeout_s: float = 3600.0
    sweep: Sweep | None = None  # cells from knob values on the one profile (the base)
    adaptive: Adaptive | None = None  # --repeats auto: up to its max_repeats, round by round
    # A replay's: only these (image, profile) cells, of profiles given whole (its recipe's).
    pairs: frozenset[tuple[str, str]] | None = None
    profile_set: tuple[Profile, ...] = ()
    allow_emulated: bool = False  # bf16 on a CPU without avx512_bf16 or amx_bf16
    keep_equivalent: bool = False  # run cells that cannot differ on the host apart anyway
    keep_disturbed: bool = False  # count runs other work disturbed, as ok
    wait_quiet: float | None = None  # seconds to wait for a quiet host before the first run

    def __post_init__(self) -> None:
        if self.sweep is not None and len(self.profiles) != 1:
            raise UsageError(
                f"a sweep starts from one base profile, not {len(self.profiles)}",
                "give one -p BASE (the knobs are set on top of it)",
            )
        if not self.images:
            raise UsageError("no image to run", "name at least one flavor or image reference")
        if not self.profiles:
            raise UsageError("no profile to run", "pass --profile NAME (see `kit profiles list`)")
        for what, names in (("image", self.images), ("profile", self.profiles)):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise UsageError(
                    f"{what} {', '.join(twice)} named twice: one cell would be measured "
                    "against itself",
                    f"name each {what} once (use --repeats for more runs of a cell)",
                )
        if self.adaptive is not None and self.repeats != self.adaptive.max_repeats:
            raise UsageError("adaptive repeats plan their maximum", "leave --repeats auto alone")
        if not 1 <= self.repeats <= MAX_REPEATS:
            raise UsageError(f"--repeats must be between 1 and {MAX_REPEATS}, got {self.repeats}")
        if not (math.isfinite(self.timeout_s) and 0 < self.timeout_s <= MAX_TIMEOUT_S):
            raise UsageError(
                f"--timeout must be a number of seconds in (0, {MAX_TIMEOUT_S:g}], "
                f"got {self.timeout_s}",
                "give the seconds a run may take, e.g. --timeout 3600",
            )
        if self.workload.workload is Workload.peak:
            raise UsageError("--workload peak measures no training", "use `kit peak IMAGE`")
        check_trains(self.images, self.workload)

    @property
    def image_refs(self) -> list[ImageRef]:
        return [resolve_image(name) for name in self.images]  # refuses a malformed reference

    def numactl_overrides(self) -> dict[str, str | bool]:
        n = self.numactl
        names = ("interleave", "membind", "preferred", "cpunodebind", "physcpubind")
        given: dict[str, str | bool] = {k: getattr(n, k) for k in names if getattr(n, k)}
        if n.localalloc:
            given["localalloc"] = True
        return given


@dataclass(frozen=True)
class Where:
    """Which engines: kinds on this machine, or Docker hosts; how missing images arrive."""

    kinds: tuple[EngineKind, ...] = (EngineKind.auto,)
    hosts: tuple[Endpoint, ...] = ()
    pull: bool = False
    registry: str | None = None
    build_missing: bool = False
    slurm: SlurmOptions | None = None  # --engine slurm: where its jobs go
    # --spread: the cells' repeats dealt over machines that are alike, not the whole plan on each
    spread: bool = False

    def __post_init__(self) -> None:
        if (self.slurm is not None) != (EngineKind.slurm in self.kinds):
            raise UsageError(
                "the Slurm options go with --engine slurm",
                "pass --engine slurm, or leave --partition, --nodelist, ... out",
            )

    @property
    def remote(self) -> bool:
        """Engines on other machines, whose topology is read once they answer."""
        return bool(self.hosts) or self.slurm is not None

    def cluster(self, results: Path) -> tuple[SlurmOptions, Path] | None:
        return (self.slurm, results.resolve()) if self.slurm is not None else None


@dataclass(frozen=True)
class How:
    """How the session goes: its results, resume, verify, baseline and gate, the lock."""

    results: Path = Path("results")
    db: Path | None = None
    resume: str | None = None
    measure: bool = True  # False: verify only
    verify: bool = False
    baseline: str | None = None  # IMAGE:PROFILE[@HOST]
    gate: Gate | None = None
    allow_concurrent: bool = False
    argv: tuple[str, ...] = ()  # the command line, kept in the session's record
    tuning: Tuning | None = None  # kit tune: which runs of the plan to spend the budget on
    meta: Mapping[str, object] = field(default_factory=dict)  # kept in session.json (a replay's)

    @property
    def db_path(self) -> Path:
        return self.db or self.results / DB_NAME


@dataclass(frozen=True)
class CampaignRequest:
    what: What
    where: Where = field(default_factory=Where)
    how: How = field(default_factory=How)


def check_trains(images: Sequence[str], workload: WorkloadSpec) -> None:
    """Training only on flavors that train: zentf's ZenDNN ops are inference kernels."""
    inference = [i for i in images if i in set(Flavor) and Flavor(i) not in TRAINS]
    if inference and workload.mode is Mode.train and workload.workload is not Workload.bandwidth:
        raise UsageError(
            f"{inference[0]} is an inference build (AMD's ZenDNN ops run the forward pass only): "
            "training on it would measure stock TensorFlow's own kernels",
            "add --mode infer, or --preset latency or throughput",
        )
