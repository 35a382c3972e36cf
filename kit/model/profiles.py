"""Profiles: named sets of environment, thread flags and a numactl policy, loaded from TOML.

A Profile is what the file says; ``resolve`` turns it into a ResolvedProfile for the CPUs a
run gets, expanding placeholders such as ``{cores}``.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import tomli_w

from kit.errors import ConfigError, UsageError, did_you_mean
from kit.inputs import read_text_file
from kit.model.numa import MEMORY_POLICIES, NumaPolicy
from kit.workload.models import PRECISION_POLICIES
from kit.workload.preload import ALLOCATORS
from kit.workload.steady import AUTO

PLACEHOLDERS = ("cores", "threads", "nodes", "last_node")
PROFILE_KEYS = {"description", "extends", "env", "threads", "numactl", "select", "run"}
RUN_KEYS = {"instances", "batch_size", "precision", "allocator", "warmup"}
# Run settings that are words, and the words each takes (kit.model.spec's Precision and Allocator).
RUN_WORDS = {"precision": tuple(PRECISION_POLICIES), "allocator": ALLOCATORS}
THREAD_KEYS = {"inter_op", "intra_op"}
SELECT_KEYS = {"cpus", "nodes", "cores", "one_thread_per_core", "quota"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Placement:
    """What a run's CPUs give the placeholders."""

    cores: int
    threads: int
    nodes: int
    last_node: int

    def values(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in PLACEHOLDERS}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    inter_op: str | None = None
    intra_op: str | None = None
    numactl: Mapping[str, str | bool] = field(default_factory=dict)
    select: Mapping[str, str | int | bool] = field(default_factory=dict)
    # Run settings a profile may fix for its cells, over the command line's: a saved tune.
    instances: int | str | None = None
    batch_size: int | None = None
    precision: str | None = None
    allocator: str | None = None
    warmup: int | str | None = None  # warmup batches, or "auto": until the step time settles
    knobs: tuple[tuple[str, str], ...] = ()  # a sweep's cell: the knob values that made it
    source: str = "built-in"
    given: frozenset[str] = frozenset()  # numactl settings the command line gave it

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "numactl", MappingProxyType(dict(self.numactl)))
        object.__setattr__(self, "select", MappingProxyType(dict(self.select)))

    @property
    def where(self) -> str:
        return f"profile {self.name!r} ({self.source})"

    def with_numactl(self, overrides: Mapping[str, str | bool]) -> Profile:
        """This profile with numactl settings from the command line on top: a memory policy
        given there replaces the profile's; CPU binding settings replace one by one."""
        if not overrides:
            return self
        numactl = dict(self.numactl)
        if any(k in MEMORY_POLICIES for k in overrides):
            for key in MEMORY_POLICIES:
                numactl.pop(key, None)
        numactl.update(overrides)
        return replace(self, numactl=numactl, given=self.given | frozenset(overrides))

    def resolve_select(self, placement: Placement) -> dict[str, str | int | bool]:
        values = placement.values()
        return {
            k: _expand(v, values, self.where) if isinstance(v, str) else v
            for k, v in self.select.items()
        }

    def resolve_numa(self, placement: Placement) -> NumaPolicy:
        values = placement.values()
        return NumaPolicy(
            **{
                k: _expand(v, values, self.where) if isinstance(v, str) else v
                for k, v in self.numactl.items()
            }
        )

    def resolve(self, placement: Placement, numa: NumaPolicy | None = None) -> ResolvedProfile:
        """Env and threads from the placement the workload gets; numactl from ``numa`` when
        already resolved (against the run's cpuset), else from the same placement."""
        values = placement.values()
        return ResolvedProfile(
            name=self.name,
            env={k: _expand(v, values, self.where) for k, v in self.env.items()},
            inter_op=_expand_int(self.inter_op, values, self.where),
            intra_op=_expand_int(self.intra_op, values, self.where),
            numa=numa if numa is not None else self.resolve_numa(placement),
            knobs=self.knobs,
        )


@dataclass(frozen=True)
class ResolvedProfile:
    """A profile made concrete for one run's CPUs."""

    name: str
    env: Mapping[str, str]
    inter_op: int | None
    intra_op: int | None
    numa: NumaPolicy
    knobs: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))


def _expand(template: str, values: dict[str, int], where: str) -> str:
    try:
        for _, name, _, _ in string.Formatter().parse(template):  # parsing raises on a lone {
            if name is not None and name not in values:
                raise UsageError(
                    f"{where}: unknown placeholder {{{name}}}",
                    f"use one of {', '.join('{' + p + '}' for p in PLACEHOLDERS)}",
                )
        return template.format_map(values)
    except (ValueError, IndexError, KeyError, AttributeError) as exc:
        raise UsageError(
            f"{where}: bad placeholder in {template!r}: {exc}", "write placeholders as {cores}"
        ) from None


