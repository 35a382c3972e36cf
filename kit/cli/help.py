"""kit's --help: what a command is for, its common options first, the rest grouped by what they
are for, each wrapped to the terminal (nothing cut at 80 columns). `--help-all` shows every
option; `--help` leaves out the rare ones and says how many and where they are.

Where an option is listed (its panel), and whether `--help` shows it (rare or not), is said
where the option is declared, in ``kit.cli.options``.
"""

from __future__ import annotations

import enum
import inspect
import re
from dataclasses import fields

import typer.core
from typer import _click as click  # Typer's own click (its version pinned in pyproject.toml)
from typer._coercion import bool_flag_type_descriptor

from kit.cli.declare import Declared, Panel, declared
from kit.cli.options import Options

DECLARED: dict[str, Declared] = {f.name: declared(f) for f in fields(Options)}

HELP_ALL = "--help-all"
_RANK = {name: i for i, name in enumerate(DECLARED)}  # within a panel: as declared


def panel_of(param: click.Parameter) -> Panel:
    found = DECLARED.get(param.name or "")
    return found.panel if found is not None else Panel.options


def is_rare(param: click.Parameter) -> bool:
    found = DECLARED.get(param.name or "")
    return found is not None and found.rare


_TERM = 30  # the option column's width; longer choices go into the description


def _name(param: click.Parameter) -> str:
    return max(param.opts, key=len)


def _word(param: click.Parameter) -> str:
    return _name(param).lstrip("-").upper().replace("-", "_")


def _choices(param: click.Parameter) -> list[str]:
    found = param.type_descriptor.choices or ()
    return [str(c.value if isinstance(c, enum.Enum) else c) for c in found]


def _metavar(param: click.Parameter, ctx: click.Context) -> str:
    """What follows an option's name: its choices when they are short, else a word for its
    value (N, X, FILE, DIR, TEXT); nothing for a flag."""
    if getattr(param, "is_flag", False):
        return ""
    if param.metavar:
        return param.metavar
    if param.type_descriptor.is_choice:
        inline = f"[{'|'.join(_choices(param))}]"
        fits = len(", ".join(param.opts)) + 1 + len(inline) <= _TERM
        return inline if fits else _word(param)
    kind = param.display_type(ctx).strip("<>").removeprefix("list[").removesuffix("]")
    words = {"int": "N", "float": "X", "file": "FILE", "dir": "DIR", "path": "PATH"}
    return words.get(kind.split()[0], "TEXT")


def _default(param: click.Parameter) -> str:
    value = param.default
    if value is None or isinstance(value, bool) or value in ([], ()) or callable(value):
        return ""  # a flag's default is said by its name (--x, or --x / --no-x)
    if isinstance(value, enum.Enum):
        value = value.value
    return f" [default: {value}]"


def _row(param: click.Parameter, ctx: click.Context) -> tuple[str, str]:
    """One option as (term, description): its names and metavar; its help, choices, default."""
    names = sorted(param.opts, key=len)
    if param.secondary_opts and param.default is True:
        names = [*names, *param.secondary_opts]
    term = ", ".join(names)
    metavar = _metavar(param, ctx)
    text = (param.help or "").strip()
    named = all(re.search(rf"\b{re.escape(c)}\b", text) for c in _choices(param))
    if param.type_descriptor.is_choice and metavar == _word(param) and not named:
        text += f" One of: {', '.join(_choices(param))}."
    if param.envvar and getattr(param, "show_envvar", False):
        text += f" [env: {param.envvar}]"
    return (f"{term} {metavar}".strip(), (text + _default(param)).strip())


def _argument(param: click.Parameter) -> str:
    if param.metavar:
        return param.metavar
    word = param.name.upper() if param.required else f"[{param.name.upper()}]"
    return word + ("..." if param.nargs == -1 else "")


