"""The phases of `make bench` (see hack/bench.py for what each measures)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config

from harness.load import NEVER, NS_DIRECT, NS_LATENCY, NS_TASKS, apply_chunked, cronjob, task
from harness.measure import (
    CRONJOBS,
    JOBS,
    TASKS,
    Convergence,
    Latency,
    Watcher,
    apiserver_counters,
    operator_requests,
    proc_cpu_seconds,
    proc_memory,
    request_delta,
    start_watchers,
    task_series,
    wait_event,
)
from harness.setup import BenchError, Operator, log


def phase_direct(kc: Path, n: int, chunk: int, timeout: float) -> dict[str, Any]:
    objs = [cronjob(f"t-{i:05d}", NS_DIRECT) for i in range(n)]
    start = time.monotonic()
    apply_chunked(kc, objs, chunk, start + timeout)
    seconds = time.monotonic() - start
    log(f"direct: {n} CronJobs applied in {seconds:.1f}s; deleting them")
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(kc)))
    where = (*CRONJOBS[:2], NS_DIRECT, CRONJOBS[2])
    with contextlib.suppress(Exception):  # a slow deletecollection goes on server-side
        api.delete_collection_namespaced_custom_object(*where, _request_timeout=300)
    deadline = time.monotonic() + timeout
    while api.list_namespaced_custom_object(*where, limit=1, _request_timeout=60)["items"]:
        if time.monotonic() > deadline:
            raise BenchError("direct CronJobs still exist after the deadline")
        time.sleep(1)
    return {"seconds": seconds, "objects_per_second": n / seconds}


def phase_tasks(kc: Path, op: Operator, n: int, chunk: int, timeout: float) -> dict[str, Any]:
    conv = Convergence(n)
    watchers = [
        Watcher(kc, TASKS, NS_TASKS, conv.on_task),
        Watcher(kc, CRONJOBS, NS_TASKS, conv.on_cronjob),
    ]
    start_watchers(watchers, time.monotonic() + 120)
    objs = [task(f"t-{i:05d}", NS_TASKS, NEVER) for i in range(n)]
    counters, cpu = apiserver_counters(kc), proc_cpu_seconds(op.pid)
    own = operator_requests(op.metrics_url)
    start = time.monotonic()
    deadline = start + timeout
    result: dict[str, Any] = {}
    try:
        apply_chunked(kc, objs, chunk, deadline)
        result["apply_seconds"] = time.monotonic() - start
        log(f"tasks: {n} applied in {result['apply_seconds']:.1f}s; waiting for Ready")
        result["complete"] = wait_event(
            conv.done,
            deadline,
            op,
            lambda: (
                f"tasks: {len(conv.ready)} Ready, "
                f"{len(conv.cronjobs)} CronJobs after {time.monotonic() - start:.0f}s"
            ),
        )
    except BenchError as err:
        result.update(complete=False, error=str(err))
    result["seconds"] = time.monotonic() - start
    for w in watchers:
        w.stop()
    result.update(
        ready=len(conv.ready),
        cronjobs=len(conv.cronjobs),
        ready_with_cronjob=len(conv.both),
        tasks_per_second=len(conv.both) / result["seconds"],
        operator_cpu_seconds=proc_cpu_seconds(op.pid) - cpu,
        operator_own_requests=own_delta(own, operator_requests(op.metrics_url)),
        requests=request_delta(counters, apiserver_counters(kc)),
        watch_restarts=sum(w.restarts for w in watchers),
    )
    return result


def own_delta(
    before: dict[str, float] | None, after: dict[str, float] | None
) -> dict[str, float] | None:
    """The operator's own requests (cronwarden_api_requests_total) between two scrapes."""
    if before is None or after is None:
        return None
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return {k: v for k, v in delta.items() if v}


def phase_catchup(
    kc: Path, start_operator: Callable[[], Operator], n: int, chunk: int, timeout: float
) -> tuple[dict[str, Any], Operator | None]:
    """The operator's catch-up alone: N tasks are applied while no operator runs, then
    it starts; T_catchup lasts from its start until every task is Ready with its
    CronJob. Its CPU is counted from its start (imports and login included)."""
    conv = Convergence(n)
    watchers = [
        Watcher(kc, TASKS, NS_TASKS, conv.on_task),
        Watcher(kc, CRONJOBS, NS_TASKS, conv.on_cronjob),
    ]
    start_watchers(watchers, time.monotonic() + 120)
    result: dict[str, Any] = {}
    op: Operator | None = None
    try:
        begin = time.monotonic()
        apply_chunked(
            kc, [task(f"t-{i:05d}", NS_TASKS, NEVER) for i in range(n)], chunk, begin + timeout
        )
        result["apply_seconds"] = time.monotonic() - begin
        log(f"catch-up: {n} tasks applied in {result['apply_seconds']:.1f}s; starting the operator")
        counters = apiserver_counters(kc)
        start = time.monotonic()
        op = start_operator()
        # Imports and login (about 1.2 s of CPU on this machine, whatever N): reported
        # apart so that the CPU per task can be told without them.
        result["operator_cpu_at_live"] = proc_cpu_seconds(op.pid)
        log(f"catch-up: operator pid {op.pid} live after {time.monotonic() - start:.1f}s")
        result["complete"] = wait_event(
            conv.done,
            start + timeout,
            op,
            lambda: (
                f"catch-up: {len(conv.ready)} Ready, "
                f"{len(conv.cronjobs)} CronJobs after {time.monotonic() - start:.0f}s"
            ),
        )
        result["seconds"] = time.monotonic() - start
        result.update(
            operator_cpu_seconds=proc_cpu_seconds(op.pid),
            operator_own_requests=own_delta({}, operator_requests(op.metrics_url)),
            requests=request_delta(counters, apiserver_counters(kc)),
        )
    except BenchError as err:
        result.update(complete=False, error=str(err))
        result.setdefault("seconds", timeout)
    finally:
        for w in watchers:
            w.stop()
    result.update(
        ready=len(conv.ready),
        cronjobs=len(conv.cronjobs),
        ready_with_cronjob=len(conv.both),
        tasks_per_second=len(conv.both) / max(result["seconds"], 1e-9),
        watch_restarts=sum(w.restarts for w in watchers),
    )
    result.setdefault("operator_cpu_seconds", 0.0)
    return result, op


