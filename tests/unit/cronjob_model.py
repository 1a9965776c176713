"""A small, deterministic model of the CronJob and Job controllers under
concurrencyPolicy Forbid, for table tests that replay hours of a task in
milliseconds. It follows pkg/controller/cronjob: at each slot a Job starts unless
one the controller started is still active; when that run ends, the controller
starts the most recent slot it has not started yet if that slot is no older than
startingDeadlineSeconds. When kube-controller-manager is down (from `down_at`),
neither controller acts: no Job starts, and no Job is marked finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cronwarden.core import schedule
from cronwarden.core.status import Outcome, compute_status
from tests.unit.factories import job, task

STARTING_DEADLINE = timedelta(seconds=300)
START_DELAY = timedelta(seconds=1)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SimJob:
    slot: datetime
    created: datetime
    start: datetime | None  # None: pending forever
    end: datetime | None  # None: never finishes

    @property
    def name(self) -> str:
        return f"backup-{int(self.slot.timestamp()) // 60}"

    def seen_at(self, now: datetime) -> dict[str, Any]:
        """The Job as the API server returns it at `now`."""
        started = self.start is not None and self.start <= now
        done = self.end is not None and self.end <= now
        return job(
            self.name,
            scheduled=stamp(self.slot),
            created=stamp(self.created),
            start=stamp(self.start) if started and self.start else None,
            complete=stamp(self.end) if done and self.end else None,
        )


def forbid_controller(
    expression: str,
    *,
    begin: datetime,
    until: datetime,
    duration: Callable[[datetime], timedelta | None],
    down_at: datetime | None = None,
    pending: bool = False,
) -> list[SimJob]:
    """The Jobs the controllers create for slots in (begin, until]. `duration(slot)` is
    how long that run takes (None: it never ends)."""
    sched = schedule.parse(expression)
    slots = sched.slots(begin, until, limit=100_000)

    def alive(t: datetime) -> bool:
        return down_at is None or t < down_at

    def launch(slot: datetime, at: datetime) -> SimJob:
        start = None if pending else at + START_DELAY
        took = duration(slot)
        end = start + took if start is not None and took is not None else None
        if end is not None and not alive(end):
            end = None
        return SimJob(slot, at, start, end)

    jobs: list[SimJob] = []
    active: SimJob | None = None
    last_started = begin
    i = 0
    while i < len(slots) or (active is not None and active.end is not None):
        slot = slots[i] if i < len(slots) else None
        if active is not None and active.end is not None and (slot is None or active.end < slot):
            ended, active = active.end, None
            unstarted = [s for s in slots if last_started < s <= ended]
            if unstarted and ended - unstarted[-1] <= STARTING_DEADLINE:
                active = launch(unstarted[-1], ended)
                jobs.append(active)
                last_started = unstarted[-1]
            continue
        if slot is None:
            break
        i += 1
        if alive(slot) and active is None:
            active = launch(slot, slot)
            jobs.append(active)
            last_started = slot
    return jobs


def operate(
    spec: dict[str, Any],
    jobs: list[SimJob],
    *,
    begin: datetime,
    until: datetime,
    created: datetime,
) -> list[tuple[datetime, Outcome]]:
    """Reconcile as the operator does: on every Job change (creation, start, finish)
    and at each wake-up time the previous reconcile asked for; the status is read
    back from the API server each time. Returns each reconcile's instant and outcome."""
    changes = sorted({t for j in jobs for t in (j.created, j.start, j.end) if t is not None})
    status: dict[str, Any] | None = None
    now = begin
    out: list[tuple[datetime, Outcome]] = []
    while now <= until:
        seen = [j for j in jobs if j.created <= now]
        cronjob: dict[str, Any] = {"metadata": {"name": "backup"}, "status": {}}
        if seen:
            cronjob["status"]["lastScheduleTime"] = stamp(max(j.slot for j in seen))
        body = task(spec, status, creationTimestamp=stamp(created))
        outcome = compute_status(body, cronjob, [j.seen_at(now) for j in seen], now)
        out.append((now, outcome))
        status = outcome.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        following = [t for t in changes if t > now]
        if outcome.wake_at is not None:
            following.append(outcome.wake_at)
        if not following:
            break
        now = min(following)
    return out


def state_at(history: list[tuple[datetime, Outcome]], when: datetime) -> Outcome:
    """The status as it stood at `when`: the last reconcile at or before it."""
    return [o for t, o in history if t <= when][-1]


def condition(outcome: Outcome, type_: str) -> str:
    return next(c.status for c in outcome.status.conditions if c.type == type_)