def _sections(params: list[click.Parameter]) -> list[tuple[str, list[click.Parameter]]]:
    grouped: dict[Panel, list[click.Parameter]] = {panel: [] for panel in Panel}
    for param in params:
        grouped[panel_of(param)].append(param)
    return [
        (panel.value, sorted(found, key=lambda p: _RANK.get(p.name or "", -1)))
        for panel, found in grouped.items()
        if found
    ]


def _summary(command: click.Command) -> str:
    """A command's first sentence, whole (the terminal wraps it; nothing is cut)."""
    text = inspect.cleandoc(command.short_help or command.help or "")
    first = text.split("\n\n")[0].replace("\n", " ")
    return re.split(r"(?<=[.)])\s", first, maxsplit=1)[0]


def _takes_value(param: click.Parameter) -> bool:
    return not getattr(param, "is_flag", False) and not getattr(param, "count", False)


def refuse_repeats(params: list[click.Parameter], args: list[str], ctx: click.Context) -> None:
    """An option that takes one value given twice, or a flag given both ways, is refused:
    click would keep the last and drop the rest without a word."""
    names = {name: p for p in params if isinstance(p, typer.core.TyperOption) for name in
             (*p.opts, *p.secondary_opts)}  # fmt: skip
    seen: dict[str, list[str]] = {}
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            break
        name = token.split("=", 1)[0] if token.startswith("--") else token[:2]
        param = names.get(name)
        if param is None or not token.startswith("-"):
            continue
        value = token.partition("=")[2] if "=" in token else token[2:] if name != token else None
        if value is None and _takes_value(param):
            value = next(tokens, "")
        if not getattr(param, "multiple", False):
            seen.setdefault(param.name or name, []).append(name if value is None else value)
    for given in seen.values():
        if len(set(given)) > 1:
            param = next(p for p in params if p.name in seen and seen[p.name] is given)
            raise click.exceptions.UsageError(
                f"{_name(param)} was given {len(given)} times ({', '.join(given)}); it takes one",
                ctx,
            )


def _show_all(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        ctx.meta[HELP_ALL] = True
        click.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()


class _PlainHelp:
    """What kit's commands and groups share: help up to 120 columns wide, written by click's
    own formatter (usage, text, options, epilog) rather than Typer's panels."""

    def __init__(self, *args, **kwargs) -> None:
        settings = {"max_content_width": 120, **(kwargs.pop("context_settings", None) or {})}
        super().__init__(*args, context_settings=settings, **kwargs)

    def get_help_option(self, ctx: click.Context):
        option = super().get_help_option(ctx)
        quick([option] if option is not None else [])
        return option

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)


def _quick(param: typer.core.TyperOption | typer.core.TyperArgument, ctx: click.Context,
           value, coerced) -> object:  # fmt: skip
    """A parameter left unset, or at its declared default (already of its type), needs no
    coercion: Typer's (through pydantic, ~0.1 s to import) would give the same value back, on
    every TAB of shell completion too."""
    if value not in (None, ()) and value is not param.default:
        return coerced(ctx, value)
    if param.required:
        raise click.exceptions.MissingParameter(ctx=ctx, param=param)
    return param.callback(ctx, param, value) if param.callback is not None else value


class _QuickOption(typer.core.TyperOption):
    def process_value(self, ctx: click.Context, value):
        return _quick(self, ctx, value, super().process_value)


class _QuickArgument(typer.core.TyperArgument):
    def process_value(self, ctx: click.Context, value):
        return _quick(self, ctx, value, super().process_value)


def quick(params: list[click.Parameter]) -> None:
    """Kit's commands' Typer parameters (its --help too), made quick to process when unset."""
    kinds = {typer.core.TyperOption: _QuickOption, typer.core.TyperArgument: _QuickArgument}
    for param in params:
        param.__class__ = kinds.get(type(param), type(param))


