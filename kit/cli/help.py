"""kit's --help: what a command is for, its common options first, the rest grouped by what they
are for, each wrapped to the terminal (nothing cut at 80 columns). `--help-all` shows every
option; `--help` leaves out the rare ones and says how many and where they are.

Where an option is listed, and whether `--help` shows it, is said here and only here: one hop
from an option's name to its place in the help.
"""

from __future__ import annotations

import enum
import inspect
import re

import typer.core
from typer import _click as click  # Typer's own click (its version pinned in pyproject.toml)
from typer._coercion import bool_flag_type_descriptor

# The measuring commands' options by what they are for, in the order they are shown. An option
# of a command that no section names is in its first section, "Options".
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Workload", ("--preset", "--model", "--batch-size", "--num-batches", "--num-warmup-batches",
                  "--mode", "--precision", "--data-format", "--allocator", "--allow-emulated",
                  "--workload", "--workload-dir", "--timeout")),
    ("Placement (CPUs, NUMA)", ("--cpus", "--cores", "--nodes", "--one-thread-per-core",
                                "--instances", "--interleave", "--membind", "--preferred",
                                "--cpunodebind", "--physcpubind", "--localalloc",
                                "--topology", "--threads-per-core")),
    ("Repeats and verdicts", ("--repeats", "--ci-width", "--min-repeats", "--max-repeats",
                              "--baseline", "--keep-equivalent", "--keep-disturbed",
                              "--wait-quiet")),
    ("Regression gate", ("--fail-if-slower", "--baseline-session", "--baseline-history",
                         "--gate-on", "--gate-undecided")),
    ("Engines and images", ("--engine", "--host", "--spread", "--build-missing", "--pull",
                            "--registry", "--memory", "--pids-limit", "--allow-concurrent",
                            "--verify")),
    ("Results and output", ("--format", "--wide", "--export-json", "--export-csv",
                            "--export-markdown", "--results", "--db", "--resume")),
    ("On a Slurm cluster (--engine slurm)", ("--partition", "--nodelist", "--slurm-nodes",
                                             "--constraint", "--account", "--time",
                                             "--slurm-arg", "--node-engine",
                                             "--node-python")),
)  # fmt: skip

# What `--help` leaves out (`--help-all` shows them): the rarely needed, where a default is right
# for almost everyone, and the options of one engine.
RARE = frozenset(
    ("--data-format", "--allocator", "--allow-emulated", "--workload", "--workload-dir",
     "--timeout", "--one-thread-per-core", "--preferred", "--cpunodebind", "--physcpubind",
     "--localalloc", "--threads-per-core", "--ci-width", "--min-repeats", "--max-repeats",
     "--keep-equivalent", "--keep-disturbed", "--wait-quiet", "--gate-on", "--gate-undecided",
     "--baseline-history", "--pull", "--registry", "--memory", "--pids-limit", "--allow-concurrent",
     "--db", "--wide", "--export-json", "--export-csv", "--export-markdown", "--profiles",
     "--knobs", "--spread")
    + SECTIONS[-1][1]
)  # fmt: skip

HELP_ALL = "--help-all"
_PLACE = {name: title for title, names in SECTIONS for name in names}
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
    order = ["Options", *(title for title, _ in SECTIONS)]
    grouped: dict[str, list[click.Parameter]] = {title: [] for title in order}
    for param in params:
        grouped[_PLACE.get(_name(param), "Options")].append(param)
    rank = {name: i for _, names in SECTIONS for i, name in enumerate(names)}
    return [
        (title, sorted(found, key=lambda p: rank.get(_name(p), -1)))
        for title, found in grouped.items()
        if found
    ]


def _summary(command: click.Command) -> str:
    """A command's first sentence, whole (the terminal wraps it; nothing is cut)."""
    text = inspect.cleandoc(command.short_help or command.help or "")
    first = text.split("\n\n")[0].replace("\n", " ")
    return re.split(r"(?<=[.)])\s", first, maxsplit=1)[0]


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

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)


class KitCommand(_PlainHelp, typer.core.TyperCommand):
    """A kit command: Typer's parsing, kit's help (see the module's docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # made once, as click makes --help: its callbacks are ordered by the option's identity
        self._help_all = typer.core.TyperOption(
            param_decls=[HELP_ALL], type_descriptor=bool_flag_type_descriptor(), is_flag=True,
            is_eager=True, expose_value=False, callback=_show_all,
            help="Show every option, the rare ones too.",
        )  # fmt: skip

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return [*super().get_params(ctx), self._help_all]

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
        left_out = [p for p in options if not everything and _name(p) in RARE]
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
        instance = group.typer_instance
        if instance is not None:
            if instance.info.cls in (None, typer.core.TyperGroup):
                instance.info.cls = KitGroup
            use_kit_help(instance)