def _expand_int(template: str | None, values: dict[str, int], where: str) -> int | None:
    if template is None:
        return None
    text = _expand(template, values, where)
    if not text.isdigit() or int(text) <= 0:
        raise UsageError(f"{where}: thread count {template!r} is not a positive integer")
    return int(text)


# --- loading -----------------------------------------------------------------------------------


def builtin_text() -> str:
    return resources.files("kit.model").joinpath("profiles.toml").read_text(encoding="utf-8")


def read_toml(text: str, source: str) -> dict:
    """TOML text as tables; ConfigError with ``source:line`` when it is not valid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        number = line.group(1) if line else max(1, len(text.splitlines()))  # "at end of document"
        at = f"{source}:{number}"
        raise ConfigError(f"{at}: not valid TOML: {exc}", "fix the file's syntax") from None


def parse_profiles(
    text: str, source: str, known: Mapping[str, Profile] | None = None
) -> dict[str, Profile]:
    """Profiles from TOML text; ConfigError with ``source:line`` on anything wrong.

    ``extends`` may name a profile of the same text or one of ``known`` (the built-ins).
    """
    data = read_toml(text, source)
    raw = {}
    for name, table in data.items():
        where = f"{source}: profile {name!r}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} is not a table", f"write it as [{name}]")
        unknown = set(table) - PROFILE_KEYS
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {', '.join(sorted(unknown))}",
                f"allowed keys: {', '.join(sorted(PROFILE_KEYS))}",
            )
        if name in (known or {}):
            line = line_of(text, name)
            raise ConfigError(
                f"{source}:{line}: profile {name!r} has the name of a built-in profile, which "
                "it would replace unseen",
                f"give it another name; to start from the built-in one, write extends = {name!r}",
            )
        raw[name] = table
    known = known or {}
    return {name: _build(name, raw, known, source, ()) for name in raw}


def line_of(text: str, name: str) -> int:
    """The line of a profile's table header, for error messages."""
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*\[\s*[\"']?{re.escape(name)}[\"']?\s*\]", line):
            return number
    return 1


def _build(
    name: str, raw: dict, known: Mapping[str, Profile], source: str, chain: tuple[str, ...]
) -> Profile:
    where = f"{source}: profile {name!r}"
    if name in chain:
        raise ConfigError(f"{where}: extends itself ({' -> '.join((*chain, name))})")
    table = raw[name]
    parent = table.get("extends")
    if parent is None:
        base = Profile(name=name)
    elif parent in raw:
        base = _build(parent, raw, known, source, (*chain, name))
    elif parent in known:
        base = known[parent]
    else:
        raise ConfigError(
            f"{where}: extends unknown profile {parent!r}",
            f"known: {', '.join(sorted({*raw, *known}))}",
        )
    env = dict(base.env)
    env.update(_env_table(table.get("env", {}), where))
    threads = _threads_table(table.get("threads", {}), where)
    numactl = dict(base.numactl)
    numactl.update(_numactl_table(table.get("numactl", {}), where))
    select = dict(base.select)
    select.update(_select_table(table.get("select", {}), where))
    run = _run_table(table.get("run", {}), where)
    return replace(
        base,
        name=name,
        description=str(table.get("description", base.description)),
        env=env,
        inter_op=threads.get("inter_op", base.inter_op),
        intra_op=threads.get("intra_op", base.intra_op),
        numactl=numactl,
        select=select,
        instances=run.get("instances", base.instances),
        batch_size=run.get("batch_size", base.batch_size),
        precision=run.get("precision", base.precision),
        allocator=run.get("allocator", base.allocator),
        warmup=run.get("warmup", base.warmup),
        source=source,
    )


def _run_table(table: object, where: str) -> dict[str, int | str]:
    if not isinstance(table, dict) or set(table) - RUN_KEYS:
        unknown = ", ".join(sorted(set(table) - RUN_KEYS)) if isinstance(table, dict) else table
        raise ConfigError(
            f"{where}: unknown run setting {unknown}", f"allowed: {', '.join(sorted(RUN_KEYS))}"
        )
    out: dict[str, int | str] = {}
    for key, value in table.items():
        if key in RUN_WORDS:
            if value not in RUN_WORDS[key]:
                raise ConfigError(f"{where}: run {key} must be {' or '.join(RUN_WORDS[key])}")
            out[key] = value
            continue
        if key == "warmup":
            if value != AUTO and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ConfigError(f"{where}: run warmup must be auto or a whole number of batches")
            out[key] = value
            continue
        per_node = key == "instances" and value == "per-node"
        if not per_node and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{where}: run {key} must be a positive whole number")
        out[key] = value
    return out


def _env_table(env: object, where: str) -> dict[str, str]:
    if not isinstance(env, dict):
        raise ConfigError(f'{where}: env must be a table of NAME = "value"')
    out = {}
    for key, value in env.items():
        validate_env(key, value, where)
        out[key] = str(value)
    return out


MAX_ENV_BYTES = 131_072 - 1  # the kernel's MAX_ARG_STRLEN, for NAME=VALUE and its NUL


def validate_env(key: str, value: object, where: str) -> None:
    if not _ENV_NAME.match(key):
        raise UsageError(
            f"{where}: {key!r} is not a valid environment variable name",
            "use letters, digits and _, not starting with a digit",
        )
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise UsageError(f"{where}: env {key} must be a string or number")
    if any(ch in str(value) for ch in "\0\n\r"):
        raise UsageError(f"{where}: env {key} holds a NUL or line break", "use a single-line value")
    if len(f"{key}={value}".encode()) > MAX_ENV_BYTES:
        raise UsageError(
            f"{where}: env {key} is {len(str(value).encode())} bytes; the kernel takes at most "
            f"{MAX_ENV_BYTES} for one variable",
            "give a short value (a path to a file, not the file)",
        )


def _threads_table(threads: object, where: str) -> dict[str, str]:
    if not isinstance(threads, dict) or set(threads) - THREAD_KEYS:
        raise ConfigError(f"{where}: threads takes only inter_op and intra_op")
    return {k: str(v) for k, v in threads.items()}


def _numactl_table(table: object, where: str) -> dict[str, str | bool]:
    allowed = set(NumaPolicy.__dataclass_fields__)
    if not isinstance(table, dict) or set(table) - allowed:
        unknown = ", ".join(sorted(set(table) - allowed)) if isinstance(table, dict) else table
        raise ConfigError(
            f"{where}: unknown numactl setting {unknown}", f"allowed: {', '.join(sorted(allowed))}"
        )
    out: dict[str, str | bool] = {}
    for key, value in table.items():
        if key == "localalloc":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: numactl localalloc must be true or false")
            out[key] = value
        else:
            out[key] = str(value)
    return out


def _select_table(table: object, where: str) -> dict[str, str | int | bool]:
    if not isinstance(table, dict) or set(table) - SELECT_KEYS:
        unknown = ", ".join(sorted(set(table) - SELECT_KEYS)) if isinstance(table, dict) else table
        raise ConfigError(
            f"{where}: unknown select setting {unknown}",
            f"allowed: {', '.join(sorted(SELECT_KEYS))}",
        )
    out: dict[str, str | int | bool] = {}
    for key, value in table.items():
        if key in ("one_thread_per_core", "quota"):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: select {key} must be true or false")
            out[key] = value
        elif key == "cores":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ConfigError(f"{where}: select cores must be a number")
            out[key] = value
        else:
            out[key] = str(value)
    return out


def load_profiles(extra: Path | None = None) -> dict[str, Profile]:
    """Built-in profiles, overlaid by the user's file when given."""
    profiles = parse_profiles(builtin_text(), "built-in")
    if extra is not None:
        text = read_text_file(extra, "--profiles", "pass a TOML file of profiles to --profiles")
        profiles.update(parse_profiles(text, str(extra), known=profiles))
    return profiles


def pick(profiles: Mapping[str, Profile], names: list[str]) -> list[Profile]:
    unknown = [n for n in names if n not in profiles]
    if unknown:
        raise UsageError(
            f"unknown profile {', '.join(unknown)}",
            f"{did_you_mean(unknown[0], profiles)}choose from {', '.join(sorted(profiles))} "
            "or add it with --profiles FILE",
        )
    return [profiles[n] for n in names]


def to_toml(profile: Profile, name: str, description: str) -> str:
    """A profile as the TOML ``--profiles`` reads back, every setting written out (no extends)."""
    table: dict[str, object] = {"description": description}
    if profile.env:
        table["env"] = dict(profile.env)
    threads = {k: v for k in THREAD_KEYS if (v := getattr(profile, k)) is not None}
    if threads:
        table["threads"] = dict(sorted(threads.items()))
    for key in ("numactl", "select"):
        if getattr(profile, key):
            table[key] = dict(getattr(profile, key))
    run = {k: v for k in sorted(RUN_KEYS) if (v := getattr(profile, k)) is not None}
    if run:
        table["run"] = run
    return tomli_w.dumps({name: table})