def phase_rest(kc: Path, op: Operator, seconds: float) -> dict[str, Any]:
    own_before = operator_requests(op.metrics_url)
    before, cpu = apiserver_counters(kc), proc_cpu_seconds(op.pid)
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 15))
        if left > 15:
            log(f"rest: {end - time.monotonic():.0f}s to go")
    after, cpu_after = apiserver_counters(kc), proc_cpu_seconds(op.pid)
    requests = request_delta(before, after)
    own_after = operator_requests(op.metrics_url)
    own = None
    if own_before is not None and own_after is not None:
        own = {k: v - own_before.get(k, 0.0) for k, v in own_after.items()}
        own = {k: v for k, v in own.items() if v}
    mem = proc_memory(op.pid)
    return {
        "operator_own_requests": own,
        "seconds": requests["seconds"],
        "operator_cpu_percent": 100 * (cpu_after - cpu) / requests["seconds"],
        "operator_rss_kib": mem["VmRSS"],
        "operator_rss_peak_so_far_kib": mem["VmHWM"],
        "requests": requests,
    }


def phase_latency(kc: Path, op: Operator, m: int, chunk: int, timeout: float) -> dict[str, Any]:
    lat = Latency(m)
    watchers = [
        Watcher(kc, TASKS, NS_LATENCY, lat.on_task),
        Watcher(kc, JOBS, NS_LATENCY, lat.on_job),
    ]
    start_watchers(watchers, time.monotonic() + 120)
    start = time.monotonic()
    deadline = start + timeout
    error = None
    try:
        apply_chunked(
            kc, [task(f"l-{i:04d}", NS_LATENCY, "* * * * *") for i in range(m)], chunk, deadline
        )
        log(f"latency: {m} per-minute tasks applied; waiting for each to reflect a Job")
        wait_event(
            lat.done,
            deadline,
            op,
            lambda: (
                f"latency: {len(lat.ready)} Ready, "
                f"{len(lat.complete)} Jobs complete, {len(lat.first)} tasks reflect one"
            ),
        )
    except BenchError as err:
        error = str(err)
    for w in watchers:
        w.stop()
    out = lat.summary()
    out["seconds"] = time.monotonic() - start
    if error:
        out["error"] = error
    return out


def phase_restart(
    op: Operator, start_operator: Callable[[], Operator], timeout: float
) -> tuple[dict[str, Any], Operator]:
    """The operator stopped (SIGTERM, as a rollout does) and started again on tasks that
    are all converged: the time until the new process exports every task the old one
    did, its CPU, its peak RSS (what the chart's memory limit must hold across every
    upgrade and rescheduling) and its own requests (no CronJob is due; the
    per-minute tasks' runs still write their status)."""
    expected = task_series(op.metrics_url)
    out: dict[str, Any] = {"tasks": expected}
    op.stop()
    start = time.monotonic()
    new = start_operator()
    out["operator_cpu_at_live"] = proc_cpu_seconds(new.pid)
    deadline = start + timeout
    last_log = start
    while (seen := task_series(new.metrics_url)) < expected:
        if not new.alive():
            # Handed back, so that the caller reports its exit and leaks nothing.
            out["error"] = f"the restarted operator exited; see {new.log_path}"
            break
        if time.monotonic() > deadline:
            out["error"] = f"{seen} of {expected} tasks exported at the deadline"
            break
        if time.monotonic() - last_log > 15:
            log(f"restart: {seen} of {expected} tasks exported")
            last_log = time.monotonic()
        time.sleep(1)  # each poll is a full scrape (17 MB at 10,000 tasks)
    out["seconds"] = time.monotonic() - start
    if not new.alive():
        return out, new
    mem = proc_memory(new.pid)
    out.update(
        operator_cpu_seconds=proc_cpu_seconds(new.pid),
        operator_rss_peak_kib=mem["VmHWM"],
        operator_rss_kib=mem["VmRSS"],
        operator_own_requests=own_delta({}, operator_requests(new.metrics_url)),
    )
    return out, new
