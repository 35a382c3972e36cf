"""The README and docs/ cannot drift from the CLI: every `kit` line in their shell blocks parses
with kit's own parser (nothing runs), pasting a block runs no pipe between kit commands, the
README stays a front door, its links resolve, and docs/cli-reference.md is what the app
generates today."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.main import get_command

from kit.cli import app

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_FENCES = ("```sh", "```bash", "```shell")
REFERENCE = REPO / "docs" / "cli-reference.md"


def shell_lines(page: Path) -> list[tuple[int, str]]:
    """The lines inside the page's shell blocks, with their line numbers."""
    out, inside = [], False
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if line.startswith("```"):
            inside = not inside and line.strip() in SHELL_FENCES
        elif inside:
            out.append((number, line))
    return out


def kit_commands(line: str) -> list[list[str]]:
    """The kit command lines a shell line holds (``a && b`` is two), comments dropped."""
    words = shlex.split(line, comments=True)
    commands, current = [], []
    for word in [*words, "&&"]:
        if word in ("&&", ";"):
            if current and current[0] == "kit":
                commands.append(current[1:])
            current = []
        else:
            current.append(word)
    return commands


def parse(command, args: list[str], parent=None, name: str = "kit") -> None:
    """Parse ``args`` as the command line would, down to the subcommand; invoke nothing."""
    ctx = command.make_context(name, list(args), parent=parent)
    if hasattr(command, "resolve_command"):  # a group: its subcommand parses the rest
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        sub_name, sub, sub_args = command.resolve_command(ctx, rest)
        parse(sub, sub_args, ctx, sub_name)


EXAMPLES = [
    pytest.param(args, id=f"{page.relative_to(REPO)}:{number}")
    for page in PAGES
    for number, line in shell_lines(page)
    for args in kit_commands(line)
]


def test_the_pages_hold_examples():
    assert len(EXAMPLES) >= 50
    assert {p.name for p in PAGES} >= {"README.md", "cli.md", "engines.md", "replay.md"}


@pytest.mark.parametrize("args", EXAMPLES)
def test_every_kit_example_parses(args):
    parse(get_command(app), args)


def test_the_checker_finds_a_drifted_example():
    with pytest.raises(typer.TyperException):
        parse(get_command(app), ["compare", "stock", "--no-such-option"])
    with pytest.raises(typer.TyperException):
        parse(get_command(app), ["images", "bulid"])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_pipe_between_kit_commands(page):
    """A `|` pasted into a shell pipes one command into the next: never "or" in a block."""
    piped = [f"{page.name}:{n}: {line}" for n, line in shell_lines(page)
             if re.search(r"\|\s*kit\b", line.split(" #")[0])]  # fmt: skip
    assert piped == []


def test_the_readme_is_a_front_door():
    text = (REPO / "README.md").read_text()
    assert text.count("\n") <= 200
    head = "\n".join(text.splitlines()[:6])
    assert "make bench" in head and "make test" in head
    for needed in ("## Prerequisites", "## Install", "## A first answer", "## Where results go"):
        assert needed in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    text = page.read_text()
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        found = (page.parent / path).exists() if path else anchor in anchors
        if not found:
            broken.append(target)
    assert broken == []


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def generated_reference() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "typer", "kit.cli", "utils", "docs", "--name", "kit"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return out.stdout


def test_the_cli_reference_is_what_the_app_says_today():
    assert REFERENCE.read_text().rstrip() == generated_reference().rstrip(), (
        "docs/cli-reference.md is stale: run `make docs`"
    )
