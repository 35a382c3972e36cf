"""Knobs: the named settings a sweep or a tune varies, as data. Pure.

A knob says how a value is applied to a profile (an environment variable, a TF thread pool, a
numactl policy, the CPU selection, the run's instances, batch size, precision or allocator, or
the image) and when it
can have an effect at all, so cells that cannot differ are merged instead of run twice. The
built-in knobs live here; users add environment knobs in TOML (``kit sweep --knobs FILE``):

    [malloc]
    env = "MALLOC_ARENA_MAX"
    acts = "always"            # or "openmp": only on a build whose oneDNN runs on OpenMP,
                               # "onednn", "zendnn" (kit.model.acts)
    description = "glibc malloc arenas"
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from kit.errors import ConfigError, UsageError, did_you_mean
from kit.inputs import read_text_file
from kit.model.profiles import PLACEHOLDERS, RUN_WORDS, Profile, line_of, read_toml, validate_env
from kit.workload.steady import AUTO


class KnobKind(StrEnum):
    env = "env"  # an environment variable
    threads = "threads"  # TF's inter-op or intra-op pool
    numa = "numa"  # a numactl memory policy
    select = "select"  # which CPUs: whole cores, one thread per core
    instances = "instances"
    run = "run"  # a run setting of the workload: batch size, precision, allocator
    image = "image"


class Acts(StrEnum):
    """When a knob can change anything."""

    always = "always"
    # What the build must have (kit.model.acts.Needs, the same words):
    openmp = "openmp"  # only where oneDNN runs on OpenMP (intel); TF's threadpool ignores it
    threadpool = "threadpool"  # only where oneDNN runs on TF's threadpool (stock, latest)
    onednn = "onednn"  # only where oneDNN runs at all
    zendnn = "zendnn"  # only on zentf (AMD's ZenDNN plugin)
    numa = "numa"  # only on a host with more than one NUMA node
    smt = "smt"  # only on a host with more than one thread per core


@dataclass(frozen=True)
class Knob:
    name: str
    kind: KnobKind
    target: str = ""  # the variable, pool or select key it sets
    acts: Acts = Acts.always
    description: str = ""
    # Words a value may be given as, and what each means (affinity compact -> KMP's literal).
    aliases: Mapping[str, str] = field(default_factory=dict)
    source: str = "built-in"

    def __post_init__(self) -> None:
        object.__setattr__(self, "aliases", MappingProxyType(dict(self.aliases)))

    def literal(self, value: str) -> str:
        return self.aliases.get(value, value)


NUMA_POLICIES: Mapping[str, Mapping[str, str | bool]] = MappingProxyType(
    {
        "none": {},
        "interleave": {"interleave": "all"},
        "membind": {"membind": "{last_node}"},
        "preferred": {"preferred": "{last_node}"},
        "localalloc": {"localalloc": True},
        "local": {"cpunodebind": "0", "membind": "0"},  # node 0's CPUs and memory
    }
)
_OMP = {"compact": "granularity=fine,compact,1,0", "scatter": "granularity=fine,scatter"}

BUILTIN: Mapping[str, Knob] = MappingProxyType(
    {
        k.name: k
        for k in (
            Knob("inter", KnobKind.threads, "inter_op", description="TF inter-op pool size"),
            Knob("intra", KnobKind.threads, "intra_op", description="TF intra-op pool size"),
            Knob("omp", KnobKind.env, "OMP_NUM_THREADS", Acts.openmp, "OpenMP threads"),
            Knob("blocktime", KnobKind.env, "KMP_BLOCKTIME", Acts.openmp, "OpenMP spin (ms)"),
            Knob(
                "affinity",
                KnobKind.env,
                "KMP_AFFINITY",
                Acts.openmp,
                "OpenMP thread binding: compact, scatter, none or a literal",
                aliases={**_OMP, "none": "disabled"},
            ),
            Knob(
                "onednn",
                KnobKind.env,
                "TF_ENABLE_ONEDNN_OPTS",
                Acts.threadpool,
                "oneDNN on (1) / off (0); intel-tensorflow ignores it",
            ),
            Knob(
                "fpmath",
                KnobKind.env,
                "ONEDNN_DEFAULT_FPMATH_MODE",
                Acts.onednn,
                "oneDNN's math for fp32: strict, or bf16 (faster on AMX/AVX512_BF16, less "
                "accurate), f16, tf32, any",
                aliases={m.lower(): m for m in ("STRICT", "BF16", "F16", "TF32", "ANY")},
            ),
            Knob(
                "numa",
                KnobKind.numa,
                acts=Acts.numa,
                description=f"memory policy: {', '.join(NUMA_POLICIES)}",
            ),
            Knob("cores", KnobKind.select, "cores", description="how many whole cores"),
            Knob(
                "smt",
                KnobKind.select,
                "one_thread_per_core",
                Acts.smt,
                "one thread per core (one) or every thread (all)",
            ),
            Knob("instances", KnobKind.instances, description="instances, each on its own cores"),
            Knob("batch", KnobKind.run, "batch_size", description="batch size"),
            Knob(
                "precision",
                KnobKind.run,
                "precision",
                description="fp32, or bf16 (Keras mixed_bfloat16; needs avx512_bf16 or amx_bf16)",
            ),
            Knob(
                "allocator",
                KnobKind.run,
                "allocator",
                description="system (glibc), jemalloc or tcmalloc, preloaded in the container",
            ),
            Knob(
                "warmup",
                KnobKind.run,
                "warmup",
                description="warmup batches, or auto: until the step time settles",
            ),
            Knob("image", KnobKind.image, description="flavor or image reference"),
        )
    }
)


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnobValues:
    """One ``--knob NAME=V1,V2`` as given: values may hold placeholders and ``A..B`` ranges."""

    knob: Knob
    raw: tuple[str, ...]

    def resolve(self, placeholders: Mapping[str, int]) -> tuple[str, ...]:
        """The values with placeholders filled and ranges expanded, duplicates dropped."""
        out: list[str] = []
        for text in self.raw:
            out += _expand_value(self.knob, text, placeholders)
        for value in out:
            check_value(self.knob, value)
        return tuple(dict.fromkeys(out))


def parse_knob(text: str, knobs: Mapping[str, Knob]) -> KnobValues:
    """``intra=1,2,{cores}`` (a value holding commas goes in double quotes)."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"--knob {text!r} is not NAME=VALUES", "e.g. --knob intra=1,2,{cores}")
    if name not in knobs:
        raise UsageError(
            f"unknown knob {name!r}",
            f"{did_you_mean(name, knobs)}choose from {', '.join(sorted(knobs))}, or add one "
            "with --knobs FILE",
        )
    try:
        raw = next(csv.reader([values], skipinitialspace=True), [])
    except csv.Error as exc:
        raise UsageError(f"--knob {text!r}: {exc}", 'quote a value holding commas: "a,b"') from None
    raw = [v.strip() for v in raw]
    if not raw or any(not v for v in raw):
        raise UsageError(f"--knob {text!r} has an empty value", f"e.g. --knob {name}=1,2")
    return KnobValues(knobs[name], tuple(raw))


