"""A task's status as a pure function of (task, CronJob, Jobs, now).

The steps: record the runs that finished (runs.py), parse the schedule, judge
the due slots (detection.py), the runs that hold them back (blocking.py) and the
runs whose pods are refused (admission.py), set the conditions (conditions.py),
pass on the API server's warnings (apiwarnings.py), and say when the status can
next change by time alone. docs/detection.md explains the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cronwarden.api import models
from cronwarden.api.models import LastRun, ScheduledTask, ScheduledTaskStatus
from cronwarden.core import admission, apiwarnings, blocking, detection, schedule
from cronwarden.core.conditions import LATE, Blockage, Conditions, Event, Problem
from cronwarden.core.recording import (
    advance,
    claim,
    describe_unseen,
    describe_vanished,
    evidence,
    named,
    new_runs,
    past,
    unseen_success,
    vanished,
    watermark_of,
)
from cronwarden.core.runs import Run, describe, parse_time, run_of


@dataclass(frozen=True)
class Outcome:
    """What one reconcile concludes: the status to write, the Events to post once
    it is written, the runs it recorded (for metrics), and when to look again."""

    status: ScheduledTaskStatus
    events: list[Event]
    recorded: list[Run] = field(default_factory=list)
    wake_at: datetime | None = None
    oldest_active: datetime | None = None
    not_admitted: int = 0  # active runs whose pods are refused (core/admission.py)


def compute_status(
    task: ScheduledTask,
    cronjob: dict[str, Any] | None,
    jobs: list[dict[str, Any]],
    now: datetime,
    problem: Problem | None = None,
    *,
    refusals: Mapping[str, str] | None = None,
    warnings: list[str] | None = None,
) -> Outcome:
    """A pure function of (task with its previous status, CronJob, Jobs, now), plus
    what the API server said: `refusals`, the FailedCreate message of each Job (by
    uid) whose pods it refused, and `warnings`, its warnings on the CronJob's apply
    in this reconcile (None: nothing was applied)."""
    refusals = refusals or {}
    now = now.astimezone(UTC).replace(microsecond=0)
    prev = task.status
    spec = task.spec
    events: list[Event] = []

    # 1. Record the runs that finished since the watermark, and the runs whose Jobs
    #    vanished unseen (not under Replace, which stops runs on purpose: step 3).
    runs = [run_of(job) for job in jobs]
    mark = watermark_of(prev.watermark, prev.last_run)
    # A run that a success from the CronJob alone already counted is only named now.
    claimed, recorded = claim(mark, new_runs(mark, runs))
    succeeded, failed, unknown = prev.succeeded, prev.failed, prev.unknown
    consecutive = prev.consecutive_failures
    last_success, last_failure = prev.last_successful_time, prev.last_failure_time
    last_run = prev.last_run
    if claimed is not None and mark is not None:
        mark, last_run = named(mark, claimed), last_run_of(claimed)
    for run in recorded:
        assert run.finished is not None
        if run.result == "Succeeded":
            succeeded, consecutive, last_success = succeeded + 1, 0, run.finished
            events.append(Event("Normal", "RunSucceeded", describe(run)))
        else:
            failed, consecutive, last_failure = failed + 1, consecutive + 1, run.finished
            events.append(Event("Warning", "RunFailed", describe(run)))
        last_run = last_run_of(run)
    watermark = advance(mark, recorded)

    # The CronJob's own lastSuccessfulTime: the success of a run whose Job vanished,
    # or of one never seen at all, counted once (the watermark moves to it, or is
    # already past it); and the last success is never older than the CronJob says
    # (docs/detection.md). It is evidence against the watermark from before this
    # reconcile's runs: a later run recorded now does not account for it.
    cron_success = parse_time(((cronjob or {}).get("status") or {}).get("lastSuccessfulTime"))
    proof = evidence(mark, cron_success, runs) if cronjob is not None else None
    policy = models.effective_concurrency_policy(spec)
    present = {r.job for r in runs}
    gone = [job for job in prev.active if job not in present]
    created = parse_time(task.metadata.get("creationTimestamp")) or now
    if policy != "Replace" and cronjob is not None:
        for lost in vanished(gone, proof):
            if lost.result == "Succeeded":
                succeeded, consecutive = succeeded + 1, 0
                events.append(Event("Normal", "RunSucceeded", describe_vanished(lost)))
                assert lost.completion_time is not None
                watermark, proof = past(watermark, lost.completion_time, lost.job), None
            else:
                unknown += 1
                events.append(Event("Warning", "RunUnknown", describe_vanished(lost)))
            last_run = lost
    if unseen_success(proof, runs, created):
        assert proof is not None
        succeeded += 1
        events.append(Event("Normal", "RunSucceeded", describe_unseen(proof)))
        watermark = past(watermark, proof)
    if cron_success is not None and (last_success is None or cron_success > last_success):
        last_success = cron_success
        if last_failure is None or cron_success > last_failure:
            consecutive = 0

    # 2. Parse the schedule the way the CronJob controller does.
    sched: schedule.CronSchedule | None = None
    if problem is None and spec.schedule is None:
        problem = Problem("InvalidSpec", "spec.schedule is required unless spec.cronJobRef is set")
    if problem is None and spec.schedule is not None:
        try:
            sched = schedule.parse(spec.schedule, models.effective_time_zone(spec))
        except schedule.UnknownTimeZoneError as err:
            problem = Problem("UnknownTimeZone", str(err))
        except schedule.ScheduleError as err:
            problem = Problem("InvalidSpec", str(err))

    # Warn once per spec generation when daylight-saving changes skip or repeat slots.
    if sched is not None and prev.observed_generation != task.generation:
        events += [Event("Warning", "DaylightSavingTime", note) for note in sched.dst_notes(now)]

    # 3. Judge the slots that are due: missed and skipped ones are counted once each.
    cron_status = (cronjob or {}).get("status") or {}
    # The CronJob controller sets lastScheduleTime to the slot of the Job it has just
    # created, a moment after creating it: the Job's slot says the same earlier, so
    # that the write for the new Job needs no second one when the CronJob follows.
    last_schedule = max(
        (
            t
            for t in (
                parse_time(cron_status.get("lastScheduleTime")) or prev.last_schedule_time,
                *(r.scheduled for r in runs),
            )
            if t is not None
        ),
        default=None,
    )
    grace = timedelta(seconds=models.effective_grace_seconds(spec))
    missed_runs, last_missed = prev.missed_runs, prev.last_missed_time
    skipped, last_skipped = prev.skipped_runs, prev.last_skipped_time
    next_run: datetime | None = None
    judging = detection.judging(
        prev,
        schedule=spec.schedule or "",
        time_zone=models.effective_time_zone(spec),
        suspended=bool(spec.suspend),
        generation=task.generation,
        created=created,
        now=now,
    )
    if sched is not None and not spec.suspend:
        next_run = sched.next(now)
        verdict = detection.judge_slots(
            sched,
            watermark=max(
                t
                for t in (judging.since, last_schedule, last_missed, last_skipped)
                if t is not None
            ),
            last_schedule=last_schedule,
            now=now,
            grace=grace,
            forbid=policy == "Forbid",
            runs=runs,
        )
        if verdict.skipped:
            skipped = skipped.model_copy(update={"forbid": skipped.forbid + len(verdict.skipped)})
            last_skipped = verdict.skipped[-1]
        if verdict.missed:
            missed_runs += len(verdict.missed)
            last_missed = verdict.missed[-1]
            events.append(
                Event("Warning", "MissedSchedule", describe_missed(verdict.missed, grace))
            )

    # Runs that Replace stopped before they finished; a run that finishes ends the streak.
    replaced = (
        blocking.replaced(prev.active, runs) if policy == "Replace" and not spec.suspend else []
    )
    if replaced:
        skipped = skipped.model_copy(update={"replace": skipped.replace + len(replaced)})
    replaced_in_a_row = (
        0 if recorded or policy != "Replace" else prev.consecutive_replaced_runs + len(replaced)
    )

    # Blocked: slots held back (Forbid) or runs stopped (Replace) beyond the threshold.
    threshold = models.effective_blocked_after_skipped_runs(spec)
    blockage: Blockage | None = None
    blocked_at: list[datetime] = []
    if not spec.suspend and policy == "Forbid" and sched is not None:
        held_after = max(t for t in (judging.since, last_schedule) if t is not None)
        blockage = blocking.forbid(
            sched, runs, after=held_after, now=now, grace=grace, skipped=threshold
        )
        blocked_at = blocking.blocked_at(sched, runs, threshold, grace)
    elif not spec.suspend and policy == "Replace" and replaced_in_a_row >= threshold:
        blockage = blocking.replace(replaced_in_a_row, runs, last_run)
    # Runs whose pods the API server refuses, under any policy: the cause comes first.
    unadmitted = [] if spec.suspend else admission.not_admitted(runs, refusals, now, grace)
    if unadmitted:
        blockage = admission.blockage(unadmitted, now, grace)
    if not spec.suspend:
        blocked_at += admission.deadlines(runs, refusals, grace)

    # 4. Conditions.
    # Late from a missed slot until a run that started at or after it succeeds.
    was_late = any(c.type == LATE and c.status == "True" for c in prev.conditions)
    late = (
        not spec.suspend
        and last_missed is not None
        and (was_late or last_missed != prev.last_missed_time)
        and not detection.caught_up(last_missed, runs, last_run)
    )
    deadline = (
        (last_success or created) + timedelta(seconds=spec.success_deadline_seconds)
        if spec.success_deadline_seconds
        else None
    )
    run_limit = (
        timedelta(seconds=spec.max_run_duration_seconds) if spec.max_run_duration_seconds else None
    )
    overdue = detection.overdue_runs(runs, now, run_limit)
    cond = Conditions(prev.conditions, now, task.generation)
    cond.ready(problem, cronjob, events)
    cond.late(late, last_missed, grace, suspended=bool(spec.suspend))
    cond.blocked(blockage, events, suspended=bool(spec.suspend))
    limit = models.effective_max_consecutive_failures(spec)
    cond.failing(consecutive, limit, last_run)
    cond.stale(deadline, now, last_success, events)
    cond.long_running(overdue, run_limit, events)
    cond.suspended(bool(spec.suspend))
    apply_warnings, warned = apiwarnings.record(prev.apply_warnings, warnings)
    events += warned

    status = ScheduledTaskStatus(
        observed_generation=task.generation,
        cron_job_name=cronjob["metadata"]["name"] if cronjob else prev.cron_job_name,
        active=sorted(r.job for r in runs if r.result == "Running"),
        last_schedule_time=last_schedule,
        last_successful_time=last_success,
        last_failure_time=last_failure,
        last_run=last_run,
        watermark=watermark,
        next_schedule_time=next_run,
        last_missed_time=last_missed,
        missed_runs=missed_runs,
        consecutive_failures=consecutive,
        skipped_runs=skipped,
        last_skipped_time=last_skipped,
        consecutive_replaced_runs=replaced_in_a_row,
        succeeded=succeeded,
        failed=failed,
        unknown=unknown,
        judging=judging,
        apply_warnings=apply_warnings,
        conditions=cond.done(),
    )
    wake = detection.wake_at(
        now,
        next_slot=next_run,
        grace=grace,
        success_deadline=deadline,
        runs=runs,
        run_limit=run_limit,
        undue_slot=sched.next(now - grace) if sched is not None and not spec.suspend else None,
        blocked_at=blocked_at,
    )
    # Pending Jobs count from their creation: a Job that never starts is visible too.
    since = [r.since for r in runs if r.result == "Running" and r.since is not None]
    return Outcome(status, events, recorded, wake, min(since, default=None), len(unadmitted))


def last_run_of(run: Run) -> LastRun:
    return LastRun(
        job=run.job,
        scheduled_time=run.scheduled,
        start_time=run.start,
        completion_time=run.finished,
        result=run.result,
        reason=run.reason,
        trigger="Manual" if run.manual else "Scheduled",
        triggered_by=run.triggered_by,
    )


def describe_missed(slots: list[datetime], grace: timedelta) -> str:
    when = slots[-1].strftime("%Y-%m-%dT%H:%M:%SZ")
    grace_s = int(grace.total_seconds())
    if len(slots) == 1:
        return f"no Job started for the run scheduled at {when} within {grace_s}s"
    return f"{len(slots)} scheduled runs did not start (latest {when}, grace {grace_s}s)"
