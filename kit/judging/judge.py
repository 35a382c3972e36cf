"""Judging a run: its outcome and its log become a RunResult with a status and, when it is not
ok, why (quoting the output's last lines)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from kit.cpus import format_cpu_list
from kit.judging.footprint import footprint_problems
from kit.judging.parse import ParsedOutput, parse_output
from kit.model.results import RunOutcome, RunResult, Status
from kit.model.spec import RunSpec
from kit.model.utilization import Utilization
from kit.model.workload_record import WorkloadRecord
from kit.planning.placement import placement_problems
from kit.workload.models import PRECISION_POLICIES

NUMACTL_REFUSED = "Operation not permitted"
KEEPS_NUMBER = (Status.ok, Status.invalid, Status.disturbed)  # shown, never a verdict's
# A run whose CPUs gave more than this share of their time to other work is disturbed. On the
# 2-CPU development host (AMD EPYC, tiny model, 20-30 s runs) quiet runs measured 1-4%, a run
# beside a CPU hog on its CPU 51% (tests/test_docker.py). A run shorter than the window is not
# judged: its container's start and stop (not the workload's own CPU time) are too large a
# share of it (5-s runs measured up to 24% on a quiet host).
DISTURBED_SHARE = 0.15
DISTURBANCE_WINDOW_S = 20.0


REFUSED = "kit's workload refused it:"  # a run's error that no other run of its cell escapes


def judge(
    spec: RunSpec,
    outcome: RunOutcome,
    parsed: ParsedOutput,
    utilization: Utilization | None = None,
    keep_disturbed: bool = False,
) -> tuple[Status, str | None]:
    """A run's status and, when it is not ok, why (with the output's last lines)."""
    tail = parsed.tail_text()
    numa = spec.profile.numa
    if (
        outcome.exit_code not in (0, None)
        and numa.needs_sys_nice
        and parsed.provenance is None
        and any(NUMACTL_REFUSED in line for line in parsed.tail)
    ):
        return Status.invalid, (
            f"numactl could not apply {numa.summary()} ({tail}); the container lacks "
            "CAP_SYS_NICE, which Docker's seccomp profile requires for memory policies: "
            "let the engine grant --cap-add SYS_NICE (kit asks for it)"
        )
    if parsed.refused:  # the workload could not run it as asked (a user's model): its words
        return Status.failed, f"{REFUSED} {parsed.refused}"
    if outcome.timed_out:
        return (
            Status.timed_out,
            f"killed after the {spec.timeout_s:g}s timeout; output ended: {tail}",
        )
    if outcome.lost:
        return Status.lost, f"{outcome.error}; output ended: {tail}"
    if outcome.error:
        return Status.failed, f"{outcome.error}; output ended: {tail}"
    if outcome.oom_killed:
        return Status.failed, f"out of memory (container OOM-killed); output ended: {tail}"
    if outcome.exit_code != 0:
        return Status.failed, f"exit status {outcome.exit_code}; output ended: {tail}"
    if parsed.images_per_sec is None or parsed.images_per_sec <= 0:
        return Status.failed, f"no throughput in the output; it ended: {tail}"
    problems = placement_problems(spec.requested_placement(), parsed.provenance)
    if problems:
        return Status.invalid, "placement differs from the request: " + "; ".join(problems)
    problems = workload_problems(spec, parsed.provenance or {})
    problems += footprint_problems(spec, parsed.footprint, parsed.provenance or {})
    if problems:
        return Status.invalid, "the run is not what was asked: " + "; ".join(problems)
    share = disturbance(spec, parsed.cpu_s, utilization)
    if share is not None and share > DISTURBED_SHARE and not keep_disturbed:
        return Status.disturbed, (
            f"other work took {share:.0%} of the run's CPUs (their busy time less the run's "
            f"own): {_who(utilization)}; run on a quiet host, or pass --keep-disturbed to count it"
        )
    return Status.ok, None


def _who(utilization: Utilization | None) -> str:
    """The processes that used the most CPU through the run, named."""
    found = utilization.consumers if utilization is not None else ()
    if not found:
        return "no process that ran through it used CPU (short-lived work, or another VM's)"
    return "the busiest other processes: " + ", ".join(c.label for c in found[:3])


def disturbance(spec: RunSpec, cpu_s: float | None, utilization: Utilization | None):
    """The share of the run's CPUs' time other work took over the sampled window: their busy
    CPU-seconds less the workload's own CPU seconds, over their capacity. None when the
    workload did not say its CPU time, the host was not sampled, or the run was too short."""
    if cpu_s is None or utilization is None or not utilization.times_s:
        return None
    if utilization.times_s[-1] < DISTURBANCE_WINDOW_S:
        return None
    cpus = [c for c in (spec.effective_cpus or spec.cpus) if c < len(utilization.busy)]
    times = utilization.times_s
    intervals = [t - p for p, t in zip((0.0, *times[:-1]), times, strict=True)]
    busy = sum(utilization.busy[c][i] / 100 * dt for c in cpus for i, dt in enumerate(intervals))
    capacity = len(cpus) * times[-1]
    return round(max(0.0, busy - cpu_s) / capacity, 4) if capacity > 0 else None


def workload_problems(spec: RunSpec, provenance: dict) -> list[str]:
    """The allocator the process mapped and the Keras policy it ran, against the request."""
    problems = []
    wanted = spec.workload.allocator.value
    allocator = provenance.get("allocator")
    if isinstance(allocator, dict):
        loaded = list(allocator.get("loaded") or [])
        if wanted != "system" and wanted not in loaded:
            problems.append(f"allocator {wanted} requested, but the process maps no {wanted}")
        elif wanted == "system" and loaded:
            problems.append(f"the system allocator requested, but the process maps {loaded[0]}")
    elif wanted != "system":
        problems.append(f"the image's workload cannot preload {wanted}: rebuild it")
    precision = provenance.get("precision")
    policy = precision.get("keras_policy") if isinstance(precision, dict) else None
    expected = PRECISION_POLICIES[spec.workload.precision.value]
    if spec.workload.workload.value == "kit" and policy is not None and policy != expected:
        problems.append(f"Keras policy {policy}, not {expected}")
    if spec.workload.precision.value == "bf16" and policy is None:
        problems.append("the image's workload reports no bf16 policy: rebuild it")
    return problems


def read_output(log_path: Path) -> ParsedOutput:
    try:
        with log_path.open(encoding="utf-8", errors="replace") as log:
            return parse_output(log)
    except FileNotFoundError:
        return parse_output([])


def make_result(
    spec: RunSpec,
    outcome: RunOutcome,
    utilization: Utilization | None = None,
    host: dict | None = None,
    rerun: str = "",
    parsed: ParsedOutput | None = None,
    keep_disturbed: bool = False,
) -> RunResult:
    """Judge the run on its log, parsed here in one streaming pass unless ``parsed`` already
    holds it. ``rerun`` is the line that reruns it by hand (its engine's form), for its record."""
    if parsed is None:
        parsed = read_output(outcome.log_path)
    status, error = judge(spec, outcome, parsed, utilization, keep_disturbed)
    return RunResult(
        index=spec.index,
        image=spec.image.label,
        image_ref=spec.image.reference,
        profile=spec.profile.name,
        cpus=spec.cpu_list,
        numactl=spec.profile.numa.summary(),
        command=spec.command(),
        env=dict(spec.environment()),
        status=status,
        # An INVALID run keeps its number (shown, never used as a cell's or a baseline's).
        images_per_sec=parsed.images_per_sec if status in KEEPS_NUMBER else None,
        started=outcome.started.isoformat(),
        ended=outcome.ended.isoformat(),
        exit_code=outcome.exit_code,
        log_path=str(outcome.log_path),
        image_id=outcome.image_id,
        error=error,
        steps=tuple(asdict(s) for s in parsed.steps),
        provenance=parsed.provenance,
        effective_cpus=format_cpu_list(spec.effective_cpus or spec.cpus),
        nodes=format_cpu_list(spec.nodes),
        mems=spec.mems_list,
        cell=spec.cell,
        instance=spec.instance,
        instances=spec.instances,
        repeat=spec.repeat,
        looks=spec.looks,
        utilization=utilization if utilization is not None and utilization.times_s else None,
        host=host,
        engine=spec.engine,
        knobs=dict(spec.profile.knobs),
        process_s=outcome.process_s,
        rerun=rerun,
        workload=WorkloadRecord.of(spec.workload),
        latency_ms=parsed.latency,
        stands_for=spec.stands_for,
        disturbance=disturbance(spec, parsed.cpu_s, utilization),
        warmup=parsed.warmup,
        step_seconds=parsed.step_seconds,
        step_faults=parsed.step_faults,
        spread=spec.spread,
        host_speed=parsed.host_speed,
        footprint=parsed.footprint,
    )
