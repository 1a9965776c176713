"""The chaos figures, from the recorder's log (ground truth) and the scenario's faults.

Pure: `analyse(records, faults, ...)` takes the parsed JSON lines and the fault
windows (Unix times) and returns the figures; nothing here talks to the cluster.

Definitions (the README's reliability section states the targets):

- duplicate CronJobs: CronJobs alive at once beyond the first, controlled by one task;
  duplicate runs: Jobs of one task started for the same slot more than once.
- checkpoints: each fault's end + SETTLE seconds, and the end of the record (or the
  moment the operators were stopped, if earlier). At a
  checkpoint T, a task's status (its last `task` record at or before T) is compared
  with the runs the record saw finish before T - MARGIN:
  - runs lost: fewer counted than the runs whose evidence the cluster still held. A run
    is evidence-held unless its Job both finished and vanished inside one fault window
    (the operator could not see it); of those, the CronJob's lastSuccessfulTime still
    holds one success per CronJob and window, while that CronJob exists. The part of
    a deficit that such a success explains is also given apart (runs_lost_vanished).
    Per task and counter, the worst deficit over the checkpoints counts (not their sum).
  - counted twice: more counted than the runs that finished (plus Jobs that vanished
    with no result seen, which may have finished unseen).
  - phantom active Jobs: names in status.active whose Job was gone before T - MARGIN.
- regressions: a counter (succeeded, failed, unknown, missedRuns, skippedRuns.forbid)
  that goes down, or a timestamp (lastScheduleTime, lastSuccessfulTime,
  lastFailureTime, watermark) that goes back, for one task uid.
- false Late/Blocked: Late (Blocked) turned True although the Job for its slot
  (lastMissedTime; lastSkippedTime) was created within the grace, LAG before its
  end at the latest (a Job created later races with the judgement at the grace's
  end: the watch that brings it takes a moment). Given apart, not against the
  target (false_alerts_unseen): a slot whose Jobs were created inside a fault in
  which their CronJob was deleted: the operator counts no Job of a CronJob that is
  gone (they are garbage), and nothing else showed it that the slot ran.
- missed Late/Blocked: a slot with no Job created within the grace (before the
  second in which it ends), and no status
  flagging it (Late or Blocked True, or lastMissedTime/lastSkippedTime at or after it)
  by grace + SETTLE after it, or SETTLE after the fault it fell into.
A missed alert is "after the faults" when its slot's grace ends outside every
[start, end + SETTLE]; a false one when it is raised outside every [start, end]:
an operator that was cut off or frozen writes its first judgements after the
fault's end, and those must already be right (README, "Reliability", D3).
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from harness.recorded import parse_time as ts

SETTLE = 30.0  # seconds after a fault's end by which everything must be reflected
# Runs that finish this close to a checkpoint may still be in flight: the status
# latency. 5 s was too tight on this 2-core machine when other clusters load it (load
# average 20-25, 2026-12-02): the operator's status lagged 3-11 s behind the Jobs.
MARGIN = 15.0
LAG = 2.0  # seconds: how late the recorder may log what the API server did
COUNTERS = ("succeeded", "failed", "unknown", "missed", "skipped")
STAMPS = ("last_schedule", "last_success", "last_failure", "watermark")
EXAMPLES = 8


def parse_record(text: str) -> list[dict[str, Any]]:
    """The recorder's JSON lines."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class Fault:
    name: str
    start: float
    end: float

    def covers(self, t: float, settle: float = 0.0) -> bool:
        return self.start <= t <= self.end + settle


@dataclass
class Job:
    name: str
    uid: str
    cronjob_uid: str | None
    scheduled: float | None
    created: float | None  # creationTimestamp
    finished_at: float | None = None  # record time of job_finished
    completion: float | None = None  # its completionTime (whole seconds)
    result: str | None = None
    deleted_at: float | None = None


