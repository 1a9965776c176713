"""A task's status as a pure function of (task, CronJob, Jobs, now).

Run outcomes are recorded from Jobs before history limits or TTLs delete them.
The most recent recorded run (`status.lastRun`) is the watermark: a Job that
finished after it, ordered by (finish time, name), is new and is counted once.
Because the watermark lives in status, a restarted operator recomputes the same
result from what is in the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from cronwarden import detection, models, schedule
from cronwarden.models import Condition, LastRun, ScheduledTask, ScheduledTaskStatus

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"

READY = "Ready"
LATE = "Late"
FAILING = "Failing"
STALE = "Stale"
LONG_RUNNING = "LongRunning"
SUSPENDED = "Suspended"

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """Why the CronJob could not be brought in sync (Ready=False)."""

    reason: str
    message: str


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Run:
    """What one Job says about one run."""

    job: str
    scheduled: datetime | None
    start: datetime | None
    finished: datetime | None
    result: Literal["Running", "Succeeded", "Failed"]
    reason: str | None = None
    message: str | None = None

    @property
    def order(self) -> tuple[datetime, str]:
        assert self.finished is not None
        return (self.finished, self.job)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def run_of(job: dict[str, Any]) -> Run:
    meta = job.get("metadata", {})
    status = job.get("status") or {}
    annotations = meta.get("annotations") or {}
    scheduled = parse_time(annotations.get(SCHEDULED_TIMESTAMP_ANNOTATION))
    start = parse_time(status.get("startTime"))
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            finished = parse_time(status.get("completionTime") or cond.get("lastTransitionTime"))
            return Run(meta["name"], scheduled, start, finished, "Succeeded")
        if cond.get("type") == "Failed":
            return Run(
                meta["name"],
                scheduled,
                start,
                parse_time(cond.get("lastTransitionTime")),
                "Failed",
                cond.get("reason"),
                cond.get("message"),
            )
    return Run(meta["name"], scheduled, start, None, "Running")


def new_runs(previous: LastRun | None, runs: list[Run]) -> list[Run]:
    """Finished runs after the watermark, oldest first."""
    finished = sorted((r for r in runs if r.finished is not None), key=lambda r: r.order)
    if previous is None or previous.completion_time is None:
        return finished
    mark = (previous.completion_time, previous.job)
    return [r for r in finished if r.order > mark]


def condition(
    previous: list[Condition],
    type_: str,
    status: Literal["True", "False", "Unknown"],
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> Condition:
    """A condition whose lastTransitionTime moves only when its status changes."""
    old = next((c for c in previous if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == status else now
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )


def describe(run: Run) -> str:
    took = ""
    if run.start is not None and run.finished is not None:
        took = f" after {int((run.finished - run.start).total_seconds())}s"
    if run.result == "Succeeded":
        return f"Job {run.job} succeeded{took}"
    detail = ": ".join(p for p in (run.reason, run.message) if p)
    return f"Job {run.job} failed{took}" + (f": {detail}" if detail else "")


@dataclass(frozen=True)
class Outcome:
    """What one reconcile concludes: the status to write, the Events to post once
    it is written, the runs it recorded (for metrics), and when to look again."""

    status: ScheduledTaskStatus
    events: list[Event]
    recorded: list[Run] = field(default_factory=list)
    wake_at: datetime | None = None
    oldest_active: datetime | None = None


def compute_status(
    task: ScheduledTask,
    cronjob: dict[str, Any] | None,
    jobs: list[dict[str, Any]],
    now: datetime,
    problem: Problem | None = None,
) -> Outcome:
    """A pure function of (task with its previous status, CronJob, Jobs, now)."""
    now = now.astimezone(UTC).replace(microsecond=0)
    prev = task.status
    spec = task.spec
    events: list[Event] = []

    # 1. Record the runs that finished since the last recorded one.
    runs = [run_of(job) for job in jobs]
    recorded = new_runs(prev.last_run, runs)
    succeeded, failed = prev.succeeded, prev.failed
    consecutive = prev.consecutive_failures
    last_success, last_failure = prev.last_successful_time, prev.last_failure_time
    last_run = prev.last_run
    for run in recorded:
        assert run.finished is not None
        if run.result == "Succeeded":
            succeeded, consecutive, last_success = succeeded + 1, 0, run.finished
            events.append(Event("Normal", "RunSucceeded", describe(run)))
        else:
            failed, consecutive, last_failure = failed + 1, consecutive + 1, run.finished
            events.append(Event("Warning", "RunFailed", describe(run)))
        last_run = LastRun(
            job=run.job,
            scheduled_time=run.scheduled,
            start_time=run.start,
            completion_time=run.finished,
            result=run.result,
            reason=run.reason,
        )

    # 2. Parse the schedule the way the CronJob controller does.
    sched: schedule.CronSchedule | None = None
    if problem is None:
        try:
            sched = schedule.parse(spec.schedule, spec.time_zone)
        except schedule.UnknownTimeZoneError as err:
            problem = Problem("UnknownTimeZone", str(err))
        except schedule.ScheduleError as err:
            problem = Problem("InvalidSpec", str(err))

    # Warn once per spec generation when daylight-saving changes skip or repeat slots.
    if sched is not None and prev.observed_generation != task.generation:
        events += [Event("Warning", "DaylightSavingTime", note) for note in sched.dst_notes(now)]

    # 3. Judge the slots that are due: missed ones are counted once each.
    cron_status = (cronjob or {}).get("status") or {}
    last_schedule = parse_time(cron_status.get("lastScheduleTime")) or prev.last_schedule_time
    created = parse_time(task.metadata.get("creationTimestamp")) or now
    grace = timedelta(
        seconds=_or(spec.missed_run_grace_seconds, models.DEFAULT_MISSED_RUN_GRACE_SECONDS)
    )
    missed_runs, last_missed = prev.missed_runs, prev.last_missed_time
    next_run: datetime | None = None
    if sched is not None and not spec.suspend:
        next_run = sched.next(now)
        verdict = detection.judge_slots(
            sched,
            watermark=max(
                t
                for t in (created, last_schedule, last_missed, resumed_at(prev.conditions, now))
                if t is not None
            ),
            last_schedule=last_schedule,
            now=now,
            grace=grace,
            forbid=_or(spec.concurrency_policy, models.DEFAULT_CONCURRENCY_POLICY) == "Forbid",
            runs=runs,
        )
        if verdict.missed:
            missed_runs += len(verdict.missed)
            last_missed = verdict.missed[-1]
            events.append(
                Event("Warning", "MissedSchedule", describe_missed(verdict.missed, grace))
            )

    # 4. Conditions.
    late = (
        not spec.suspend
        and last_missed is not None
        and (last_schedule is None or last_missed > last_schedule)
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
    cond.late(late, last_missed, grace)
    limit = _or(spec.max_consecutive_failures, models.DEFAULT_MAX_CONSECUTIVE_FAILURES)
    cond.failing(consecutive, limit, last_run)
    cond.stale(deadline, now, last_success, events)
    cond.long_running(overdue, run_limit, events)
    cond.suspended(bool(spec.suspend))

    status = ScheduledTaskStatus(
        observed_generation=task.generation,
        cron_job_name=cronjob["metadata"]["name"] if cronjob else prev.cron_job_name,
        active=sorted(r.job for r in runs if r.result == "Running"),
        last_schedule_time=last_schedule,
        last_successful_time=last_success,
        last_failure_time=last_failure,
        last_run=last_run,
        next_schedule_time=next_run,
        last_missed_time=last_missed,
        missed_runs=missed_runs,
        consecutive_failures=consecutive,
        succeeded=succeeded,
        failed=failed,
        conditions=cond.done(),
    )
    wake = detection.wake_at(
        now,
        next_slot=next_run,
        grace=grace,
        success_deadline=deadline,
        runs=runs,
        run_limit=run_limit,
    )
    starts = [r.start for r in runs if r.result == "Running" and r.start is not None]
    return Outcome(status, events, recorded, wake, min(starts, default=None))


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def resumed_at(conditions: list[Condition], now: datetime) -> datetime | None:
    """When the (not suspended) task was last resumed: slots before it are not
    judged, so a suspension is not reported as missed runs. Called while the task
    is not suspended: if the previous status says it was, it is being resumed now."""
    suspended = next((c for c in conditions if c.type == SUSPENDED), None)
    if suspended is None:
        return None
    return now if suspended.status == "True" else suspended.last_transition_time


def describe_missed(slots: list[datetime], grace: timedelta) -> str:
    when = slots[-1].strftime("%Y-%m-%dT%H:%M:%SZ")
    grace_s = int(grace.total_seconds())
    if len(slots) == 1:
        return f"no Job started for the run scheduled at {when} within {grace_s}s"
    return f"{len(slots)} scheduled runs did not start (latest {when}, grace {grace_s}s)"


class Conditions:
    """Builds the condition list; lastTransitionTime moves only on a status change,
    and warnings are posted on the transition to the bad state."""

    def __init__(self, previous: list[Condition], now: datetime, generation: int) -> None:
        self.previous = previous
        self.now = now
        self.generation = generation
        self.out: list[Condition] = []

    def set(self, type_: str, status: bool, reason: str, message: str) -> bool:
        """Add one condition; returns whether it just turned True."""
        value: Literal["True", "False"] = "True" if status else "False"
        old = next((c for c in self.previous if c.type == type_), None)
        self.out.append(
            condition(self.previous, type_, value, reason, message, self.now, self.generation)
        )
        return status and (old is None or old.status != "True")

    def ready(
        self, problem: Problem | None, cronjob: dict[str, Any] | None, events: list[Event]
    ) -> None:
        if problem is not None:
            old = next((c for c in self.previous if c.type == READY), None)
            self.set(READY, False, problem.reason, problem.message)
            if old is None or (old.reason, old.message) != (problem.reason, problem.message):
                events.append(Event("Warning", problem.reason, problem.message))
        elif cronjob is None:
            self.set(READY, False, "CronJobMissing", "the CronJob does not exist yet")
        else:
            name = cronjob["metadata"]["name"]
            self.set(READY, True, "Reconciled", f"CronJob {name} is in sync with the spec")

    def late(self, late: bool, last_missed: datetime | None, grace: timedelta) -> None:
        if late and last_missed is not None:
            when = last_missed.strftime("%Y-%m-%dT%H:%M:%SZ")
            self.set(
                LATE,
                True,
                "MissedSchedule",
                f"the run scheduled at {when} did not start within {int(grace.total_seconds())}s",
            )
        else:
            self.set(LATE, False, "OnSchedule", "every due run has started")

    def failing(self, consecutive: int, limit: int, last_run: LastRun | None) -> None:
        message = f"{consecutive} failed run(s) in a row, limit {limit}"
        if consecutive >= limit:
            last = f"; last: {describe_last(last_run)}" if last_run else ""
            self.set(FAILING, True, "ConsecutiveFailures", message + last)
        else:
            self.set(FAILING, False, "BelowFailureLimit", message)

    def stale(
        self,
        deadline: datetime | None,
        now: datetime,
        last_success: datetime | None,
        events: list[Event],
    ) -> None:
        if deadline is None:
            self.set(STALE, False, "NoSuccessDeadline", "spec.successDeadlineSeconds is not set")
            return
        since = (
            "never succeeded"
            if last_success is None
            else "last success at " + (last_success.strftime("%Y-%m-%dT%H:%M:%SZ"))
        )
        if now > deadline:
            message = f"no successful run within the success deadline ({since})"
            if self.set(STALE, True, "SuccessDeadlineExceeded", message):
                events.append(Event("Warning", "SuccessDeadlineExceeded", message))
        else:
            self.set(STALE, False, "WithinSuccessDeadline", f"{since}")

    def long_running(
        self, overdue: list[Run], limit: timedelta | None, events: list[Event]
    ) -> None:
        if overdue and limit is not None:
            jobs = ", ".join(r.job for r in overdue)
            message = f"running longer than {int(limit.total_seconds())}s: {jobs}"
            if self.set(LONG_RUNNING, True, "RunTooLong", message):
                events.append(Event("Warning", "RunTooLong", message))
        else:
            self.set(LONG_RUNNING, False, "WithinDuration", "no run is over its duration limit")

    def suspended(self, suspended: bool) -> None:
        if suspended:
            self.set(SUSPENDED, True, "SuspendedBySpec", "spec.suspend is true: no new runs start")
        else:
            self.set(SUSPENDED, False, "NotSuspended", "runs start on schedule")

    def done(self) -> list[Condition]:
        return self.out


def describe_last(run: LastRun) -> str:
    what = "succeeded" if run.result == "Succeeded" else "failed"
    return f"Job {run.job} {what}" + (f" ({run.reason})" if run.reason else "")
