"""Stalls of the operator's own process: the event loop did not run for a while.

A process can be frozen (SIGSTOP, a cgroup freezer, a paused VM) or starved of CPU.
The monotonic clock runs on meanwhile, so the first thing the process does when it
runs again is act on a view of the cluster that is as old as the stall: timers that
fell due meanwhile (a slot's grace ending) fire at once, while the watch events of
what happened meanwhile are still unread in sockets, or lost with connections that
the API server closed. A task judged in that moment sees its slot pass without the
Job that the CronJob controller did create: a false `Late`, a `missedRuns` count and
a `MissedSchedule` Event that stay (README, "Reliability", D3).

So the engine (runtime/engine.py) beats this clock on its event loop: once a second
on a timer, and before each reconcile reads the cache. A beat that finds the last
one more than STALL_SECONDS ago reports a stall; the engine then holds reconciles
back and audits the cache at once (a complete listing, runtime/audit.py), as it
does at the start of a term, and reconciles every task once that audit is
complete. A reconcile whose view was read before a stall that began while it ran
in its worker thread is refused at its status write (`fresh`), and comes back.

Five seconds is long for an event loop (its longest work between two awaits is
parsing one page of a listing, well under a second) and short against the
smallest grace a task has in practice (tens of seconds): a stall shorter than the
grace cannot make a slot look missed, since its Job's events are read within
moments of the process running again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

STALL_SECONDS = 5.0
# How often the engine beats while it is active.
TICK_SECONDS = 1.0


class Stalls:
    """Counts the gaps between beats longer than `threshold` seconds. `beat` is called
    on the event loop only; `fresh` may be called from any thread."""

    def __init__(
        self, threshold: float = STALL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.clock = clock
        self.last = clock()
        self.count = 0  # stalls seen so far

    def beat(self) -> float | None:
        """The loop runs now: the length of the gap since the last beat when it was
        a stall (it is counted), else None."""
        now = self.clock()
        gap, self.last = now - self.last, now
        if gap > self.threshold:
            self.count += 1
            return gap
        return None

    def restart(self) -> None:
        """Beats resume after a pause on purpose (a new term): no stall."""
        self.last = self.clock()

    def fresh(self, count: int) -> bool:
        """Whether what was read when `count` stalls had been seen is still current: no
        stall was seen since, and none is going on (the loop has not beaten for longer
        than the threshold: the process has just run again and its loop has not yet)."""
        return self.count == count and self.clock() - self.last <= self.threshold
