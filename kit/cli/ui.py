"""Live terminal display (rich) for runs and builds; the core knows nothing of it."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from kit.campaign.session import VERIFY_INDEX, Event, RunFinished, RunOutput, RunStarted
from kit.engines.base import ENGINE_NOTE
from kit.errors import KitError
from kit.judging.parse import parse_step_line
from kit.model.results import RunResult
from kit.model.workload import WorkloadSpec
from kit.reporting.files import write_exports
from kit.reporting.formats import Format
from kit.reporting.table import render


class RunDisplay:
    """The session's bar (runs done of all, elapsed, the time left from the runs so far), one bar
    per run (step i of n and the running images/sec), and after each round of repeats the
    provisional table, so a first answer shows early in a long session."""

    def __init__(self, console: Console, workload: WorkloadSpec, show_engine: bool = False,
                 baseline: str | None = None, bounded: bool = False,
                 exports: Mapping[Format, Path] | None = None,
                 rounds: bool = True) -> None:  # fmt: skip
        self.console = console
        self.workload = workload
        self.show_engine = show_engine  # several engines: say which one each run is on
        self.baseline, self.bounded = baseline, bounded
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} {task.fields[unit]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[int, object] = {}  # run index -> progress task (instances run at once)
        self.session = None  # the session's task, made at its first run
        self.started: dict[int, float] = {}  # run index -> when it started (monotonic)
        self.took: list[float] = []  # finished runs' wall seconds
        self.finished: list[RunResult] = []
        self.round = 0  # the highest repeat a run has started
        self.exports = dict(exports or {})  # --export-*: rewritten as each run arrives
        self.rounds = rounds

    def __enter__(self) -> RunDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_event(self, event: Event) -> None:
        spec = event.spec
        name = spec.key if spec.instances == 1 else f"{spec.key} #{spec.instance}/{spec.instances}"
        if self.show_engine:
            name = f"{name}@{spec.engine}"
        if isinstance(event, RunStarted):
            self._session(event)
            self.tasks[spec.index] = self.progress.add_task(
                f"[{spec.index}/{event.total}] {name}",
                total=self.workload.num_batches,
                rate="starting",
                unit="steps",
            )
            return
        task = self.tasks.get(spec.index)
        if task is None:
            return
        if isinstance(event, RunOutput):
            step = parse_step_line(event.line)
            if step is not None:
                self.progress.update(
                    task, completed=step.step, rate=f"{step.images_per_sec:.1f} images/sec"
                )
            elif event.line.startswith("Running warm up"):
                self.progress.update(task, rate="warming up")
            elif event.line.startswith(ENGINE_NOTE):  # the engine's word on the run (Slurm's)
                self.console.print(f"  note    {name}: {event.line[len(ENGINE_NOTE) :]}",
                                   markup=False)  # fmt: skip
        elif isinstance(event, RunFinished):
            self.progress.remove_task(self.tasks.pop(spec.index))
            self._finished(event)
            r = event.result
            if r.ok:
                self.console.print(
                    f"  ok      {name}: {r.images_per_sec:.2f} {r.unit} on CPUs "
                    f"{r.effective_cpus} (threads {r.threads}{warmup_text(r.warmup)})",
                    markup=False,
                )
            else:
                self.console.print(
                    f"  {r.status.value.upper():7} {name}: {r.error}", markup=False, style="red"
                )

    def _session(self, event: RunStarted) -> None:
        """A run starts: the session's bar (made, or its total updated), and when it begins a
        new round of repeats the table of the rounds before."""
        if event.spec.repeat > self.round and self.finished and self.rounds:
            self._provisional()
        self.round = max(self.round, event.spec.repeat)
        self.started[event.spec.index] = time.monotonic()
        if self.session is None:
            self.session = self.progress.add_task(
                "session", total=event.total, rate=self._left(event.total), unit="runs"
            )
        self.progress.update(self.session, total=event.total)

    def _finished(self, event: RunFinished) -> None:
        began = self.started.pop(event.spec.index, None)
        if event.spec.index >= VERIFY_INDEX:
            return  # a --verify run: not a row of the table, nor a measured run's time
        if began is not None and event.spec.instance == 1:
            self.took.append(time.monotonic() - began)
        self.finished.append(event.result)
        if self.exports:
            try:
                write_exports(self.finished, self.exports, self.baseline)
            except KitError as exc:  # said once; the runs go on, the results folder has them
                self.console.print(f"{exc}: not written again this session", markup=False)
                self.exports = {}
        if self.session is not None:
            self.progress.advance(self.session)
            task = self.progress.tasks[self.session]
            self.progress.update(self.session, rate=self._left(int(task.total or 0)))

    def _left(self, total: int) -> str:
        """The time left, from the mean wall time of the runs so far (a maximum when the plan's
        count is one)."""
        if not self.took:
            return "time left: after the first run"
        left = max(total - len(self.finished), 0) * statistics.fmean(self.took)
        minutes = f"{left / 60:.0f} min" if left >= 120 else f"{left:.0f} s"
        return f"{'at most ' if self.bounded else ''}{minutes} left"

    def _provisional(self) -> None:
        """The table so far, as its rounds of repeats stand (stderr; the final one is stdout)."""
        rounds = self.round + 1
        try:
            table = render(self.finished, Format.table, self.baseline)
        except KitError:  # a baseline that has not run yet: the table waits for it
            return
        self.console.print(  # the table is sized on its own (--wide: as wide as it needs)
            f"\nafter {rounds} round(s) of repeats, so far:\n{table}\n", markup=False, fit=False
        )


def warmup_text(warmup: dict | None) -> str:
    """How a run warmed up, as its progress line says it: batches, seconds, whether settled."""
    if not warmup:
        return ""
    unsettled = warmup.get("mode") == "auto" and not warmup.get("settled")
    return f"; warmup {warmup.get('batches')} batches, {warmup.get('seconds', 0):.0f} s" + (
        ", not settled" if unsettled else ""
    )


class BuildDisplay:
    """A spinner showing the build's current step; step lines are kept on screen."""

    def __init__(self, console: Console, name: str) -> None:
        self.console = console
        self.name = name
        self.status = console.status(f"building {name}")

    def __enter__(self) -> BuildDisplay:
        self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.status.stop()

    def say(self, message: str) -> None:
        self.console.print(f"  {message}", markup=False)

    def on_log(self, line: str) -> None:
        if line.startswith("Step "):
            self.console.print(f"  {line[:150]}", markup=False, style="dim")
        self.status.update(f"building {self.name}: {line.strip()[:100]}")


