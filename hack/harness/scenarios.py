"""The chaos scenarios, one function each: which faults, and when. Each takes the run
and the number of repetitions (the full run's count, or 1 with --small)."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.chaosrun import ChaosRun


def operator_kill(run: ChaosRun, times: int) -> None:
    """kill -9 of the operator at random moments, half of them just after a minute
    boundary (while the per-minute runs finish), restarted after 0-5 s as a
    Deployment's pod would be. The fault lasts until the new process is live."""
    for i in range(times):
        if i % 2 == 0:
            at = run.next_minute(run.rng.uniform(0.5, 4.0))
        else:
            at = run.rng.uniform(5, 40) + time.time()
        run.wait_until(at)
        with run.fault(f"kill-{i + 1}"):
            run.kill_operator()
            run.wait_until(time.time() + run.rng.uniform(0, 5))
            run.restart_operator()
        run.settle()


# name -> (scenario, repetitions in the full run)
SCENARIOS: dict[str, tuple[Callable[[ChaosRun, int], None], int]] = {
    "operator-kill": (operator_kill, 20),
}
