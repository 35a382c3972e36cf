"""Tables within kit's width (kit.reporting.fit): columns left out in a stated order, or long
texts wrapped within their column. ``--wide`` and the data formats keep everything."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from kit.reporting.fit import WIDTH

# The results table's columns it leaves out, in this order, when a sweep's knobs or latency make
# it wider than WIDTH (--wide keeps every one)
DROPPABLE = ("TF", "numactl", "threads", "cpus")


def dropped_to_fit(
    headers: list[str], body: list[list[str]], droppable: Sequence[str] = DROPPABLE
) -> tuple[list[str], list[list[str]], list[str]]:
    """The table without its ``droppable`` columns, in their order, until it fits WIDTH;
    the names of those it left out."""
    left: list[str] = []
    for name in droppable:
        if _width(headers, body) <= WIDTH or name not in headers:
            continue
        at = headers.index(name)
        headers = headers[:at] + headers[at + 1 :]
        body = [row[:at] + row[at + 1 :] for row in body]
        left.append(name)
    return headers, body, left


def _width(headers: Sequence[str], body: Sequence[Sequence[object]]) -> int:
    columns = zip(headers, *body, strict=True)
    return sum(max(len(str(cell)) for cell in column) + 2 for column in columns) - 2


def fit_listing(headers: Sequence[str], body: Sequence[Sequence[object]]) -> str:
    """A listing within WIDTH: its longest texts wrap within their column (a profile's
    description, a session's command), the widest column first, down to 12 characters."""
    limits: list[int | None] = [None] * len(headers)
    while True:
        text = tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True,
                        maxcolwidths=limits)  # fmt: skip
        lines = text.splitlines()
        over = max(map(len, lines)) - WIDTH
        if over <= 0:
            return text
        dashes = lines[1].split("  ") if len(lines) > 1 else []
        widths = [len(d) for d in dashes if d]
        wrappable = [i for i, w in enumerate(widths) if w > 12 and limits[i] != 12]
        if len(widths) != len(headers) or not wrappable:
            return text  # nothing left to wrap: wide it stays
        widest = max(wrappable, key=lambda i: widths[i])
        limits[widest] = max(12, widths[widest] - over)
