"""A session's recipe: what it asked for, kept in its ``session.json`` so that another host can
place the same cells on its own topology (``kit replay``).

The plan a session ran is placed for one machine (its cpusets, thread counts); the recipe is
what the plan came from: the images, every cell's unresolved profile (a sweep's cells with
their knobs applied), the workload, the CPU selection and numactl on top, instances, limits,
repeats. Pure: JSON in, ``What`` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields

from kit.campaign.request import What
from kit.errors import UsageError
from kit.model.numa import NumaPolicy
from kit.model.profiles import Profile
from kit.model.spec import Limits
from kit.model.workload import WorkloadSpec, model_digest, workload_from_json, workload_json
from kit.planning.placement import CpuSelection

RECIPE_VERSION = 1


def profile_json(profile: Profile) -> dict:
    data = {f.name: getattr(profile, f.name) for f in fields(Profile)}
    data["knobs"] = [list(pair) for pair in profile.knobs]
    data["given"] = sorted(profile.given)
    for key in ("env", "numactl", "select"):
        data[key] = dict(getattr(profile, key))
    return data


def profile_from_json(data: Mapping) -> Profile:
    known = {f.name for f in fields(Profile)}
    values = {k: v for k, v in data.items() if k in known}
    values["knobs"] = tuple((str(k), str(v)) for k, v in values.get("knobs") or ())
    values["given"] = frozenset(values.get("given") or ())
    return Profile(**values)


def recipe_json(
    what, images: Sequence[str], profiles: Sequence[Profile], pairs: frozenset | None
) -> dict:
    """The recipe of a campaign whose cells are ``images`` x ``profiles`` (only ``pairs`` of
    them when given, as a sweep's)."""
    selection = asdict(what.selection)
    return {
        "recipe": RECIPE_VERSION,
        "images": list(images),
        "profiles": [profile_json(p) for p in profiles],
        "cells": sorted([list(p) for p in pairs]) if pairs is not None else None,
        "workload": workload_json(what.workload),
        "selection": {k: list(v) if isinstance(v, tuple) else v for k, v in selection.items()},
        "numactl": asdict(what.numactl),
        "instances": what.instances,
        "limits": asdict(what.limits),
        "repeats": what.repeats,
        "timeout_s": what.timeout_s,
    }


def recipe_cells(recipe: Mapping) -> list[tuple[str, str]]:
    """Every (image, profile) cell the recipe plans."""
    if recipe.get("cells") is not None:
        return [(str(i), str(p)) for i, p in recipe["cells"]]
    return [(i, p["name"]) for i in recipe["images"] for p in recipe["profiles"]]


def what_of(recipe: Mapping, cells: Sequence[tuple[str, str]], repeats: int, adaptive=None):
    """The campaign that plans these cells of the recipe again, ``repeats`` times each."""
    if recipe.get("recipe") != RECIPE_VERSION:
        raise UsageError(
            f"the session's recipe is version {recipe.get('recipe')!r}; this kit reads "
            f"version {RECIPE_VERSION}",
            "replay it with the kit version that recorded it (see its kit_version)",
        )
    profiles = {p["name"]: profile_from_json(p) for p in recipe["profiles"]}
    wanted = [p for p in profiles if any(p == name for _, name in cells)]
    images = [i for i in recipe["images"] if any(i == image for image, _ in cells)]
    sel = recipe["selection"]
    selection = CpuSelection(
        cpus=tuple(sel["cpus"]) if sel.get("cpus") is not None else None,
        nodes=tuple(sel["nodes"]) if sel.get("nodes") is not None else None,
        cores=sel.get("cores"),
        one_thread_per_core=bool(sel.get("one_thread_per_core")),
    )
    workload = workload_from_json(recipe["workload"])
    check_model_here(workload)
    return What(
        tuple(images), tuple(wanted), None, workload, selection,
        NumaPolicy(**recipe["numactl"]), recipe["instances"], Limits(**recipe["limits"]),
        repeats, float(recipe["timeout_s"]), adaptive=adaptive,
        pairs=frozenset(cells), profile_set=tuple(profiles[p] for p in wanted),
    )  # fmt: skip


def check_model_here(workload: WorkloadSpec) -> None:
    """A session of the user's own model replays only with that model here, byte for byte:
    kit's recipes and bundles name it (path and sha256) and do not carry it."""
    if workload.model_file is None:
        return
    path, digest = workload.model_file, workload.model_digest or "?"
    found = model_digest(path) if path.exists() else None
    if found != digest:
        said = "is not there" if found is None else f"there is another file (sha256 {found[:12]})"
        raise UsageError(
            f"the session ran your model {path.name} (sha256 {digest[:12]}) from {path}, and "
            f"{said}: kit's recipes and bundles name the model, they do not carry it",
            f"copy that model to {path} on this machine, then replay",
        )
