"""Every line kit prints for a person fits WIDTH columns: a longer line is wrapped at its words,
each further line indented two more than its first. A table's rows are left as they are (the
table is sized to fit; ``--wide`` asks for more), and so is data (JSON, CSV)."""

from __future__ import annotations

import textwrap

WIDTH = 120


def fit(text: str, width: int = WIDTH) -> str:
    """``text`` with each line over ``width`` wrapped at its words; a word longer than the width
    (a path, a URL) stays whole on a line of its own."""
    return "\n".join(_fit_line(line, width) for line in text.split("\n"))


def _fit_line(line: str, width: int) -> str:
    if len(line) <= width:
        return line
    indent = line[: len(line) - len(line.lstrip())]
    return textwrap.fill(
        line.strip(),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
