"""numactl as kit speaks it: the policy a run asks for (``NumaPolicy``) and what ``numactl
--show`` says the process got. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kit.errors import UsageError

MEMORY_POLICIES = ("interleave", "membind", "preferred", "localalloc")
# The policies that take a list: nodes (preferred: one node), physcpubind: CPUs.
LIST_FIELDS = ("interleave", "membind", "preferred", "cpunodebind", "physcpubind")


@dataclass(frozen=True)
class NumaPolicy:
    """A numactl policy. Fields hold numactl's own values (``all``, node or CPU lists)."""

    interleave: str | None = None
    membind: str | None = None
    preferred: str | None = None
    cpunodebind: str | None = None
    physcpubind: str | None = None
    localalloc: bool = False

    def __post_init__(self) -> None:
        for name in LIST_FIELDS:  # an empty value would be dropped: a policy asked for, not set
            value = getattr(self, name)
            if value is not None and not str(value).strip():
                what = "CPU list" if name == "physcpubind" else "node list"
                raise UsageError(
                    f"numactl --{name} got an empty {what}",
                    f"give one (e.g. --{name} 0), or leave --{name} out",
                )
        memory = [n for n in ("interleave", "membind", "preferred") if getattr(self, n)]
        memory += ["localalloc"] if self.localalloc else []
        if len(memory) > 1:
            raise UsageError(
                f"numactl policies {' and '.join(memory)} exclude each other",
                "keep one memory policy",
            )

    @property
    def is_set(self) -> bool:
        return bool(self.argv())

    @property
    def needs_sys_nice(self) -> bool:
        """Memory policies call set_mempolicy, which Docker's seccomp profile allows only with
        CAP_SYS_NICE; CPU binding (-C, -N) works without it."""
        return bool(self.interleave or self.membind or self.preferred or self.localalloc)

    def argv(self) -> tuple[str, ...]:
        args = [
            f"--{name}={value}"
            for name in ("interleave", "membind", "preferred", "cpunodebind", "physcpubind")
            if (value := getattr(self, name))
        ]
        if self.localalloc:
            args.append("--localalloc")
        return ("numactl", *args) if args else ()

    def summary(self) -> str:
        return " ".join(self.argv()[1:]) or "-"

    @property
    def memory_policy(self) -> str | None:
        return next((name for name in MEMORY_POLICIES if getattr(self, name)), None)

    @property
    def memory_nodes_text(self) -> str | None:
        """The node list of the memory policy (``all`` for interleave=all), None if none."""
        policy = self.memory_policy
        if policy in (None, "localalloc"):
            return None
        return str(getattr(self, policy))


_NUMACTL_KEYS = (
    "policy",
    "preferred node",
    "physcpubind",
    "cpubind",
    "nodebind",
    "membind",
    "preferred",
    "interleavemask",
    "interleavenode",
)
_NUMACTL_SHOW = re.compile(
    r"(?:^|\s)(" + "|".join(re.escape(k) for k in _NUMACTL_KEYS) + r"):", re.MULTILINE
)


def parse_numactl_show(text: str) -> dict[str, str]:
    """``numactl --show`` as a dict. Tolerates numactl's missing line break after an empty
    ``preferred node:`` (under --localalloc it runs into ``physcpubind:``)."""
    matches = list(_NUMACTL_SHOW.finditer(text))
    shown = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        shown[match.group(1)] = text[match.end() : end].strip()
    return shown


# numactl --show's policy word for each memory policy kit can request.
POLICY_WORD = {"interleave": "interleave", "membind": "bind", "preferred": "preferred"}
