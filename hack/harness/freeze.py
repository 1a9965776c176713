"""Scenario `operator-freeze`: the operator frozen (SIGSTOP) for 2 minutes (--small:
1), as a node under memory pressure or a stopped container freezes it. While it is
frozen, Jobs (running and finished), CronJobs and tasks are deleted, half before
and half after a kube-apiserver restart that breaks its watches; then it is
continued (SIGCONT). Its watches must resume or list again, and what vanished
meanwhile must be seen as gone: no phantom active Jobs, the CronJobs recreated,
the deleted tasks' runs not counted anywhere, no run lost or counted twice, and
no false or missed alert after the fault."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from kubernetes import client

from harness.chaosrun import ChaosRun
from harness.setup import GROUP, PLURAL, VERSION, log, start_component, stop_component

# Seconds after the minute by which the CronJob controller has started its Jobs.
JOBS_STARTED = 6.0


def deletable(run: ChaosRun) -> tuple[list[str], list[str], list[str]]:
    """Names of the Jobs, CronJobs and tasks that may be deleted: of the per-minute
    tasks only (the blind-window probes and never-firing tasks are left alone)."""
    batch = client.BatchV1Api(run.api)
    jobs = [j.metadata.name for j in batch.list_namespaced_job(run.ns).items]
    tasks = [
        t["metadata"]["name"]
        for t in run.list(GROUP, VERSION, PLURAL)
        if (t["metadata"].get("labels") or {}).get("cronwarden.io/chaos-kind", "never") != "never"
    ]
    return sorted(jobs), sorted(tasks), sorted(tasks)


def delete(run: ChaosRun, kind: str, names: list[str]) -> int:
    """Delete objects by name (background propagation, as kubectl does); count those
    that were there to delete."""
    batch = client.BatchV1Api(run.api)
    body = client.V1DeleteOptions(propagation_policy="Background")
    done = 0
    for name in names:
        try:
            if kind == "job":
                batch.delete_namespaced_job(name, run.ns, body=body, _request_timeout=10)
            elif kind == "cronjob":
                batch.delete_namespaced_cron_job(name, run.ns, body=body, _request_timeout=10)
            else:
                run.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, run.ns, PLURAL, name, _request_timeout=10
                )
            done += 1
        except client.ApiException as err:
            if err.status != 404:
                raise
    return done


def deletions(run: ChaosRun, jobs: int, cronjobs: int, tasks: int, spared: set[str]) -> list[str]:
    """Delete that many random Jobs, CronJobs and tasks (a task deleted here is not
    also the owner of a deleted CronJob, so that each deletion is judged on its own)."""
    job_names, cronjob_names, task_names = deletable(run)
    gone_tasks = run.rng.sample([t for t in task_names if t not in spared], tasks)
    spared |= set(gone_tasks)
    gone_cronjobs = run.rng.sample([c for c in cronjob_names if c not in spared], cronjobs)
    spared |= set(gone_cronjobs)
    gone_jobs = run.rng.sample(job_names, min(jobs, len(job_names)))
    counts = (
        delete(run, "job", gone_jobs),
        delete(run, "cronjob", gone_cronjobs),
        delete(run, "task", gone_tasks),
    )
    note = f"deleted {counts[0]} Jobs, {counts[1]} CronJobs, {counts[2]} tasks"
    log(f"while frozen: {note}")
    return [note]


def operator_freeze(run: ChaosRun, times: int) -> None:
    """The freeze starts 2-5 s before a minute, so that the minute's slot passes
    while the operator is frozen: the CronJob controller starts its Jobs (before
    the API server's restart) and the slot's grace (30 s) ends before SIGCONT. The
    continued operator must judge that slot from what is true then, not from its
    view of before the freeze (README, "Reliability", D3)."""
    seconds = 60 if run.small else 120
    per_half: dict[str, Any] = {"jobs": 2, "cronjobs": 1, "tasks": 1}
    if not run.small:
        per_half = {"jobs": 20, "cronjobs": 10, "tasks": 5}
    for i in range(times):
        minute = run.next_minute(0.0)
        run.wait_until(minute - run.rng.uniform(2, 5))
        spared: set[str] = set()
        with run.fault(f"freeze-{i + 1}"):
            frozen_at = time.time()
            pid = run.op.pid
            os.kill(pid, signal.SIGSTOP)
            try:
                run.notes += deletions(run, spared=spared, **per_half)
                # The minute's Jobs are created meanwhile (within a second or two).
                run.wait_until(minute + JOBS_STARTED)
                # The restart closes the watch connections: what is deleted after it
                # cannot sit in the frozen operator's socket buffers.
                stop_component("kube-apiserver")
                run.wait_until(time.time() + 20)
                start_component("kube-apiserver")
                run.wait_api()
                run.notes += deletions(run, spared=spared, **per_half)
                run.wait_until(frozen_at + seconds)
            finally:
                os.kill(pid, signal.SIGCONT)
        run.blind_window(f"probe-freeze-{i + 1}")
        run.settle()