class LayerDisplay:
    """One bar per image layer while a push or pull moves it."""

    def __init__(self, console: Console, title: str) -> None:
        self.title = title
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=console,
            transient=True,
        )  # fmt: skip
        self.layers: dict[str, object] = {}

    def __enter__(self) -> LayerDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_layer(self, layer: str, status: str, current: int, total: int) -> None:
        if not layer or len(layer) != 12:  # progress lines carry a short layer id
            return
        if layer not in self.layers:
            self.layers[layer] = self.progress.add_task(f"{self.title} {layer}", total=None)
        self.progress.update(
            self.layers[layer],
            description=f"{self.title} {layer} {status[:20]}",
            completed=current,
            total=total or None,
        )


class ByteDisplay:
    """Bytes moved so far, for saving and loading archives."""

    def __init__(self, console: Console, title: str) -> None:
        self.progress = Progress(
            SpinnerColumn(), TextColumn(title), DownloadColumn(), TransferSpeedColumn(),
            TimeElapsedColumn(), console=console, transient=True,
        )  # fmt: skip
        self.task = self.progress.add_task(title, total=None)

    def __enter__(self) -> ByteDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_bytes(self, count: int) -> None:
        self.progress.advance(self.task, count)


class TerminalFeedback:
    """kit.feedback.Feedback on a terminal: lines and rich progress on the console (stderr)."""

    def __init__(
        self, console: Console, exports: Mapping[Format, Path] | None = None, rounds: bool = True
    ) -> None:
        self.console = console
        self.exports = exports  # --export-*: the table written there as each run arrives
        self.rounds = rounds  # the table after each round of repeats (not for a machine format)

    def say(self, message: str) -> None:
        self.console.print(message, markup=False)

    @contextlib.contextmanager
    def building(self, name: str) -> Iterator[BuildDisplay]:
        with BuildDisplay(self.console, name) as display:
            yield display

    @contextlib.contextmanager
    def layers(self, title: str) -> Iterator[Callable]:
        with LayerDisplay(self.console, title) as display:
            yield display.on_layer

    @contextlib.contextmanager
    def moving(self, title: str) -> Iterator[Callable[[int], None]]:
        with ByteDisplay(self.console, title) as display:
            yield display.on_bytes

    @contextlib.contextmanager
    def running(self, workload: WorkloadSpec, show_engine: bool, baseline: str | None = None,
                bounded: bool = False) -> Iterator[Callable]:  # fmt: skip
        with RunDisplay(self.console, workload, show_engine, baseline, bounded,
                        self.exports, self.rounds) as display:  # fmt: skip
            yield display.on_event
