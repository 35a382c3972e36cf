"""Before the first run: is this host quiet? Other work on it makes the numbers noisy or the
runs disturbed, so a busy host is said, with what to do; ``--wait-quiet S`` waits for it."""

from __future__ import annotations

import time
from collections.abc import Callable

from kit.host.sampler import host_busy
from kit.model.feedback import Feedback

QUIET_BUSY = 20.0  # % of the host's CPUs busy before any run: more is other work
QUIET_STEAL = 5.0  # % stolen by the hypervisor
POLL_S = 5.0


def busy_note(busy: float, steal: float, others: int = 0) -> str | None:
    """The one line a busy host gets, or None when it is quiet."""
    if busy <= QUIET_BUSY and steal <= QUIET_STEAL and not others:
        return None
    running = f", {others} other container(s) running" if others else ""
    return (
        f"note: the host is busy before the first run ({busy:.0f}% of its CPUs, steal "
        f"{steal:.0f}%{running}): runs beside other work are noisy or disturbed; close that "
        "work, or pass --wait-quiet SECONDS to wait for it"
    )


def check_quiet(
    feedback: Feedback,
    wait_s: float | None,
    read: Callable[[], tuple[float, float]] = host_busy,
    sleep: Callable[[float], None] = time.sleep,
    others: Callable[[], int] = lambda: 0,
) -> None:
    """Say whether the host is busy; with ``wait_s``, first wait up to that long for quiet."""
    busy, steal = read()
    waited = 0.0
    while wait_s and busy_note(busy, steal, others()) and waited < wait_s:
        if waited == 0:
            feedback.say(f"waiting up to {wait_s:g} s for a quiet host ({busy:.0f}% busy)")
        sleep(POLL_S)
        waited += POLL_S
        busy, steal = read()
    if note := busy_note(busy, steal, others()):
        feedback.say(note + (f" (waited {waited:g} s)" if waited else ""))
