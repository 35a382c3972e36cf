"""Does one session reproduce another? Pure: two sessions' runs and system descriptions in,
per-cell verdicts and the differences between the machines out (``kit replay``, ``kit diff``).

A cell reproduces when its images/sec here is within noise of there (the interval on the
ratio holds 1) or within the tolerance (a significant 1% is still the same answer to "how fast
is this cell"); otherwise it is faster or slower.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import geometric_mean

from kit.judging.cells import cells, round_pairs
from kit.judging.stats import Speedup, Verdict, compare
from kit.model.results import RunResult

DEFAULT_TOLERANCE = 0.05  # a 5% difference is within what a replay on another machine shows


class Agreement(StrEnum):
    reproduced = "reproduced"
    faster = "faster"
    slower = "slower"
    unknown = "too few repeats"  # a side with one repeat: no interval, no verdict
    missing = "not measured"  # one side has no successful run of the cell


@dataclass(frozen=True)
class CellDiff:
    """One cell there (the original) and here (the replay, or the second session)."""

    key: str
    there: float | None  # geometric mean images/sec
    here: float | None
    runs: tuple[int, int]  # successful repeats there, here
    speedup: Speedup | None  # here over there
    agreement: Agreement


def agreement(speedup: Speedup, tolerance: float) -> Agreement:
    if speedup.verdict is Verdict.unknown:
        return Agreement.unknown
    if speedup.verdict is Verdict.same or abs(speedup.ratio - 1) <= tolerance:
        return Agreement.reproduced
    return Agreement.faster if speedup.verdict is Verdict.faster else Agreement.slower


def _samples(runs: Sequence[RunResult]) -> dict[str, list[float]]:
    """images/sec per repeat of every cell, by IMAGE:PROFILE (cells on several engines of one
    session are told apart by engine only where both sessions name the same engines)."""
    out: dict[str, list[float]] = {}
    for cell in cells(runs):
        out.setdefault(cell.key, []).extend(cell.samples())
    return out


def _geomean(values: Sequence[float]) -> float | None:
    if not values:
        return None
    return geometric_mean(values)


def cell_diffs(
    there: Sequence[RunResult], here: Sequence[RunResult], tolerance: float = DEFAULT_TOLERANCE
) -> list[CellDiff]:
    """Every cell of either session, in the original's order, compared."""
    a, b = _samples(there), _samples(here)
    diffs = []
    for key in dict.fromkeys([*a, *b]):
        old, new = a.get(key, []), b.get(key, [])
        speedup = compare(new, old) if old and new else None
        diffs.append(
            CellDiff(
                key, _geomean(old), _geomean(new), (len(old), len(new)), speedup,
                agreement(speedup, tolerance) if speedup else Agreement.missing,
            )
        )  # fmt: skip
    return diffs


@dataclass(frozen=True)
class AnswerDiff:
    """One cell's speedup over the session's baseline there and here: the session's answer
    ("which wins, by how much"), which a host's drift between the two sessions leaves alone."""

    key: str
    there: float  # the cell over the baseline, geometric mean of its rounds' ratios
    here: float
    change: Speedup  # here's speedup over there's, Welch on the rounds' ratios
    agreement: Agreement


def round_ratios(runs: Sequence[RunResult]) -> tuple[str, dict[str, list[float]]]:
    """The baseline (the first cell) and each other cell's ratio to it in every repeat round
    the two ran side by side (``round_pairs``, as verdicts pair them): within such a round the
    host's state is shared, so its drift cancels."""
    found = cells(runs)
    if not found:
        return "", {}
    base = found[0]
    return base.key, {c.key: [mine / theirs for mine, theirs in round_pairs(c, base)]
                      for c in found[1:]}  # fmt: skip


def answer_diffs(
    there: Sequence[RunResult], here: Sequence[RunResult], tolerance: float = DEFAULT_TOLERANCE
) -> list[AnswerDiff]:
    """Each cell's speedup over the baseline both sessions share, there against here; none
    when their baselines differ or a side has fewer than 2 rounds of the cell."""
    (base_a, a), (base_b, b) = round_ratios(there), round_ratios(here)
    if base_a != base_b:
        return []
    out = []
    for key, old in a.items():
        new = b.get(key, [])
        if min(len(old), len(new)) < 2:
            continue
        change = compare(new, old)
        out.append(AnswerDiff(key, geometric_mean(old), geometric_mean(new), change,
                              agreement(change, tolerance)))  # fmt: skip
    return out


