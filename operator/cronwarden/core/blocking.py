"""When a task is Blocked: its slots do not run, or do not finish, because of an
earlier run. Pure functions of their inputs, `now` included (docs/detection.md).

- Forbid: the CronJob controller starts no run while one it started is active, and
  holds the due slots back. A run that by design takes a little longer than the
  schedule's interval skips every other slot and is fine; a run that hangs (or whose
  Job never finishes because kube-controller-manager is down) holds back every
  slot. The line between them is time, measured from the run itself: the task is
  Blocked when a due slot is held back by a run that has been active (running, or
  pending since its Job was created) for longer than N schedule intervals, counted
  from the run's own slot, plus missedRunGraceSeconds (N = blockedAfterSkippedRuns,
  default 1). A run shorter than that is never Blocked, however many slots it skips;
  a run that never ends is Blocked when the N-th slot after it is due, plus its own
  start delay.
- Replace: the controller stops the active run to start the next slot. The task is
  Blocked when N runs in a row were stopped before they finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cronwarden.api.models import LastRun
from cronwarden.core.conditions import Blockage
from cronwarden.core.runs import Run
from cronwarden.core.schedule import CronSchedule

# The held-back slots named in the message are counted up to this many (then "100+"):
# walking a week of per-minute slots on every reconcile would cost a second each time.
# skippedRuns.forbid keeps the exact count.
HELD_SLOTS_COUNTED = 100


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Holder:
    """An active run the controller started (it has a slot): under Forbid, the
    controller starts nothing while it is active."""

    run: Run
    slot: datetime
    since: datetime

    @property
    def state(self) -> str:
        return "running" if self.run.start is not None else "pending (its Job has not started)"


def holders(runs: list[Run]) -> list[Holder]:
    out = [
        Holder(r, r.scheduled, r.since)
        for r in runs
        if r.result == "Running" and r.scheduled is not None and r.since is not None
    ]
    return sorted(out, key=lambda h: (h.since, h.run.job))


def allowance(
    schedule: CronSchedule, holder: Holder, skipped: int, grace: timedelta
) -> timedelta | None:
    """How long a run may be active before the slots it holds back make the task
    Blocked: `skipped` schedule intervals counted from the run's own slot, plus the
    grace. None when the schedule does not fire again."""
    t = holder.slot
    for _ in range(skipped):
        following = schedule.next(t)
        if following is None:
            return None
        t = following
    return t - holder.slot + grace


def blocked_at(
    schedule: CronSchedule, runs: list[Run], skipped: int, grace: timedelta
) -> list[datetime]:
    """When each active run crosses its allowance (for the wake-up timer)."""
    out = []
    for holder in holders(runs):
        limit = allowance(schedule, holder, skipped, grace)
        if limit is not None:
            out.append(holder.since + limit)
    return out


def forbid(
    schedule: CronSchedule,
    runs: list[Run],
    *,
    after: datetime,
    now: datetime,
    grace: timedelta,
    skipped: int,
) -> Blockage | None:
    """Blocked under Forbid: a due slot after `after` with no Job is held back by a run
    that has been active for longer than its allowance."""
    met = {r.scheduled for r in runs if r.scheduled is not None}
    for holder in holders(runs):
        limit = allowance(schedule, holder, skipped, grace)
        if limit is None or now - holder.since <= limit:
            continue
        start = max(holder.since, after)
        due = schedule.slots(start, now - grace, limit=HELD_SLOTS_COUNTED)
        held = [s for s in due if s not in met]
        if not held:
            continue
        count = f"{len(held)}{'+' if len(due) == HELD_SLOTS_COUNTED else ''}"
        return Blockage(
            "RunStillActive",
            f"Job {holder.run.job} (the run for {stamp(holder.slot)}) has been "
            f"{holder.state} since {stamp(holder.since)}, longer than {skipped} schedule "
            f"interval(s) plus the {int(grace.total_seconds())}s grace, and holds back "
            f"{count} due slot(s) since {stamp(held[0])}: concurrencyPolicy Forbid starts "
            "no run while it is active",
        )
    return None


def replaced(previously_active: list[str], runs: list[Run]) -> list[str]:
    """Runs that were active at the last reconcile and are gone without finishing:
    under Replace the controller deleted them to start the next slot."""
    present = {r.job for r in runs}
    return [job for job in previously_active if job not in present]


def replace(consecutive: int, runs: list[Run], last_run: LastRun | None) -> Blockage:
    """Blocked under Replace: `consecutive` runs in a row were stopped before they
    finished."""
    active = holders(runs)
    current = ""
    if active:
        newest = active[-1]
        current = (
            f"; the current run, Job {newest.run.job}, has been {newest.state} since "
            f"{stamp(newest.since)}"
        )
    if last_run is not None and last_run.completion_time is not None:
        last = f"; the last run that finished ended at {stamp(last_run.completion_time)}"
    else:
        last = "; no run has finished yet"
    return Blockage(
        "RunsReplaced",
        f"{consecutive} run(s) in a row were stopped before they finished by "
        f"concurrencyPolicy Replace{current}{last}",
    )
