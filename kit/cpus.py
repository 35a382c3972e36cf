"""CPU and node lists in the kernel's list format (``0-8,18-26``): parse and format, pure."""

from __future__ import annotations

from collections.abc import Iterable

from kit.errors import UsageError

MAX_CPU = 1 << 16


def parse_cpu_list(text: str, *, what: str = "CPU list") -> tuple[int, ...]:
    """``"0-2,5"`` -> ``(0, 1, 2, 5)``; sorted, unique. Raises UsageError on bad syntax."""
    cleaned = text.strip()
    if not cleaned:
        raise UsageError(f"empty {what}", "give ids like 0-3,8")
    ids: set[int] = set()
    for raw_part in cleaned.split(","):
        part = raw_part.strip()
        first, sep, last = part.partition("-")
        try:
            lo = _cpu_id(first)
            hi = _cpu_id(last) if sep else lo
        except ValueError as exc:
            why = str(exc) or "is not a number or a range"
            raise UsageError(
                f"bad {what} {text!r}: {part!r} {why}", "use ids and ranges like 0-3,8"
            ) from None
        if hi < lo:
            raise UsageError(
                f"bad {what} {text!r}: range {part!r} runs backwards", f"write {hi}-{lo}"
            )
        ids.update(range(lo, hi + 1))
    return tuple(sorted(ids))


def _cpu_id(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ValueError
    value = int(text)
    if value >= MAX_CPU:
        raise ValueError(f"is beyond the largest id kit takes ({MAX_CPU - 1})")
    return value


def format_cpu_list(ids: Iterable[int]) -> str:
    """``(0, 1, 2, 5)`` -> ``"0-2,5"``: the shortest kernel-style list."""
    ordered = sorted(set(ids))
    ranges: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        ranges.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(ranges)
