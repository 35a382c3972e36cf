"""Help that fits: every command's --help within 60 lines at 120 columns, nothing cut or overlong
at 80, every option reachable in --help-all, commands in the order a user meets them."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from kit.cli import app
from kit.cli.help import DECLARED, HELP_ALL, RootGroup

ROOT = get_command(app)


def commands(group=ROOT, path=()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        if command.hidden:
            continue
        if hasattr(command, "commands"):
            found += commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


ALL = commands()


def help_of(args: tuple[str, ...], columns: int, flag: str = "--help") -> str:
    result = CliRunner().invoke(app, [*args, flag], terminal_width=columns)
    assert result.exit_code == 0, result.output
    return result.output


def long_names(args: tuple[str, ...]) -> list[str]:
    command = ROOT
    for name in args:
        command = command.commands[name]
    return [
        max(p.opts, key=len)
        for p in command.params
        if p.param_type_name == "option" and not p.hidden
    ]


def test_the_commands_are_all_found():
    assert len(ALL) >= 25 and ("compare",) in ALL and ("images", "build") in ALL


@pytest.mark.parametrize("args", ALL, ids=" ".join)
def test_help_fits_sixty_lines_at_120_columns(args):
    text = help_of(args, 120)
    lines = text.splitlines()
    assert len(lines) <= 60, f"kit {' '.join(args)} --help is {len(lines)} lines"
    assert max(len(line) for line in lines) <= 120


def squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("args", ALL, ids=" ".join)
def test_nothing_is_cut_at_80_columns(args):
    """Every line within 80 columns, and every option's description there whole."""
    text = help_of(args, 80, HELP_ALL)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    command = ROOT
    for name in args:
        command = command.commands[name]
    for param in command.params:
        if getattr(param, "help", None) and not param.hidden:
            assert squeezed(param.help) in squeezed(text), f"{param.name}'s help is cut"


@pytest.mark.parametrize("args", ALL, ids=" ".join)
def test_every_option_is_in_help_all(args):
    text = help_of(args, 120, HELP_ALL)
    for name in long_names(args):
        assert name in text, f"kit {' '.join(args)} {HELP_ALL} lacks {name}"


def test_the_short_help_says_what_it_left_out():
    text = help_of(("compare",), 120)
    command = ROOT.commands["compare"]
    hidden = [p for p in command.params if p.name in DECLARED and DECLARED[p.name].rare]
    assert f"{len(hidden)} more options" in text and "kit compare --help-all" in text
    for name in ("--slurm-nodes", "--gate-undecided", "--physcpubind"):
        assert name not in text
    for name in ("--cpus", "--repeats", "--fail-if-slower", "--engine", "--format"):
        assert name in text


def test_options_that_go_together_share_a_section():
    text = help_of(("compare",), 120, HELP_ALL)
    gate = text[text.index("Regression gate:") :]
    gate = gate[: gate.index("\n\n")]
    for name in ("--fail-if-slower", "--baseline-session", "--baseline-history", "--gate-on"):
        assert name in gate
    slurm = text[text.index("On a Slurm cluster") :]
    assert "--partition" in slurm and "--nodelist" in slurm


def test_no_command_offers_one_flag_twice():
    for args in ALL:
        command = ROOT
        for name in args:
            command = command.commands[name]
        flags = [flag for p in command.params for flag in (*p.opts, *p.secondary_opts)]
        assert len(flags) == len(set(flags)), f"kit {' '.join(args)}: {sorted(flags)}"


def test_commands_are_listed_in_the_order_a_user_meets_them():
    text = help_of((), 120)
    order = [name for _, names in RootGroup.ORDER for name in names]
    at = [text.index(f"  {name} ") for name in order]
    assert at == sorted(at)
    assert text.index("Measure:") < text.index("Results:") < text.index("Share and replay:")
    listed = set(order)
    assert {name for name, c in ROOT.commands.items() if not c.hidden} <= listed