@dataclass
class Figures:
    duplicate_cronjobs: int = 0
    duplicate_runs: int = 0
    runs_lost: int = 0
    runs_lost_vanished: int = 0  # of which: Jobs created and deleted inside a fault
    counted_twice: int = 0
    phantoms: int = 0
    phantoms_final: int = 0
    regressions: int = 0
    false_alerts: int = 0
    false_alerts_after: int = 0
    false_alerts_unseen: int = 0  # of all: their slot's evidence vanished in a fault
    missed_alerts: int = 0
    missed_alerts_after: int = 0
    slots: int = 0
    slots_missed: int = 0
    runs_finished: int = 0
    recorder_gaps: int = 0
    recorder_gap_seconds: float = 0.0
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # (task uid, counter) -> the worst deficit (and its vanished part) or excess seen at
    # any checkpoint: one run missing at two checkpoints is one run lost.
    lost: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    twice: dict[tuple[str, str], int] = field(default_factory=dict)

    def note(self, what: str, text: str) -> None:
        if len(self.examples[what]) < EXAMPLES:
            self.examples[what].append(text)


class Record:
    """The recorder's log, indexed."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.end = max((r["t"] for r in records), default=0.0)
        self.jobs: dict[str, Job] = {}
        self.cronjob_task: dict[str, str] = {}  # cronjob uid -> task uid
        self.cronjob_life: dict[str, list[float]] = {}  # cronjob uid -> [added, deleted]
        # cronjob uid -> (record time, lastSuccessfulTime) as the record saw them
        self.cronjob_success: dict[str, list[tuple[float, float]]] = {}
        self.slots: list[tuple[str, float]] = []  # (cronjob uid, slot)
        self.tasks: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        self.task_gone: dict[str, float] = {}
        self.gaps: list[dict[str, Any]] = []
        for r in records:
            getattr(self, "on_" + r["kind"], self.ignore)(r)

    def ignore(self, r: dict[str, Any]) -> None:
        pass

    def job(self, r: dict[str, Any]) -> Job:
        if r["uid"] not in self.jobs:
            self.jobs[r["uid"]] = Job(
                r["job"], r["uid"], r["cronjob_uid"], ts(r["scheduled"]), ts(r["created"])
            )
        return self.jobs[r["uid"]]

    def on_job_created(self, r: dict[str, Any]) -> None:
        self.job(r)

    def on_job_finished(self, r: dict[str, Any]) -> None:
        job = self.job(r)
        job.finished_at, job.result = r["t"], r["result"]
        job.completion = ts(r.get("completion"))

    def on_job_deleted(self, r: dict[str, Any]) -> None:
        self.job(r).deleted_at = r["t"]

    def on_cronjob_added(self, r: dict[str, Any]) -> None:
        self.cronjob_life[r["uid"]] = [r["t"], float("inf")]
        self.on_cronjob_changed(r)

    def on_cronjob_changed(self, r: dict[str, Any]) -> None:
        if r.get("task_uid"):
            self.cronjob_task[r["uid"]] = r["task_uid"]
        success = ts(r.get("last_success"))
        if success is not None:
            self.cronjob_success.setdefault(r["uid"], []).append((r["t"], success))

    on_cronjob_status = on_cronjob_changed

    def holds_success(self, job: Job, t: float, until: float) -> bool:
        """Whether the Job's CronJob, alive at t, said by then (its lastSuccessfulTime)
        that a run succeeded at or after this Job's completion and by `until` (the
        blind window's end): the evidence of a run whose Job vanished. A CronJob
        controller that saw the Job only after it was deleted (TTL 0) never moves it,
        and a later run's success, which the operator sees for itself, proves only
        that run."""
        if job.completion is None or not self.alive(job.cronjob_uid, t):
            return False
        seen = self.cronjob_success.get(job.cronjob_uid or "", [])
        return any(at <= t and job.completion <= success <= until for at, success in seen)

    def on_cronjob_deleted(self, r: dict[str, Any]) -> None:
        self.cronjob_life.setdefault(r["uid"], [r["t"], r["t"]])[1] = r["t"]

    def on_slot(self, r: dict[str, Any]) -> None:
        slot = ts(r["slot"])
        assert slot is not None
        self.slots.append((r["uid"], slot))

    def on_task(self, r: dict[str, Any]) -> None:
        self.tasks[r["uid"]].append((r["t"], r))

    def on_task_deleted(self, r: dict[str, Any]) -> None:
        self.task_gone[r["uid"]] = r["t"]

    def on_watch_gap(self, r: dict[str, Any]) -> None:
        self.gaps.append(r)

    def task_at(self, uid: str, t: float) -> dict[str, Any] | None:
        if self.task_gone.get(uid, float("inf")) <= t:
            return None
        last = None
        for at, snap in self.tasks[uid]:
            if at > t:
                break
            last = snap
        return last

    def alive(self, cronjob_uid: str | None, t: float) -> bool:
        added, deleted = self.cronjob_life.get(cronjob_uid or "", (float("inf"), 0.0))
        return added <= t < deleted

    def runs_of(self, task_uid: str) -> list[Job]:
        return [
            j for j in self.jobs.values() if self.cronjob_task.get(j.cronjob_uid or "") == task_uid
        ]


def analyse(
    records: list[dict[str, Any]],
    faults: list[Fault],
    grace: float,
    settle: float = SETTLE,
    until: float | None = None,
) -> dict[str, Any]:
    """`until`: when the operators were stopped; the record is judged up to then, since
    what happens afterwards (the next minute's runs finishing, say) cannot be reflected."""
    rec = Record(records)
    if until is not None:
        rec.end = min(rec.end, until)
    fig = Figures()
    duplicates(rec, fig)
    checkpoints = [f.end + settle for f in faults if f.end + settle <= rec.end] + [rec.end]
    for i, at in enumerate(checkpoints):
        counts(rec, fig, at, faults, final=i == len(checkpoints) - 1)
    fig.runs_lost = sum(total for total, _ in fig.lost.values())
    fig.runs_lost_vanished = sum(vanished for _, vanished in fig.lost.values())
    fig.counted_twice = sum(fig.twice.values())
    regressions(rec, fig)
    alerts(rec, fig, faults, grace, settle)
    fig.runs_finished = sum(1 for j in rec.jobs.values() if j.result)
    fig.recorder_gaps = len(rec.gaps)
    fig.recorder_gap_seconds = round(sum(g["end"] - g["start"] for g in rec.gaps), 1)
    out = {k: v for k, v in fig.__dict__.items() if k not in ("examples", "lost", "twice")}
    out["examples"] = dict(fig.examples)
    out["checkpoints"] = len(checkpoints)
    out["recorder_gap_list"] = [
        f"{g['ns']}/{g['resource']} {g['end'] - g['start']:.1f}s relisted={g['relisted']}"
        for g in rec.gaps[:EXAMPLES]
    ]
    return out


def duplicates(rec: Record, fig: Figures) -> None:
    by_task: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for uid, (added, deleted) in rec.cronjob_life.items():
        if uid in rec.cronjob_task:
            by_task[rec.cronjob_task[uid]] += [(added, 1), (deleted, -1)]
    for task, changes in by_task.items():
        alive = most = 0
        for _, change in sorted(changes, key=lambda c: (c[0], c[1])):  # deletions first
            alive += change
            most = max(most, alive)
        if most > 1:
            fig.duplicate_cronjobs += most - 1
            fig.note("duplicate_cronjobs", f"task {task}: {most} CronJobs at once")
    seen: dict[tuple[str, float], str] = {}
    for job in rec.jobs.values():
        task = rec.cronjob_task.get(job.cronjob_uid or "")
        if task is None or job.scheduled is None:
            continue
        if (task, job.scheduled) in seen:
            fig.duplicate_runs += 1
            fig.note("duplicate_runs", f"{job.name} and {seen[(task, job.scheduled)]}")
        seen[(task, job.scheduled)] = job.name


def blind(job: Job, faults: list[Fault]) -> Fault | None:
    """The fault in which the Job finished (or up to MARGIN before it started: the
    operator may not have written it yet) and vanished: only the cluster's own
    evidence (the CronJob's lastSuccessfulTime) can tell the operator about it."""
    if job.finished_at is None or job.deleted_at is None:
        return None
    for f in faults:
        # The recorder sees a deletion at the fault's end a moment late: LAG.
        if f.start - MARGIN <= job.finished_at <= f.end and job.deleted_at <= f.end + LAG:
            return f
    return None


def counts(rec: Record, fig: Figures, at: float, faults: list[Fault], final: bool) -> None:
    horizon = at - MARGIN
    for uid in rec.tasks:
        snap = rec.task_at(uid, at)
        if snap is None:
            continue
        runs = [j for j in rec.runs_of(uid) if j.created is not None]
        vanished_unseen = [
            j for j in runs if j.result is None and j.deleted_at is not None and j.deleted_at <= at
        ]
        for result, key in (("Succeeded", "succeeded"), ("Failed", "failed")):
            finished = [j for j in runs if j.result == result and j.finished_at is not None]
            due = [j for j in finished if j.finished_at <= horizon]  # type: ignore[operator]
            windows = [(blind(j, faults), j) for j in due]
            required = sum(1 for f, _ in windows if f is None)
            credits = 0
            if result == "Succeeded":  # the CronJob's lastSuccessfulTime: one per window,
                # while that CronJob still exists and holds it
                credits = len(
                    {
                        (f.name, j.cronjob_uid)
                        for f, j in windows
                        if f is not None and rec.holds_success(j, at, f.end)
                    }
                )
            required += credits
            counted = snap[key]
            if counted < required:
                deficit = required - counted
                worst = fig.lost.get((uid, key), (0, 0))
                fig.lost[(uid, key)] = max(worst, (deficit, min(deficit, credits)))
                fig.note(
                    "runs_lost",
                    f"{snap['task']} at {at:.0f}: {key} {counted} < {required} evidence-held",
                )
            allowed = sum(1 for j in finished if j.finished_at <= at) + len(vanished_unseen)  # type: ignore[operator]
            if counted > allowed:
                fig.twice[(uid, key)] = max(fig.twice.get((uid, key), 0), counted - allowed)
                fig.note(
                    "counted_twice", f"{snap['task']} at {at:.0f}: {key} {counted} > {allowed}"
                )
        names = {j.name: j for j in runs}
        for name in snap["active"]:
            job = names.get(name)
            if job is None or (job.deleted_at is not None and job.deleted_at <= horizon):
                fig.phantoms += 1
                fig.phantoms_final += final
                fig.note("phantoms", f"{snap['task']} at {at:.0f}: active {name} does not exist")


def regressions(rec: Record, fig: Figures) -> None:
    for snaps in rec.tasks.values():
        for (_, a), (t, b) in itertools.pairwise(snaps):
            for key in COUNTERS:
                if b[key] < a[key]:
                    fig.regressions += 1
                    fig.note("regressions", f"{b['task']} at {t:.0f}: {key} {a[key]} -> {b[key]}")
            for key in STAMPS:
                old, new = ts(a[key]), ts(b[key])
                if old is not None and (new is None or new < old):
                    fig.regressions += 1
                    fig.note("regressions", f"{b['task']} at {t:.0f}: {key} {a[key]} -> {b[key]}")


def alerts(rec: Record, fig: Figures, faults: list[Fault], grace: float, settle: float) -> None:
    started: dict[tuple[str, float], float] = {}  # (cronjob uid, slot) -> creation
    for job in rec.jobs.values():
        if job.cronjob_uid and job.scheduled is not None and job.created is not None:
            key = (job.cronjob_uid, job.scheduled)
            started[key] = min(started.get(key, job.created), job.created)
    slots_of: dict[str, list[float]] = defaultdict(list)
    for cj, slot in rec.slots:
        if cj in rec.cronjob_task:
            slots_of[rec.cronjob_task[cj]].append(slot)
    cronjobs_of: dict[str, set[str]] = defaultdict(set)
    for cj, task in rec.cronjob_task.items():
        cronjobs_of[task].add(cj)

    def on_time(task: str, slot: float, margin: float = 0.0) -> bool:
        # creationTimestamp has whole seconds: a Job stamped with the second in which the
        # grace ends was created at or after its end, when the slot is judged missed.
        deadline = slot + grace - margin
        return any(started.get((cj, slot), float("inf")) < deadline for cj in cronjobs_of[task])

    def during(t: float) -> bool:
        return any(f.covers(t) for f in faults)

    def unseen(task: str, slot: float) -> bool:
        ours = cronjobs_of[task]
        jobs = [j for j in rec.jobs.values() if j.scheduled == slot and j.cronjob_uid in ours]
        for job in jobs:  # their CronJob's Jobs are not the task's runs any more
            if job.created is None or job.cronjob_uid is None:
                return False
            deleted = rec.cronjob_life.get(job.cronjob_uid, [0.0, float("inf")])[1]
            if not any(f.start - MARGIN <= job.created and deleted <= f.end + LAG for f in faults):
                return False
        return bool(jobs)

    # False alerts: a transition to True whose slot did start in time.
    for uid, snaps in rec.tasks.items():
        prev: dict[str, Any] = {}
        for t, snap in snaps:
            for cond, stamp in (("late", "last_missed"), ("blocked", "last_skipped")):
                if snap[cond] == "True" and prev.get(cond) != "True":
                    slot = ts(snap[stamp])
                    if slot is not None and on_time(uid, slot, margin=LAG):
                        fig.false_alerts += 1
                        hidden = unseen(uid, slot)
                        fig.false_alerts_unseen += hidden
                        fig.false_alerts_after += not hidden and not during(t)
                        why = " (its Jobs and CronJob vanished in a fault)" if hidden else ""
                        fig.note(
                            "false_alerts",
                            f"{snap['task']} {cond} at {t:.0f}: slot {snap[stamp]} ran in time"
                            + why,
                        )
            prev = snap

    # Missed alerts: slots without a run in time, never flagged. A Job created within
    # LAG after the grace's end races with the judgement (the mirror of the false
    # alerts' margin): either verdict stands. A fault that begins before the flag is
    # due (the grace's end + settle) moves it to the fault's end + settle.
    for uid, slots in slots_of.items():
        for slot in slots:
            fig.slots += 1
            if on_time(uid, slot):
                continue
            deadline = slot + grace + settle
            in_fault = False
            for f in sorted(faults, key=lambda f: f.start):
                if f.start <= deadline and slot + grace <= f.end + settle:
                    deadline, in_fault = max(deadline, f.end + settle), True
            if deadline > rec.end or rec.task_at(uid, slot + grace) is None:
                continue
            fig.slots_missed += 1
            if on_time(uid, slot, margin=-LAG):
                continue
            current = rec.task_at(uid, slot + grace) or {}
            flagged = "True" in (current.get("late"), current.get("blocked"))
            for t, snap in rec.tasks[uid]:
                if t > deadline:
                    break
                if t < slot:
                    continue
                late_stamp = max(ts(snap["last_missed"]) or 0, ts(snap["last_skipped"]) or 0)
                if snap["late"] == "True" or snap["blocked"] == "True" or late_stamp >= slot:
                    flagged = True
                    break
            if not flagged:
                fig.missed_alerts += 1
                fig.missed_alerts_after += not in_fault
                fig.note(
                    "missed_alerts", f"task {uid}: slot {slot:.0f} not flagged by {deadline:.0f}"
                )
