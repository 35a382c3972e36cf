"""What every command shares: the consoles, the apps, the engine factory, the database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from kit import __version__
from kit.cli.help import RootGroup
from kit.errors import UsageError
from kit.inputs import stat_of
from kit.reporting.fit import fit as fit_text

if TYPE_CHECKING:
    from kit.engines.factory import EngineMaker

app = typer.Typer(
    name="kit",
    help="How fast does TensorFlow train on this CPU, which build and settings win, by how much?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    cls=RootGroup,
)
images_app = typer.Typer(help="Build and list kit's TensorFlow images.", no_args_is_help=True)
profiles_app = typer.Typer(help="Named env/thread/numactl settings.", no_args_is_help=True)
envs_app = typer.Typer(
    help="The local engine's virtual environments (the images' pins, no Docker).",
    no_args_is_help=True,
)
app.add_typer(images_app, name="images")
app.add_typer(envs_app, name="envs")
app.add_typer(profiles_app, name="profiles")


class ProseConsole(Console):
    """A console of lines for people: each text printed fits WIDTH columns (kit.reporting.fit);
    ``fit=False`` for a table, which is sized on its own."""

    def print(self, *objects, fit: bool = True, **kwargs) -> None:  # type: ignore[override]
        if fit:
            objects = tuple(fit_text(o) if isinstance(o, str) else o for o in objects)
        super().print(*objects, **kwargs)


# stderr: what kit says (progress, notes, errors); stdout: what a command answers. A document
# (table, JSON, CSV) is printed with fit=False: its renderer sizes it.
err = ProseConsole(stderr=True, highlight=False, soft_wrap=True, emoji=False)
out = ProseConsole(highlight=False, soft_wrap=True, emoji=False)


def engine_maker(ctx: typer.Context) -> EngineMaker:
    """The engines commands run on: the real ones, unless the caller handed in others (tests
    invoke the app with ``obj=`` a fake EngineMaker)."""
    from kit.engines.factory import SystemEngines

    root = ctx.find_root()
    if root.obj is None:
        root.obj = SystemEngines(say=lambda message: err.print(message, markup=False))
    return root.obj


def existing_db(db: Path | None, results: Path) -> Path:
    """The results database a command reads: --db, else RESULTS/kit.db; it must exist."""
    from kit.store.folder import DB_NAME

    path = db or results / DB_NAME
    if stat_of(path, "--db") is None:
        raise UsageError(f"no results database at {path}", "run `kit compare` first, or pass --db")
    return path


def open_db(db: Path | None, results: Path):
    from kit.store.database import ResultsDB

    return ResultsDB(existing_db(db, results))


def _print_version(value: bool) -> None:
    if value:
        out.print(f"kit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print kit's version.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """How fast does TensorFlow train on this CPU, which build and settings win, by how much?"""
