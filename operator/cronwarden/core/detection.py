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
- concurrencyPolicy Forbid with a run the controller started still active at the
  slot: the controller holds the slot back on purpose. It is *skipped*, not missed:
  counted once in skippedRuns.forbid (watermark lastSkippedTime), and the run that
  holds it back may make the task Blocked (blocking.py). A run started by hand does
  not hold slots back: the controller does not wait for Jobs it did not start.
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
    skipped: list[datetime]


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


def holds_back(run: Run, when: datetime) -> bool:
    """Whether the controller, under Forbid, waited for this run at `when`: a run it
    started (it has a slot) that was active then, running or still pending."""
    return (
        run.scheduled is not None
        and run.since is not None
        and run.since <= when
        and (run.finished is None or run.finished > when)
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
    """Due slots in (watermark, now - grace] that did not start: missed, or, under
    Forbid, skipped because a run the controller started was still active."""
    due_until = now - grace
    scheduled = {r.scheduled for r in runs if r.scheduled is not None}
    missed: list[datetime] = []
    skipped: list[datetime] = []
    slots = schedule.slots(watermark, due_until, limit=MAX_SLOTS_JUDGED)
    for slot in slots:
        if slot in scheduled or (last_schedule is not None and slot <= last_schedule):
            continue
        if forbid and any(holds_back(r, slot) for r in runs):
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
    """Active runs (running, or pending since their Job was created) that have been
    active for longer than `limit`."""
    if limit is None:
        return []
    return [
        r for r in runs if r.result == "Running" and r.since is not None and now - r.since > limit
    ]


def wake_at(
    now: datetime,
    *,
    next_slot: datetime | None,
    grace: timedelta,
    success_deadline: datetime | None,
    runs: list[Run],
    run_limit: timedelta | None,
    undue_slot: datetime | None = None,
    blocked_at: list[datetime] | None = None,
) -> datetime | None:
    """The next instant at which the status must be judged again by the passing of
    time alone: the moment the earliest slot that is not due yet becomes due
    (`undue_slot`, which may lie before now when the grace is longer than the
    interval; it may be missed or skipped), the success deadline, an active run
    crossing the duration limit, or one crossing the time after which the slots it
    holds back make the task Blocked. The operator reconciles the task then, without
    waiting for a watch event.

    Not the slot itself: at the slot only nextScheduleTime would move, and the Job
    that the slot starts wakes the task a moment later anyway. One status write then
    records both (a midnight burst of N tasks would otherwise cost N more writes, all
    at once); without a Job, the slot's judgement at `slot + grace` moves it."""
    # Slots are due at an instant ("now >= s + grace"); the limits are exceeded one
    # second after theirs ("longer than"; `now` has whole seconds).
    at: list[datetime] = []
    if next_slot is not None:
        at.append((undue_slot or next_slot) + grace)
    after: list[datetime] = list(blocked_at or [])
    if success_deadline is not None:
        after.append(success_deadline)
    if run_limit is not None:
        after += [
            r.since + run_limit for r in runs if r.result == "Running" and r.since is not None
        ]
    candidates = at + [t + timedelta(seconds=1) for t in after]
    return min((c for c in candidates if c > now), default=None)
