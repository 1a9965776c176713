"""Status conditions, following the Kubernetes API conventions: lastTransitionTime
moves only when a condition's status changes, and warnings are posted as Events
on the transition to the bad state, once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cronwarden.api.models import Condition, LastRun
from cronwarden.core.runs import Run, describe_last

READY = "Ready"
# kstatus (Flux, kubectl wait, cli-utils) reads these abnormal-true conditions.
RECONCILING = "Reconciling"
STALLED = "Stalled"
LATE = "Late"
BLOCKED = "Blocked"
FAILING = "Failing"
STALE = "Stale"
LONG_RUNNING = "LongRunning"
SUSPENDED = "Suspended"


@dataclass(frozen=True)
class Problem:
    """Why the CronJob could not be brought in sync (Ready=False)."""

    reason: str
    message: str


@dataclass(frozen=True)
class Blockage:
    """Why earlier runs keep the task's slots from running (Blocked=True)."""

    reason: Literal["RunStillActive", "RunsReplaced", "PodsNotAdmitted"]
    message: str


@dataclass(frozen=True)
class Event:
    """An Event to post on the task. Repeats of one reason are aggregated into one
    Event object; `distinct` Events are aggregated per (reason, message) instead, so
    that different texts under one reason are each kept."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    distinct: bool = False


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


# Problems with the task's own spec: the CronJob, if one was applied before, stays.
SPEC_PROBLEMS = ("UnknownTimeZone", "InvalidSpec")


def still_running(problem: Problem, cronjob: dict[str, Any] | None) -> str:
    """What happens to the runs of a task whose spec turned invalid after a CronJob
    was applied: the CronJob is neither changed nor deleted, so it keeps starting
    runs on the spec it was last applied with (docs/detection.md). Said in the
    Ready message, so that nobody takes Ready=False for "nothing runs"."""
    if cronjob is None or problem.reason not in SPEC_PROBLEMS:
        return ""
    name = cronjob["metadata"]["name"]
    spec = cronjob.get("spec") or {}
    applied = ", ".join(
        f'{field} "{spec[field]}"' for field in ("schedule", "timeZone") if spec.get(field)
    )
    return (
        f"; CronJob {name} keeps running on the spec it was last applied with"
        + (f" ({applied})" if applied else "")
        + " until the task is fixed or deleted"
    )


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
        """Ready, and the kstatus pair: a problem the operator cannot fix by retrying
        (an invalid spec, a CronJob it does not own, a refused namespace) is Stalled;
        a CronJob still being created is Reconciling."""
        if problem is not None:
            message = problem.message + still_running(problem, cronjob)
            old = next((c for c in self.previous if c.type == READY), None)
            self.set(READY, False, problem.reason, message)
            if old is None or (old.reason, old.message) != (problem.reason, message):
                events.append(Event("Warning", problem.reason, message))
            self.set(
                RECONCILING, False, problem.reason, "waiting for the spec or cluster to change"
            )
            self.set(STALLED, True, problem.reason, message)
        elif cronjob is None:
            self.set(READY, False, "CronJobMissing", "the CronJob does not exist yet")
            self.set(RECONCILING, True, "CronJobMissing", "creating the CronJob")
            self.set(STALLED, False, "Progressing", "nothing blocks reconciliation")
        else:
            name = cronjob["metadata"]["name"]
            self.set(READY, True, "Reconciled", f"CronJob {name} is in sync with the spec")
            self.set(RECONCILING, False, "Reconciled", f"CronJob {name} is in sync with the spec")
            self.set(STALLED, False, "Reconciled", "nothing blocks reconciliation")

    def late(
        self, late: bool, last_missed: datetime | None, grace: timedelta, *, suspended: bool
    ) -> None:
        if suspended:
            self.set(LATE, False, "Suspended", "spec.suspend is true: slots are not judged")
        elif late and last_missed is not None:
            when = last_missed.strftime("%Y-%m-%dT%H:%M:%SZ")
            self.set(
                LATE,
                True,
                "MissedSchedule",
                f"the run scheduled at {when} did not start within "
                f"{int(grace.total_seconds())}s, and no run started since has succeeded",
            )
        else:
            self.set(
                LATE,
                False,
                "OnSchedule",
                "every due run started, or a run that started after the last missed one succeeded",
            )

    def blocked(self, blockage: Blockage | None, events: list[Event], *, suspended: bool) -> None:
        if suspended:
            self.set(BLOCKED, False, "Suspended", "spec.suspend is true: slots are not judged")
        elif blockage is not None and blockage.reason == "PodsNotAdmitted":
            # Once per episode of refused pods, also when the task was Blocked already.
            old = next((c for c in self.previous if c.type == BLOCKED), None)
            self.set(BLOCKED, True, blockage.reason, blockage.message)
            if old is None or (old.status, old.reason) != ("True", blockage.reason):
                events.append(Event("Warning", "PodsNotAdmitted", blockage.message))
        elif blockage is not None:
            if self.set(BLOCKED, True, blockage.reason, blockage.message):
                events.append(Event("Warning", "Blocked", blockage.message))
        else:
            self.set(BLOCKED, False, "NotBlocked", "no earlier run is keeping slots from running")

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