_RANGE = re.compile(r"(\d+)\.\.(\d+)\Z")


def _expand_value(knob: Knob, text: str, placeholders: Mapping[str, int]) -> list[str]:
    where = f"--knob {knob.name}"
    try:
        filled = text.format_map(dict(placeholders)) if "{" in text else text
    except (KeyError, ValueError, IndexError, AttributeError):
        raise UsageError(
            f"{where}: bad placeholder in {text!r}",
            f"use one of {', '.join('{' + p + '}' for p in PLACEHOLDERS)}",
        ) from None
    match = _RANGE.match(filled)
    if match is None:
        return [filled]
    low, high = int(match.group(1)), int(match.group(2))
    if low > high or low < 1:
        raise UsageError(f"{where}: range {text!r} runs from {low} to {high}", "write LOW..HIGH")
    return [str(v) for v in range(low, high + 1)]


_NUMBERS = {KnobKind.threads, KnobKind.instances}


def check_value(knob: Knob, value: str) -> None:
    """A value the knob can take; placement checks (cores beyond the host) come with the plan."""
    where = f"--knob {knob.name}"
    numeric = knob.kind in _NUMBERS or knob.target in ("cores", "batch_size")
    per_node = knob.kind is KnobKind.instances and value == "per-node"
    if numeric and not per_node and not (value.isdigit() and int(value) > 0):
        raise UsageError(f"{where}: {value!r} is not a positive whole number")
    if knob.kind is KnobKind.numa and value not in NUMA_POLICIES:
        raise UsageError(f"{where}: unknown policy {value!r}", f"use {', '.join(NUMA_POLICIES)}")
    if knob.target == "warmup" and not (value == AUTO or value.isdigit()):
        raise UsageError(f"{where}: {value!r} is neither auto nor a whole number of batches")
    if knob.target in RUN_WORDS and value not in RUN_WORDS[knob.target]:
        raise UsageError(f"{where}: {value!r} is not one of {', '.join(RUN_WORDS[knob.target])}")
    if knob.name == "smt" and value not in ("one", "all"):
        raise UsageError(f"{where}: {value!r} is neither one nor all")
    if knob.kind is KnobKind.env:
        validate_env(knob.target, knob.literal(value), where)


