"""The midnight burst (`make bench BENCH_ARGS="--burst N"`): N tasks scheduled for the
same minute, and how long the control plane and the operator take to get through it.

The tasks are applied with a schedule naming one minute (the slot, far enough ahead
that all of them are Ready before it) and startingDeadlineSeconds and
missedRunGraceSeconds 3600, so that the CronJob controller's own pace never turns a
run into a miss. Watches on the Jobs and
the tasks give sub-second times, relative to the slot, of each Job created, each Job
Complete and each task's status.lastRun naming its Job.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.load import apply_chunked, task
from harness.measure import (
    JOBS,
    TASKS,
    Watcher,
    condition,
    is_ready,
    operator_requests,
    percentile,
    proc_cpu_seconds,
    proc_memory,
    slot,
    start_watchers,
    wait_event,
)
from harness.setup import BenchError, Operator, kubectl, log

NS_BURST = "bench-burst"
STARTING_DEADLINE = 3600
# The operator's figures are taken from this many seconds before the slot.
BEFORE_SLOT = 5.0
TARGET_P99_LAG = 1.0
TARGET_CPU_PER_RUN = 0.010


def burst_slot(now: float, lead: float) -> int:
    """The first full minute (epoch seconds) at least `lead` seconds after `now`."""
    return int(math.ceil((now + lead) / 60) * 60)


def slot_schedule(slot_epoch: int) -> str:
    """A cron schedule (in Etc/UTC) that fires at slot_epoch and not again for a year."""
    t = time.gmtime(slot_epoch)
    return f"{t.tm_min} {t.tm_hour} {t.tm_mday} {t.tm_mon} *"


def default_lead(n: int) -> float:
    """Seconds from the apply to the slot: 60 s, plus room to apply n tasks and see them
    Ready on a loaded 2-core machine (about 10 per second)."""
    return 60 + 0.1 * n


def lag_summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    s = sorted(samples)
    return {"p50": percentile(s, 0.5), "p99": percentile(s, 0.99), "max": s[-1], "min": s[0]}


def burst_task(name: str, schedule: str, namespace: str = NS_BURST) -> dict[str, Any]:
    """A task on the slot. Its grace is as long as the CronJob's starting deadline:
    with the default 60 s, a Job the CronJob controller creates a minute late (its
    pace, thousands of Jobs in one minute) is judged MissedSchedule first, which
    measures the control plane, and the extra Late writes burden the operator's."""
    obj = task(name, namespace, schedule)
    obj["spec"].update(
        timeZone="Etc/UTC",
        startingDeadlineSeconds=STARTING_DEADLINE,
        missedRunGraceSeconds=STARTING_DEADLINE,
    )
    return obj


