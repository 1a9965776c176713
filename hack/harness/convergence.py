"""Convergence after each fault, from the recorder's log. Pure.

At a moment T a task has converged when, as the recorder saw them:
- it is Ready at its generation, with exactly one CronJob of its own alive;
- its status.active names exactly the Jobs of that CronJob that exist unfinished;
- its lastSuccessfulTime is no older than that CronJob's.
A fault's convergence is the first T at or after its end at which every task has
converged (tried every STEP seconds).

Why from the record and not from the harness's own listings (ChaosRun.converged,
which only paces the scenario now): that check lists tasks, then CronJobs, then
Jobs, one after the other, 1 to 6 s in all under the full chaos mix. With 200 runs
a minute, Jobs are created or finish somewhere in the namespace during most of
every minute (on this machine until about :55), so the Jobs' listing is newer than
the tasks' and disagrees with it even when every status is current: in a full run
it passed only in the last seconds of each minute, with or without a fault (45 to
50 s after a kill early in a minute). The recorder's log orders both on one clock.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from harness.analysis import ts

STEP = 0.25  # seconds between the moments tried
HORIZON = 180.0  # seconds after a fault's end; past it, not converged


@dataclass
class Job:
    name: str
    cronjob_uid: str
    seen: float  # record time of its first sighting
    gone: float = float("inf")  # record time it finished or was deleted


@dataclass
class History:
    """An object's summaries as the record saw them change, and when it went."""

    times: list[float] = field(default_factory=list)
    snaps: list[dict[str, Any]] = field(default_factory=list)
    deleted: float = float("inf")

    def add(self, t: float, snap: dict[str, Any]) -> None:
        self.times.append(t)
        self.snaps.append(snap)

    def at(self, t: float) -> dict[str, Any] | None:
        i = bisect.bisect_right(self.times, t)
        return self.snaps[i - 1] if i and t < self.deleted else None


class Timeline:
    """The record as tasks, CronJobs and Jobs, with the times the recorder saw them."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.tasks: dict[str, History] = defaultdict(History)
        self.cronjobs: dict[str, History] = defaultdict(History)
        jobs: dict[str, Job] = {}
        for r in records:
            kind, t = r["kind"], r["t"]
            if kind == "task":
                self.tasks[r["uid"]].add(t, r)
            elif kind == "task_deleted":
                self.tasks[r["uid"]].deleted = t
            elif kind in ("cronjob_added", "cronjob_changed", "cronjob_status"):
                self.cronjobs[r["uid"]].add(t, r)
            elif kind == "cronjob_deleted":
                self.cronjobs[r["uid"]].deleted = t
            elif kind.startswith("job_") and r.get("cronjob_uid"):
                job = jobs.setdefault(r["uid"], Job(r["job"], r["cronjob_uid"], t))
                if kind in ("job_finished", "job_deleted"):
                    job.gone = min(job.gone, t)
        self.cronjobs_of: dict[str, set[str]] = defaultdict(set)  # task uid -> CronJob uids
        for uid, history in self.cronjobs.items():
            for snap in history.snaps:
                if snap.get("task_uid"):
                    self.cronjobs_of[snap["task_uid"]].add(uid)
        self.jobs_of: dict[str, list[Job]] = defaultdict(list)
        for job in jobs.values():
            self.jobs_of[job.cronjob_uid].append(job)

    def converged(self, uid: str, t: float) -> bool:
        """Whether the task `uid` has converged at t (the module's docstring)."""
        task = self.tasks[uid].at(t)
        if task is None:
            return True  # deleted, or not created yet: nothing to hold
        if task["ready"] != "True" or task["observed"] != task["generation"]:
            return False
        alive = [
            (c, snap)
            for c in self.cronjobs_of[uid]
            if (snap := self.cronjobs[c].at(t)) is not None and snap.get("task_uid") == uid
        ]
        if len(alive) != 1:
            return False
        cronjob, cj = alive[0]
        if cj["managed_by"] != "cronwarden":
            return False
        # Recorders before the task's schedule and suspend were logged: not compared.
        for key in ("schedule", "suspend"):
            if key in task and task[key] != cj[key]:
                return False
        running = {j.name for j in self.jobs_of[cronjob] if j.seen <= t < j.gone}
        if set(task["active"]) != running:
            return False
        floor = ts(cj["last_success"])
        return floor is None or (ts(task["last_success"]) or 0.0) >= floor

    def convergence(self, end: float, until: float) -> float | None:
        """Seconds from `end` until every task has converged; None if not by HORIZON
        after it, or by `until` (the end of the record)."""
        order = list(self.tasks)
        t = end
        while t <= min(end + HORIZON, until):
            for i, uid in enumerate(order):
                if not self.converged(uid, t):
                    order.insert(0, order.pop(i))  # try the laggard first next time
                    break
            else:
                return t - end
            t += STEP
        return None


def convergence_figures(
    records: list[dict[str, Any]], ends: list[float], until: float | None = None
) -> dict[str, Any]:
    """Convergence after each fault end, from the record (up to `until`, when the
    operators were stopped, if given)."""
    timeline = Timeline(records)
    last = max((r["t"] for r in records), default=0.0)
    until = last if until is None else min(until, last)
    seconds = [timeline.convergence(end, until) for end in ends]
    done = [s for s in seconds if s is not None]
    return {
        "convergence_seconds": seconds,
        "convergence_max_seconds": max(done) if done else None,
        "not_converged": sum(1 for s in seconds if s is None),
    }