def apply(profile: Profile, knob: Knob, value: str) -> Profile:
    """The profile with this knob set to ``value`` (image knobs are not the profile's)."""
    literal = knob.literal(value)
    match knob.kind:
        case KnobKind.env:
            return replace(profile, env={**profile.env, knob.target: literal})
        case KnobKind.threads:
            return replace(profile, **{knob.target: literal})
        case KnobKind.numa:
            return replace(profile, numactl=_numactl_with(profile, value))
        case KnobKind.select:
            setting: int | bool = int(literal) if knob.target == "cores" else literal == "one"
            return replace(profile, select={**profile.select, knob.target: setting})
        case KnobKind.instances:
            return replace(profile, instances=literal if literal == "per-node" else int(literal))
        case KnobKind.run:
            numeric = knob.target == "batch_size" or literal.isdigit()
            return replace(profile, **{knob.target: int(literal) if numeric else literal})
    return profile


def _numactl_with(profile: Profile, policy: str) -> dict[str, str | bool]:
    """The profile's numactl with its memory policy (and node binding) replaced by ``policy``."""
    kept = {
        k: v
        for k, v in profile.numactl.items()
        if k not in ("interleave", "membind", "preferred", "localalloc", "cpunodebind")
    }
    return {**kept, **NUMA_POLICIES[policy]}


# --- user knobs --------------------------------------------------------------------------------

_USER_KEYS = {"env", "acts", "description", "aliases"}


def parse_knobs(text: str, source: str) -> dict[str, Knob]:
    """Environment knobs from TOML; ConfigError with ``source:line`` on anything wrong."""
    out = {}
    for name, table in read_toml(text, source).items():
        at = f"{source}:{line_of(text, name)}: knob {name!r}"
        out[name] = _user_knob(name, table, at, source)
    return out


def _user_knob(name: str, table: object, at: str, source: str) -> Knob:
    if name in BUILTIN:
        raise ConfigError(f"{at} has the name of a built-in knob", "give it another name")
    if not isinstance(table, dict):
        raise ConfigError(f"{at} is not a table", f'write it as [{name}] with env = "VAR"')
    unknown = set(table) - _USER_KEYS
    if unknown:
        raise ConfigError(
            f"{at}: unknown key {', '.join(sorted(unknown))}",
            f"allowed: {', '.join(sorted(_USER_KEYS))}",
        )
    target = table.get("env")
    if not isinstance(target, str):
        raise ConfigError(f'{at}: needs env = "VARIABLE"', "user knobs set a variable")
    validate_env(target, "", at)
    acts = table.get("acts", "always")
    if acts not in (Acts.always.value, Acts.openmp.value):
        raise ConfigError(f"{at}: acts must be always or openmp, not {acts!r}")
    aliases = table.get("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise ConfigError(f'{at}: aliases must be a table of word = "value"')
    return Knob(
        name, KnobKind.env, target, Acts(acts), str(table.get("description", "")), aliases,
        source,
    )  # fmt: skip


def registry(extra: Mapping[str, Knob] | None = None) -> dict[str, Knob]:
    return {**BUILTIN, **(extra or {})}


def describe(values: Sequence[tuple[str, str]]) -> str:
    """A cell's knob settings as one name: ``intra=2 blocktime=0``."""
    return " ".join(f"{name}={value}" for name, value in values)


def load_knobs(extra: Path | None = None) -> dict[str, Knob]:
    """The built-in knobs, and the user's from a TOML file when given."""
    if extra is None:
        return registry()

    text = read_text_file(extra, "--knobs", "pass a TOML file of knobs to --knobs")
    return registry(parse_knobs(text, str(extra)))
