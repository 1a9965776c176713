"""Time-driven judgements on a task: missed slots, staleness, overlong runs, and
when to look again. Pure functions of their inputs, `now` included.

How a slot is judged (docs/detection.md):
- A slot s is due once now >= s + missedRunGraceSeconds. It is *met* when the
  CronJob controller started a Job for it (its scheduled-timestamp annotation is
  s, so lastScheduleTime >= s).
- Only slots after the watermark are judged: the latest of the CronJob's
  lastScheduleTime, the last missed slot already counted, and `status.judging.since`
  (the task's creation, the last observed change of schedule or time zone, the
  last resume). Slots at or before it were met, counted, or belong to a schedule
  that no longer applies, so each missed slot is counted once, Jobs deleted by
  history limits cannot make old slots look missed, and a schedule edit never
  judges the new schedule's slots before the edit.
- Suspended: no slot is due; slots that passed while suspended are not missed.
- concurrencyPolicy Forbid with a run still active at the slot: the controller
  skips the slot on purpose; it is not counted as missed (the overlong-run alert
  covers a run that blocks its successors).
- startingDeadlineSeconds exceeded (for example while kube-controller-manager
  is down): the slot is missed, and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cronwarden.api.models import Judging, LastRun, ScheduledTaskStatus
from cronwarden.core.conditions import SUSPENDED
from cronwarden.core.runs import Run
from cronwarden.core.schedule import CronSchedule

# A task can miss more slots than are worth walking one by one (a per-minute
# schedule during a week of downtime); beyond this the count stops growing.
MAX_SLOTS_JUDGED = 10_000


@dataclass(frozen=True)
class SlotVerdict:
    missed: list[datetime]
    skipped_forbid: list[datetime]


def judging(
    prev: ScheduledTaskStatus,
    *,
    schedule: str,
    time_zone: str,
    suspended: bool,
    generation: int,
    created: datetime,
    now: datetime,
) -> Judging:
    """The schedule that slots are judged against, and since when (status.judging).

    `since` moves to `now` when the operator observes a new schedule or time zone, or
    the task being resumed, and stays put otherwise; it lives in status, so a restart
    keeps it. Other edits (owner, limits, the job template) leave it alone, so they
    cannot hide a slot that is about to become due."""
    was_suspended = any(c.type == SUSPENDED and c.status == "True" for c in prev.conditions)
    old = prev.judging
    if old is None:
        since = _since_unrecorded(prev, generation, created, now)
    elif (old.schedule, old.time_zone) != (schedule, time_zone) or (
        was_suspended and not suspended
    ):
        since = now
    else:
        since = old.since
    return Judging(schedule=schedule, time_zone=time_zone, since=since)


def _since_unrecorded(
    prev: ScheduledTaskStatus, generation: int, created: datetime, now: datetime
) -> datetime:
    """`since` for a new task, or a status written before status.judging existed."""
    if prev.observed_generation is None:
        return created
    if prev.observed_generation != generation:
        return now  # an edit the previous version did not see: it may be the schedule
    suspended = next((c for c in prev.conditions if c.type == SUSPENDED), None)
    if suspended is None:
        return created
    if suspended.status == "True":
        return now
    return max(created, suspended.last_transition_time)


def active_at(runs: list[Run], when: datetime) -> bool:
    """Whether some run had started by `when` and had not finished before it."""
    return any(
        r.start is not None and r.start <= when and (r.finished is None or r.finished > when)
        for r in runs
    )


def judge_slots(
    schedule: CronSchedule,
    *,
    watermark: datetime,
    last_schedule: datetime | None,
    now: datetime,
    grace: timedelta,
    forbid: bool,
    runs: list[Run],
) -> SlotVerdict:
    """Missed (and Forbid-skipped) slots in (watermark, now - grace]."""
    due_until = now - grace
    scheduled = {r.scheduled for r in runs if r.scheduled is not None}
    missed: list[datetime] = []
    skipped: list[datetime] = []
    slots = schedule.slots(watermark, due_until, limit=MAX_SLOTS_JUDGED)
    for slot in slots:
        if slot in scheduled or (last_schedule is not None and slot <= last_schedule):
            continue
        if forbid and active_at(runs, slot):
            skipped.append(slot)
        else:
            missed.append(slot)
    return SlotVerdict(missed, skipped)


def caught_up(missed: datetime, runs: list[Run], last_run: LastRun | None) -> bool:
    """Whether the work of the missed slot is done: a run (scheduled or started by
    hand) that started at or after the slot succeeded. The Jobs still present are
    checked, and the last recorded run, whose Job may already be gone."""
    if (
        last_run is not None
        and last_run.result == "Succeeded"
        and last_run.start_time is not None
        and last_run.start_time >= missed
    ):
        return True
    return any(r.result == "Succeeded" and r.since is not None and r.since >= missed for r in runs)


def overdue_runs(runs: list[Run], now: datetime, limit: timedelta | None) -> list[Run]:
    """Active runs that have been running for longer than `limit`."""
    if limit is None:
        return []
    return [
        r for r in runs if r.result == "Running" and r.start is not None and now - r.start > limit
    ]


def wake_at(
    now: datetime,
    *,
    next_slot: datetime | None,
    grace: timedelta,
    success_deadline: datetime | None,
    runs: list[Run],
    run_limit: timedelta | None,
) -> datetime | None:
    """The next instant at which the status can change by the passing of time alone:
    the next slot (nextScheduleTime moves), the moment it becomes due (it may be
    missed), the success deadline, or an active run crossing the duration limit.
    The operator reconciles the task then, without waiting for a watch event."""
    candidates: list[datetime] = []
    if next_slot is not None:
        candidates += [next_slot, next_slot + grace]
    if success_deadline is not None:
        candidates.append(success_deadline)
    if run_limit is not None:
        candidates += [
            r.start + run_limit for r in runs if r.result == "Running" and r.start is not None
        ]
    future = [c for c in candidates if c > now]
    return min(future) + timedelta(seconds=1) if future else None
