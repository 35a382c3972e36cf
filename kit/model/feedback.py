"""What the core tells a person while it works, as one interface: lines to say, and progress for
builds, transfers and runs. The terminal's is ``kit.cli.ui.TerminalFeedback``; ``Quiet`` says
nothing (tests, library use). The core never prints."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

from kit.model.workload import WorkloadSpec

LineSink = Callable[[str], None]
ByteSink = Callable[[int], None]
LayerSink = Callable[[str, str, int, int], None]


class BuildSink(Protocol):
    def say(self, message: str) -> None: ...

    def on_log(self, line: str) -> None: ...


class Feedback(Protocol):
    def say(self, message: str) -> None:
        """One line for the person running kit (stderr on a terminal)."""

    def building(self, name: str) -> contextlib.AbstractContextManager[BuildSink]:
        """Progress of one image or environment build."""

    def layers(self, title: str) -> contextlib.AbstractContextManager[LayerSink]:
        """Progress of a registry push or pull, layer by layer."""

    def moving(self, title: str) -> contextlib.AbstractContextManager[ByteSink]:
        """Bytes moved, for saving, loading or sending images."""

    def running(
        self, workload: WorkloadSpec, show_engine: bool, baseline: str | None = None,
        bounded: bool = False,
    ) -> contextlib.AbstractContextManager:  # fmt: skip
        """Progress of a session's runs: the context's value takes session events. ``bounded``:
        the plan's run count is a maximum (adaptive repeats, a tune); ``baseline``: the cell a
        provisional table's speedups are relative to."""


class _QuietBuild:
    def say(self, message: str) -> None:
        pass

    def on_log(self, line: str) -> None:
        pass


class Quiet:
    """Feedback that says nothing, keeping the lines it was told (``said``)."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def say(self, message: str) -> None:
        self.said.append(message)

    @contextlib.contextmanager
    def building(self, name: str) -> Iterator[BuildSink]:
        yield _QuietBuild()

    @contextlib.contextmanager
    def layers(self, title: str) -> Iterator[LayerSink]:
        yield lambda layer, status, current, total: None

    @contextlib.contextmanager
    def moving(self, title: str) -> Iterator[ByteSink]:
        yield lambda count: None

    @contextlib.contextmanager
    def running(self, workload: WorkloadSpec, show_engine: bool, baseline: str | None = None,
                bounded: bool = False) -> Iterator[Callable]:  # fmt: skip
        yield lambda event: None