def answer_rows(diffs: Sequence[AnswerDiff]) -> list[list[str]]:
    return [[d.key, f"{d.there:.2f}x", f"{d.here:.2f}x", f"{d.change.ratio:.2f}x",
             f"[{d.change.low:.2f}, {d.change.high:.2f}]", d.agreement.value]
            for d in diffs]  # fmt: skip


ANSWER_HEADERS = ["cell", "speedup there", "speedup here", "here/there", "95% interval",
                  "verdict"]  # fmt: skip


def diff_rows(diffs: Sequence[CellDiff]) -> list[list[str]]:
    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = []
    for d in diffs:
        s = d.speedup
        ratio = "-" if s is None else f"{s.ratio:.2f}x"
        interval = (
            "-" if s is None or s.verdict is Verdict.unknown else f"[{s.low:.2f}, {s.high:.2f}]"
        )
        rows.append(
            [d.key, num(d.there), num(d.here), f"{d.runs[0]}/{d.runs[1]}", ratio, interval,
             d.agreement.value]
        )  # fmt: skip
    return rows


DIFF_HEADERS = ["cell", "there img/s", "here img/s", "runs", "here/there", "95% interval",
                "verdict"]  # fmt: skip


def flatten(record: Mapping, prefix: str = "") -> dict[str, str]:
    """A nested record as dotted keys to text, lists joined (what a difference is shown as)."""
    out: dict[str, str] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = " ".join(str(v) for v in value)
        else:
            out[name] = "-" if value is None else str(value)
    return out


def system_diff(there: Mapping, here: Mapping) -> list[tuple[str, str, str]]:
    """What differs between two system descriptions: (field, there, here), in field order."""
    a, b = flatten(there), flatten(here)
    keys = list(dict.fromkeys([*a, *b]))
    return [(k, a.get(k, "-"), b.get(k, "-")) for k in keys if a.get(k, "-") != b.get(k, "-")]


def placement_changes(recorded: Sequence[Mapping], plan: Sequence) -> list[str]:
    """How the runs of each cell changed when placed on this machine: the recorded plan
    (``session.json``'s ``plan``) against the new one, cell by cell (first run of each)."""
    before: dict[str, Mapping] = {}
    for r in recorded:
        before.setdefault(f"{r['image']}|{r['profile']}|{r['instance']}", r)
    lines = []
    for spec in plan:
        key = f"{spec.image.reference}|{spec.profile.name}|{spec.instance}/{spec.instances}"
        old = before.pop(key, None)
        if old is None or spec.repeat:
            continue
        changes = _changes(old, spec)
        if changes:
            lines.append(f"{spec.key}: {'; '.join(changes)}")
    return lines


def _changes(old: Mapping, spec) -> list[str]:
    out = []
    if old.get("cpus") != spec.cpu_list:
        out.append(f"cpus {old.get('cpus')} -> {spec.cpu_list}")
    was_numa, now_numa = _numactl_args(old.get("command") or []), _numactl_args(spec.command())
    if was_numa != now_numa:
        out.append(f"numactl {' '.join(was_numa) or '-'} -> {' '.join(now_numa) or '-'}")
    old_env, new_env = old.get("env") or {}, dict(spec.environment())
    for name in sorted(set(old_env) | set(new_env)):
        if old_env.get(name) != new_env.get(name):
            out.append(f"{name} {old_env.get(name, 'unset')} -> {new_env.get(name, 'unset')}")
    threads = [a for a in spec.command() if a.startswith("--num_in")]
    was = [a for a in old.get("command", []) if a.startswith("--num_in")]
    if was != threads:
        out.append(f"threads {' '.join(was) or 'default'} -> {' '.join(threads) or 'default'}")
    return out


def _numactl_args(command: Sequence[str]) -> list[str]:
    """numactl's options at the head of a run's command (none when it has no numactl)."""
    if not command or command[0] != "numactl":
        return []
    head = []
    for arg in command[1:]:
        if not arg.startswith("--"):
            break
        head.append(arg)
    return head