class KitCommand(_PlainHelp, typer.core.TyperCommand):
    """A kit command: Typer's parsing, kit's help (see the module's docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        quick(self.params)
        # made once, as click makes --help: its callbacks are ordered by the option's identity
        self._help_all = _QuickOption(
            param_decls=[HELP_ALL], type_descriptor=bool_flag_type_descriptor(), is_flag=True,
            is_eager=True, expose_value=False, callback=_show_all,
            help="Show every option, the rare ones too.",
        )  # fmt: skip

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return [*super().get_params(ctx), self._help_all]

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        refuse_repeats(self.get_params(ctx), args, ctx)
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        everything = ctx.meta.get(HELP_ALL, False)
        params = [p for p in self.get_params(ctx) if not getattr(p, "hidden", False)]
        if not everything:  # the short help says it in its last line
            params = [p for p in params if p.opts != [HELP_ALL]]
        arguments = [p for p in params if isinstance(p, typer.core.TyperArgument)]
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl([(_argument(p), p.help or "") for p in arguments])
        options = [p for p in params if isinstance(p, typer.core.TyperOption)]
        left_out = [p for p in options if not everything and is_rare(p)]
        sections = _sections([p for p in options if p not in left_out])
        rows = {title: [_row(p, ctx) for p in found] for title, found in sections}
        width = min(_TERM, max(len(term) for found in rows.values() for term, _ in found))
        for title, found in rows.items():  # one column width for all, so the sections line up
            with formatter.section(title):
                formatter.write_dl([(term.ljust(width), text) for term, text in found])
        if left_out:
            counts = ", ".join(
                f"{title.split(' (')[0].lower()} {len(found)}"
                for title, found in _sections(left_out)
            )
            formatter.write_paragraph()
            formatter.write_text(
                f"{len(left_out)} more options ({counts}): `{ctx.command_path} {HELP_ALL}`."
            )

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        arguments = [p for p in self.get_params(ctx) if isinstance(p, typer.core.TyperArgument)]
        return ["[OPTIONS]", *(_argument(p) for p in arguments)]


class KitGroup(_PlainHelp, typer.core.TyperGroup):
    """A group of kit commands: its commands in the order a user meets them, by what they are
    for (ORDER), and kit's plain, wrapped help."""

    ORDER: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)  # Typer's completion options among them
        quick(params)
        return params

    def list_commands(self, ctx: click.Context) -> list[str]:
        named = [name for _, names in self.ORDER for name in names]
        return [*named, *(name for name in super().list_commands(ctx) if name not in named)]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [p.get_help_record(ctx) for p in self.get_params(ctx)]
        with formatter.section("Options"):
            formatter.write_dl([r for r in rows if r])
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        known = {name: self.get_command(ctx, name) for name in self.list_commands(ctx)}
        listed = {name for _, names in self.ORDER for name in names}
        groups = [*self.ORDER, ("Commands", tuple(n for n in known if n not in listed))]
        for title, names in groups:
            rows = [(n, _summary(known[n])) for n in names if not known[n].hidden]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class RootGroup(KitGroup):
    ORDER = (
        ("Measure", ("compare", "run", "plan", "sweep", "tune", "verify", "peak")),
        ("Results", ("report", "history", "site", "diff")),
        ("Share and replay", ("export", "import", "replay")),
        ("This host and its images", ("doctor", "topology", "images", "envs", "profiles",
                                      "knobs", "clean")),
    )  # fmt: skip


def use_kit_help(app: typer.Typer) -> None:
    """Give every command of ``app`` and of its groups kit's help."""
    for info in app.registered_commands:
        if info.cls in (None, typer.core.TyperCommand):
            info.cls = KitCommand
    for group in app.registered_groups:
        if _unset(group.cls):  # the group's own, which Typer takes before its instance's
            group.cls = KitGroup
        if group.typer_instance is not None:
            use_kit_help(group.typer_instance)


def _unset(cls: object) -> bool:
    return cls in (None, typer.core.TyperGroup) or isinstance(cls, typer.models.DefaultPlaceholder)
