"""How an option is declared, once: its flags, help, default, help panel and the commands that
offer it (``opt``), as metadata on a field of ``kit.cli.options.Options``. From those fields
``command`` builds each command's signature: a command offers exactly the options whose
declaration names it, and its body gets them as one frozen ``Options``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from enum import Enum
from typing import Annotated, Any

import typer

REQUIRED: Any = inspect.Parameter.empty  # a default_on value: the command needs the option


class Panel(Enum):
    """The --help sections, in the order they are shown."""

    options = "Options"
    workload = "Workload"
    placement = "Placement (CPUs, NUMA)"
    repeats = "Repeats and verdicts"
    gate = "Regression gate"
    engines = "Engines and images"
    results = "Results and output"
    slurm = "On a Slurm cluster (--engine slurm)"


@dataclass(frozen=True)
class Declared:
    """One option: where it is offered and how it reads there."""

    help: str
    on: frozenset[str]  # command paths: "compare", "images build"
    flags: tuple[str, ...] = ()  # default: --the-field-name
    panel: Panel = Panel.options
    rare: bool = False  # left out of --help (shown by --help-all)
    help_on: Mapping[str, str] = field(default_factory=dict)  # another help on these commands
    default_on: Mapping[str, object] = field(default_factory=dict)  # another default there
    typer: Mapping[str, object] = field(default_factory=dict)  # metavar, min, max, envvar ...

    def help_for(self, command: str) -> str:
        return self.help_on.get(command, self.help)


def opt(
    help: str, *flags: str, on: tuple[str, ...] | frozenset[str], default: object = None,
    panel: Panel = Panel.options, rare: bool = False, help_on: Mapping[str, str] | None = None,
    default_on: Mapping[str, object] | None = None, **typer_kwargs: object,
) -> Any:  # fmt: skip
    """A field of Options that is an option: ``default`` where no ``default_on`` says other."""
    for name in (*(help_on or {}), *(default_on or {})):
        if name not in on:
            raise ValueError(f"{flags or help!r}: {name!r} is not one of the commands offering it")
    declared = Declared(help, frozenset(on), flags, panel, rare, dict(help_on or {}),
                        dict(default_on or {}), typer_kwargs)  # fmt: skip
    return field(default=default, metadata={"kit": declared})


def declared(option: Field) -> Declared:
    return option.metadata["kit"]


def _is_many(kind: object) -> bool:
    return typing.get_origin(kind) is tuple


def _typer_type(kind: object) -> object:
    """The type Typer reads: a repeatable option (a tuple here) as Typer's list."""
    if _is_many(kind):
        return list[typing.get_args(kind)[0]] | None  # type: ignore[misc]
    return kind


@dataclass(frozen=True)
class Offered:
    """An option as one command offers it."""

    name: str
    kind: object
    declared: Declared
    default: object

    def parameter(self, command: str) -> inspect.Parameter:
        d = self.declared
        info = typer.Option(*d.flags, help=d.help_for(command), **d.typer)  # type: ignore[arg-type]
        default = None if _is_many(self.kind) else self.default
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY,
                                 annotation=Annotated[_typer_type(self.kind), info],  # type: ignore[valid-type]
                                 default=default)  # fmt: skip


def offered(options: type, command: str) -> list[Offered]:
    """The options ``command`` offers, in declaration order, with its defaults."""
    hints = typing.get_type_hints(options)
    found = []
    for f in fields(options):
        d = declared(f)
        if command in d.on:
            default = d.default_on.get(command, f.default)
            found.append(Offered(f.name, hints[f.name], d, default))
    return found


def every_command(options: type) -> frozenset[str]:
    return frozenset(name for f in fields(options) for name in declared(f).on)


def _value(kind: object, value: object, default: object) -> object:
    """A value as Options holds it: a repeatable option's as a tuple (its default when none
    was given)."""
    if _is_many(kind):
        return tuple(value) if value else default  # type: ignore[call-overload]
    return value


def command(
    group: typer.Typer, path: str, options: type, *, hidden: bool = False
) -> Callable[[Callable], Callable]:
    """Register ``body`` as command ``path`` of ``group``: its own parameters (arguments, ctx)
    and the options declared for it; the body gets those as ``o``, an ``options``."""

    def decorate(body: Callable) -> Callable:
        own = [p for p in inspect.signature(body, eval_str=True).parameters.values()
               if p.name != "o"]  # fmt: skip
        offers = offered(options, path)
        defaults = {o.name: o.default for o in offers if o.default is not REQUIRED}
        params = [*own, *(o.parameter(path) for o in offers)]
        kinds = {o.name: o.kind for o in offers}

        def cli(**values: object) -> object:
            given = {k: _value(kinds[k], values.pop(k), defaults.get(k)) for k in list(values)
                     if k in kinds}  # fmt: skip
            return body(**values, o=replace(options(), **given))

        cli.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        cli.__annotations__ = {p.name: p.annotation for p in params}
        cli.__doc__ = body.__doc__
        cli.__name__ = body.__name__
        cli.__wrapped__ = body  # type: ignore[attr-defined]
        group.command(path.rsplit(maxsplit=1)[-1], hidden=hidden)(cli)
        return body

    return decorate