class Burst:
    """Wall-clock times (time.time()) at which the watches first saw each slot Job
    created and Complete, and each task's lastRun name it."""

    def __init__(self, n: int, slot_epoch: int) -> None:
        self.n = n
        self.slot_minutes = slot_epoch // 60
        self.lock = threading.Lock()
        self.ready: set[str] = set()
        self.all_ready = threading.Event()
        self.created: dict[str, float] = {}  # job -> first seen
        self.complete: dict[str, float] = {}  # job -> first seen Complete
        self.failed: set[str] = set()
        self.reflected: dict[str, float] = {}  # task -> first seen naming its slot Job
        self.done = threading.Event()

    def on_job(self, type_: str, obj: dict[str, Any]) -> None:
        now = time.time()
        name = obj["metadata"]["name"]
        if type_ == "DELETED" or slot(name) != self.slot_minutes:
            return
        with self.lock:
            self.created.setdefault(name, now)
            if (c := condition(obj, "Complete")) and c.get("status") == "True":
                self.complete.setdefault(name, now)
            if (c := condition(obj, "Failed")) and c.get("status") == "True":
                self.failed.add(name)

    def on_task(self, type_: str, obj: dict[str, Any]) -> None:
        now = time.time()
        name = obj["metadata"]["name"]
        if type_ == "DELETED":
            return
        job = ((obj.get("status") or {}).get("lastRun") or {}).get("job") or ""
        with self.lock:
            if is_ready(obj):
                self.ready.add(name)
                if len(self.ready) >= self.n:
                    self.all_ready.set()
            if job == f"{name}-{self.slot_minutes}":
                self.reflected.setdefault(name, now)
                if len(self.reflected) >= self.n:
                    self.done.set()

    def summary(self, slot_epoch: int) -> dict[str, Any]:
        def last(times: dict[str, float]) -> float | None:
            return max(times.values()) - slot_epoch if times else None

        with self.lock:
            lags = [
                self.reflected[t] - self.complete[f"{t}-{self.slot_minutes}"]
                for t in self.reflected
                if f"{t}-{self.slot_minutes}" in self.complete
            ]
            return {
                "jobs_created": len(self.created),
                "jobs_complete": len(self.complete),
                "jobs_failed": len(self.failed),
                "tasks_reflecting": len(self.reflected),
                "first_job_created_after_slot": (
                    min(self.created.values()) - slot_epoch if self.created else None
                ),
                "last_job_created_after_slot": last(self.created),
                "last_job_complete_after_slot": last(self.complete),
                "last_status_after_slot": last(self.reflected),
                "lag_count": len(lags),
                "lag": lag_summary(lags),
            }


def cronwarden_events(kc: Path, since: float, namespaces: Sequence[str]) -> dict[str, Any]:
    """Events in the namespaces that cronwarden posted: objects, their summed count, and
    those last seen at or after `since` (epoch seconds; the API's clock is per second)."""
    items = [
        e
        for ns in namespaces
        for e in json.loads(kubectl(kc, "get", "events", "-n", ns, "-o", "json", timeout=120))[
            "items"
        ]
    ]
    ours = [
        e
        for e in items
        if (e.get("source") or {}).get("component") == "cronwarden"
        or e.get("reportingComponent") == "cronwarden"
    ]
    reasons: dict[str, int] = {}
    recent = 0
    for e in ours:
        reasons[e.get("reason", "")] = reasons.get(e.get("reason", ""), 0) + (e.get("count") or 1)
        stamp = e.get("lastTimestamp") or e.get("eventTime") or ""
        with_z = stamp.replace("Z", "+00:00")
        try:
            if datetime.fromisoformat(with_z).timestamp() >= math.floor(since):
                recent += 1
        except ValueError:
            pass
    return {
        "objects": len(ours),
        "count": sum(reasons.values()),
        "objects_since_window": recent,
        "by_reason": reasons,
    }


def own_delta(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float]:
    if before is None or after is None:
        return {}
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return {k: v for k, v in delta.items() if v}


def total_requests(ops: Sequence[Operator]) -> dict[str, float] | None:
    """The replicas' own request counts, summed; None if none counts them (a version
    before the count). A standby that has sent no counted request exports none."""
    counts = [own for op in ops if (own := operator_requests(op.metrics_url)) is not None]
    if not counts:
        return None
    out: dict[str, float] = {}
    for own in counts:
        for k, v in own.items():
            out[k] = out.get(k, 0.0) + v
    return out


