"""A task's status as a pure function of (task, CronJob, Jobs, now).

Run outcomes are recorded from Jobs before history limits or TTLs delete them.
The most recent recorded run (`status.lastRun`) is the watermark: a Job that
finished after it, ordered by (finish time, name), is new and is counted once.
Because the watermark lives in status, a restarted operator recomputes the same
result from what is in the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cronwarden import models, schedule
from cronwarden.models import Condition, LastRun, ScheduledTask, ScheduledTaskStatus

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"

READY = "Ready"
FAILING = "Failing"
SUSPENDED = "Suspended"


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


def compute_status(
    task: ScheduledTask,
    cronjob: dict[str, Any] | None,
    jobs: list[dict[str, Any]],
    now: datetime,
    problem: Problem | None = None,
) -> tuple[ScheduledTaskStatus, list[Event]]:
    """The status to write, and the Events to post once it is written."""
    now = now.astimezone(UTC).replace(microsecond=0)
    prev = task.status
    spec = task.spec
    generation = task.generation
    events: list[Event] = []

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

    next_run: datetime | None = None
    if problem is None and not spec.suspend:
        try:
            next_run = schedule.parse(spec.schedule, spec.time_zone).next(now)
        except schedule.UnknownTimeZoneError as err:
            problem = Problem("UnknownTimeZone", str(err))
        except schedule.ScheduleError as err:
            problem = Problem("InvalidSpec", str(err))

    conditions: list[Condition] = []
    if problem is not None:
        ready = condition(
            prev.conditions, READY, "False", problem.reason, problem.message, now, generation
        )
        old = next((c for c in prev.conditions if c.type == READY), None)
        if old is None or (old.reason, old.message) != (problem.reason, problem.message):
            events.append(Event("Warning", problem.reason, problem.message))
    elif cronjob is None:
        ready = condition(
            prev.conditions,
            READY,
            "False",
            "CronJobMissing",
            "the CronJob does not exist yet",
            now,
            generation,
        )
    else:
        ready = condition(
            prev.conditions,
            READY,
            "True",
            "Reconciled",
            f"CronJob {cronjob['metadata']['name']} is in sync with the spec",
            now,
            generation,
        )
    conditions.append(ready)

    limit = spec.max_consecutive_failures or models.DEFAULT_MAX_CONSECUTIVE_FAILURES
    if consecutive >= limit:
        last = f"; last: {describe_last(last_run)}" if last_run else ""
        conditions.append(
            condition(
                prev.conditions,
                FAILING,
                "True",
                "ConsecutiveFailures",
                f"{consecutive} failed run(s) in a row, limit {limit}{last}",
                now,
                generation,
            )
        )
    else:
        conditions.append(
            condition(
                prev.conditions,
                FAILING,
                "False",
                "BelowFailureLimit",
                f"{consecutive} failed run(s) in a row, limit {limit}",
                now,
                generation,
            )
        )

    if spec.suspend:
        suspended = condition(
            prev.conditions,
            SUSPENDED,
            "True",
            "SuspendedBySpec",
            "spec.suspend is true: no new runs start",
            now,
            generation,
        )
    else:
        suspended = condition(
            prev.conditions,
            SUSPENDED,
            "False",
            "NotSuspended",
            "runs start on schedule",
            now,
            generation,
        )
    conditions.append(suspended)
    # Conditions owned by later stages (Late, Stale) are kept as they are.
    known = {c.type for c in conditions}
    conditions.extend(c for c in prev.conditions if c.type not in known)

    cron_status = (cronjob or {}).get("status") or {}
    status = ScheduledTaskStatus(
        observed_generation=generation,
        cron_job_name=cronjob["metadata"]["name"] if cronjob else prev.cron_job_name,
        active=sorted(r.job for r in runs if r.result == "Running"),
        last_schedule_time=parse_time(cron_status.get("lastScheduleTime"))
        or prev.last_schedule_time,
        last_successful_time=last_success,
        last_failure_time=last_failure,
        last_run=last_run,
        next_schedule_time=next_run,
        last_missed_time=prev.last_missed_time,
        missed_runs=prev.missed_runs,
        consecutive_failures=consecutive,
        succeeded=succeeded,
        failed=failed,
        conditions=conditions,
    )
    return status, events


def describe_last(run: LastRun) -> str:
    what = "succeeded" if run.result == "Succeeded" else "failed"
    return f"Job {run.job} {what}" + (f" ({run.reason})" if run.reason else "")
