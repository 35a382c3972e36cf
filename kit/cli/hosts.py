"""This host: doctor, topology, clean, profiles."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kit.cli import common
from kit.cli.common import app, err, out, profiles_app
from kit.cli.declare import command
from kit.cli.options import Options
from kit.cpus import format_cpu_list, parse_cpu_list
from kit.engines.kinds import EngineKind
from kit.errors import UsageError
from kit.reporting.formats import Format


@command(app, "doctor", Options)
def doctor(ctx: typer.Context, o: Options) -> None:
    """Check the engine, images, numactl and capabilities; print the containers' posture."""
    from kit.engines.doctor import run_checks

    failed = False
    for check in run_checks(common.engine_maker(ctx).engine(EngineKind(o.container_engine.value))):
        style = {"ok": "green", "warn": "yellow"}.get(check.status, "red")
        err.print(f"[{style}]{check.status:>4}[/] {check.name}: {check.detail}", soft_wrap=True)
        failed |= check.status == "FAIL"
    if failed:
        raise typer.Exit(1)


@command(app, "topology", Options)
def topology(ctx: typer.Context, o: Options) -> None:
    """This host's sockets, NUMA nodes, cores and SMT siblings, and the CPUs kit may use."""
    from kit.engines.endpoints import parse_host
    from kit.engines.factory import remote_facts
    from kit.host.topology_file import format_topology, to_json
    from kit.reporting.table import listing, render_tables

    host, fmt = one_host(o.host, "kit topology reads one host"), o.fmt
    if host is None:
        topo, record = common.engine_maker(ctx).this_host(), None
    else:
        facts = remote_facts(common.engine_maker(ctx), parse_host(host))
        topo, record = facts.topology, facts.record
    if fmt is Format.json:  # the document --topology reads back
        data = to_json(topo) if record is None else {**to_json(topo), "host": record}
        out.print(json.dumps(data, indent=2), markup=False, fit=False)
        return
    if fmt is not Format.table:  # one row a CPU
        body = [[c.id, c.core, c.socket, c.node] for c in topo.cpus]
        out.print(
            render_tables([listing("cpus", ["cpu", "core", "socket", "node"], body)], fmt),
            markup=False,
            fit=False,
        )
        return
    if record is not None:
        out.print(
            f"host:      {record['hostname']} ({record.get('cpu_model') or '?'}, "
            f"kernel {record.get('kernel')}, {record.get('memory_mb')} MB)",
            markup=False,
        )
    for line in format_topology(topo):
        out.print(line, markup=False)


@command(app, "clean", Options)
def clean(ctx: typer.Context, o: Options) -> None:
    """Remove containers an earlier kit session left behind (found by kit's labels)."""
    from kit.engines.endpoints import parse_hosts
    from kit.engines.slurm.engine import cancel_strays

    if o.slurm:
        err.print(f"cancelled {cancel_strays()} Slurm job(s) left by kit")
        return

    endpoints = parse_hosts(list(o.host)) or [None]
    for endpoint in endpoints:
        removed = common.engine_maker(ctx).engine(EngineKind.docker, endpoint).remove_strays()
        where = f" on {endpoint.label}" if endpoint is not None else ""
        err.print(f"removed {removed} container(s) left by kit{where}")


@command(profiles_app, "profiles list", Options)
def profiles_list(o: Options) -> None:
    """Every profile, built-in and from --profiles."""
    from kit.model.profiles import load_profiles
    from kit.reporting.table import listing, render_tables

    profiles = load_profiles(o.profiles_file)
    rows = [[p.name, p.source, p.description] for p in profiles.values()]
    table = listing("profiles", ["profile", "from", "description"], rows)
    out.print(render_tables([table], o.fmt), markup=False, fit=False)


@command(profiles_app, "profiles show", Options)
def profiles_show(name: Annotated[str, typer.Argument(help="Profile name.")], o: Options) -> None:
    """A profile resolved for this host (or --cpus): CPUs, env, threads, numactl argv."""
    from kit.host.topology import read_host
    from kit.model.profiles import RUN_KEYS, load_profiles, pick
    from kit.planning.placement import CpuSelection
    from kit.planning.plan import resolve_placement
    from kit.reporting.table import LISTING_SCHEMA, listing, render_tables

    host = read_host()
    cpus, fmt = o.cpus, o.fmt
    selection = CpuSelection(cpus=parse_cpu_list(cpus, what="--cpus") if cpus else None)
    (profile,) = pick(load_profiles(o.profiles_file), [name])
    cpuset, effective, placement, numa = resolve_placement(profile, host, selection)
    resolved = profile.resolve(placement, numa)
    fields = [
        ("profile", f"{profile.name} ({profile.source})"),
        ("description", profile.description),
        ("cpuset", format_cpu_list(cpuset)),
        ("workload on", f"CPUs {format_cpu_list(effective)}: {placement.cores} physical cores, "
                        f"{placement.threads} logical CPUs, {placement.nodes} NUMA node(s)"),
        *(("env", f"{key}={value}") for key, value in resolved.env.items()),
        ("threads", f"inter_op={resolved.inter_op or 'TF default'} "
                    f"intra_op={resolved.intra_op or 'TF default'}"),
        ("numactl", " ".join(resolved.numa.argv()) or "(none)"),
        ("capabilities", "SYS_NICE (memory policy)" if resolved.numa.needs_sys_nice else "none"),
    ]  # fmt: skip
    run = {k: getattr(profile, k) for k in sorted(RUN_KEYS) if getattr(profile, k) is not None}
    if run:
        fields.append(("run", " ".join(f"{k}={v}" for k, v in run.items())))
    if fmt is Format.json:  # data as data: the env a mapping, CPUs and argv as lists
        doc = {
            "schema": LISTING_SCHEMA, "profile": profile.name, "source": profile.source,
            "description": profile.description, "cpuset": sorted(cpuset),
            "workload_cpus": sorted(effective), "physical_cores": placement.cores,
            "logical_cpus": placement.threads, "numa_nodes": placement.nodes,
            "env": dict(resolved.env), "inter_op": resolved.inter_op,
            "intra_op": resolved.intra_op, "numactl": list(resolved.numa.argv()),
            "capabilities": ["SYS_NICE"] if resolved.numa.needs_sys_nice else [],
            "run": {k: v if isinstance(v, int | float | str) else str(v) for k, v in run.items()},
        }  # fmt: skip
        out.print(json.dumps(doc, indent=2), markup=False, fit=False)
        return
    if fmt is Format.table:
        for key, value in fields:
            out.print(f"{key + ':':<13} {value}", markup=False)
        return
    shown = render_tables([listing("profile", ["field", "value"], fields)], fmt)
    out.print(shown, markup=False, fit=False)


def one_host(hosts: tuple[str, ...], why: str) -> str | None:
    """The one --host of a command that reads one engine (None: this host's)."""
    if len(hosts) > 1:
        raise UsageError(f"{why}; --host was given {len(hosts)} times", "give --host once")
    return hosts[0] if hosts else None