def phase_burst(
    kc: Path,
    ops: dict[str, Operator],
    n: int,
    chunk: int,
    lead: float,
    timeout: float,
    namespaces: Sequence[str] = (NS_BURST,),
) -> dict[str, Any]:
    """The burst, with the tasks spread round-robin over `namespaces`, and the CPU,
    peak RSS and requests of every replica in `ops` (name -> process), summed and each."""
    slot_epoch = burst_slot(time.time(), lead)
    schedule = slot_schedule(slot_epoch)
    b = Burst(n, slot_epoch)
    replicas = list(ops.values())
    out: dict[str, Any] = {
        "tasks": n,
        "namespaces": len(namespaces),
        "slot": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(slot_epoch)),
        "schedule": schedule,
        "lead_seconds": lead,
        "starting_deadline_seconds": STARTING_DEADLINE,
        "missed_run_grace_seconds": STARTING_DEADLINE,
        "errors": [],
    }
    watchers = [
        Watcher(kc, gvr, ns, on)
        for ns in namespaces
        for gvr, on in ((TASKS, b.on_task), (JOBS, b.on_job))
    ]
    start_watchers(watchers, time.monotonic() + 120)
    try:
        start = time.monotonic()
        ready_by = time.monotonic() + (slot_epoch - BEFORE_SLOT - time.time())
        tasks = [
            burst_task(f"b-{i:05d}", schedule, namespaces[i % len(namespaces)]) for i in range(n)
        ]
        apply_chunked(kc, tasks, chunk, ready_by)
        out["apply_seconds"] = time.monotonic() - start
        log(f"burst: {n} tasks on '{schedule}' (UTC) applied in {out['apply_seconds']:.1f}s")
        wait_event(b.all_ready, ready_by, replicas, lambda: f"burst: {len(b.ready)} of {n} Ready")
        out["ready_before_slot"] = len(b.ready)
        out["ready_seconds"] = time.monotonic() - start
        if len(b.ready) < n:
            out["errors"].append(
                f"only {len(b.ready)} of {n} tasks Ready {BEFORE_SLOT:g}s before the slot: "
                "raise --burst-lead"
            )
        if (wait := slot_epoch - BEFORE_SLOT - time.time()) > 0:
            log(f"burst: all Ready; the slot {out['slot']} is in {wait + BEFORE_SLOT:.0f}s")
            time.sleep(wait)
        own0 = total_requests(replicas)
        cpu0 = {name: proc_cpu_seconds(op.pid) for name, op in ops.items()}
        t0 = time.time()
        out["operator_rss_peak_before_kib"] = max(proc_memory(op.pid)["VmHWM"] for op in replicas)
        wait_event(
            b.done,
            time.monotonic() + timeout,
            replicas,
            lambda: (
                f"burst: {time.time() - slot_epoch:.0f}s after the slot: {len(b.created)} Jobs, "
                f"{len(b.complete)} Complete, {len(b.reflected)} statuses name theirs"
            ),
        )
        cpu1 = {name: proc_cpu_seconds(op.pid) for name, op in ops.items()}
        own1, t1 = total_requests(replicas), time.time()
        out["window_seconds"] = t1 - t0
        cpu = sum(cpu1.values()) - sum(cpu0.values())
        out["operator_cpu_seconds"] = cpu
        out["operator_cpu_per_run"] = cpu / max(len(b.reflected), 1)
        out["operator_rss_peak_kib"] = max(proc_memory(op.pid)["VmHWM"] for op in replicas)
        if len(ops) > 1:
            out["replicas"] = {
                name: {
                    "cpu_seconds": cpu1[name] - cpu0[name],
                    "rss_peak_kib": proc_memory(op.pid)["VmHWM"],
                }
                for name, op in ops.items()
            }
        own = own_delta(own0, own1)
        out["operator_own_requests"] = own if own1 is not None else None
        out["operator_requests_per_second"] = sum(own.values()) / (t1 - t0)
        out["operator_event_writes"] = sum(
            v
            for k, v in own.items()
            if k.split()[0].upper() in ("POST", "PATCH") and "event" in k.lower()
        )
        out["events"] = cronwarden_events(kc, t0, namespaces)
        if not b.done.is_set():
            out["errors"].append(
                f"deadline: {len(b.reflected)} of {n} statuses name their run "
                f"{timeout:.0f}s after the slot"
            )
    except BenchError as err:
        out["errors"].append(str(err))
    finally:
        for w in watchers:
            w.stop()
    out.update(b.summary(slot_epoch))
    return out
