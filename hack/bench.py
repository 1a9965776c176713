#!/usr/bin/env python3
"""`make bench`: how cronwarden scales, measured on the local control plane.

Phases, in this order (each with a deadline; a phase that runs out is reported
as partial and the next one still runs):

1. direct   `kubectl apply --server-side` of N plain CronJobs (never due) in
            bench-direct: T_direct. They are deleted again before phase 2.
2. tasks    the operator runs; N equivalent ScheduledTasks are applied in
            bench-tasks, the same way; T_tasks lasts until every task is
            Ready=True at observedGeneration 1 and its CronJob exists, as seen
            by watches.
3. rest     nothing else happens for --rest-seconds (default: the longer of
            the resync and the audit period, + 10 s, so both run once): the API
            server's request counters (whole server, by verb and resource), the
            operator's own requests (the audit's lists), CPU and RSS at rest.
4. metrics  the operator's /metrics: median scrape time of 5, and size.
5. latency  M tasks on "* * * * *" in bench-latency: for each task's first
            reflected Job, the time from the Job being seen Complete to the
            task's status.lastRun.job naming it.

Results are printed as a table and written as JSON. The operator is started
from --operator-root (its operator/ directory on PYTHONPATH), so an older
checkout can be measured with this same script.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = Path(os.environ.get("STATE_DIR", ROOT / ".state"))
KUBECTL = STATE_DIR / "bin" / "kubectl"
OUT_DIR = ROOT / ".state" / "bench"
GROUP, VERSION, PLURAL = "cronwarden.io", "v1alpha1", "scheduledtasks"
NS_DIRECT, NS_TASKS, NS_LATENCY = "bench-direct", "bench-tasks", "bench-latency"
NAMESPACES = (NS_DIRECT, NS_TASKS, NS_LATENCY)
NEVER = "0 0 1 1 *"
# Only the operator reads or writes these in the bench namespaces while at rest.
OPERATOR_RESOURCES = ("scheduledtasks", "cronjobs", "jobs", "events")
OURS = "/".join(OPERATOR_RESOURCES)
VERBS = ("GET", "LIST", "PATCH", "POST", "PUT", "DELETE")
APPLY = ("apply", "--server-side", "--field-manager=bench", "-f", "-")
# (group, version, plural) of what the bench watches.
TASKS, CRONJOBS, JOBS = (
    (GROUP, VERSION, PLURAL),
    ("batch", "v1", "cronjobs"),
    ("batch", "v1", "jobs"),
)
OnEvent = Callable[[str, dict[str, Any]], None]


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def kubectl(kc: Path, *args: str, input: str | None = None, timeout: float = 120) -> str:
    try:
        proc = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(kc), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=max(timeout, 1),
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"kubectl {' '.join(args[:3])} timed out after {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise BenchError(f"kubectl {' '.join(args[:3])} failed: {proc.stderr.strip()[-1500:]}")
    return proc.stdout


# --- objects ----------------------------------------------------------------------------


def pod_spec() -> dict[str, Any]:
    return {"containers": [{"name": "main", "image": "busybox:1.37", "command": ["true"]}]}


def task(name: str, namespace: str, schedule: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ScheduledTask",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": pod_spec()}}},
        },
    }


def cronjob(name: str, namespace: str) -> dict[str, Any]:
    """What the operator makes of task(name, NEVER), its defaults filled in, without owner."""
    labels = {"app.kubernetes.io/part-of": "cronwarden-bench", "cronwarden.io/task": name}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "schedule": NEVER,
            "suspend": False,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 300,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {**pod_spec(), "restartPolicy": "Never"},
                    },
                },
            },
        },
    }


def apply_chunked(kc: Path, objs: list[dict[str, Any]], chunk: int, deadline: float) -> None:
    """One `kubectl apply --server-side` per chunk of objects, sent as a List."""
    for i in range(0, len(objs), chunk):
        doc = {"apiVersion": "v1", "kind": "List", "items": objs[i : i + chunk]}
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError(f"deadline reached after applying {i} of {len(objs)} objects")
        kubectl(kc, *APPLY, input=json.dumps(doc), timeout=left)


# --- watches ----------------------------------------------------------------------------


class Watcher(threading.Thread):
    """List, then watch, one resource in one namespace; on_event(type, obj) gets every
    object (the list as ADDED). Resumes from the last resourceVersion; relists on 410."""

    def __init__(self, kc: Path, gvr: tuple[str, str, str], ns: str, on_event: OnEvent) -> None:
        super().__init__(name=f"watch-{ns}-{gvr[2]}", daemon=True)
        self.api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(kc)))
        self.args = (gvr[0], gvr[1], ns, gvr[2])
        self.on_event = on_event
        self.stopping = threading.Event()
        self.synced = threading.Event()
        self.current: watch.Watch | None = None
        self.restarts = 0

    def list_all(self) -> str:
        cont: str | None = None
        while True:
            page: Any = self.api.list_namespaced_custom_object(
                *self.args, limit=500, _continue=cont, _request_timeout=120
            )
            for item in page["items"]:
                self.on_event("ADDED", item)
            cont = page["metadata"].get("continue")
            if not cont:
                return str(page["metadata"]["resourceVersion"])

    def run(self) -> None:
        rv: str | None = None
        while not self.stopping.is_set():
            try:
                if rv is None:
                    rv = self.list_all()
                    self.synced.set()
                self.current = watch.Watch()
                for event in self.current.stream(
                    self.api.list_namespaced_custom_object,
                    *self.args,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=120,
                    _request_timeout=(10, 150),
                ):
                    obj = event["raw_object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.on_event(event["type"], obj)
            except client.ApiException as err:
                if err.status == 410:
                    rv = None  # too old: list again
                elif not self.stopping.is_set():
                    log(f"{self.name}: {err.status} {err.reason}; retrying")
                    time.sleep(1)
            except Exception as err:
                if not self.stopping.is_set():
                    self.restarts += 1
                    if self.restarts % 20 == 1:
                        log(f"{self.name}: {type(err).__name__}: {err}; resuming")
                    time.sleep(0.5)

    def stop(self) -> None:
        self.stopping.set()
        if self.current is not None:
            self.current.stop()
        self.join(timeout=15)


def start_watchers(watchers: list[Watcher], deadline: float) -> None:
    for w in watchers:
        w.start()
    for w in watchers:
        if not w.synced.wait(timeout=max(deadline - time.monotonic(), 0)):
            raise BenchError(f"{w.name}: could not list in time")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)


def is_ready(obj: dict[str, Any]) -> bool:
    ready = condition(obj, "Ready")
    return (
        ready is not None
        and ready.get("status") == "True"
        and obj["metadata"].get("generation") == 1
        and (obj.get("status") or {}).get("observedGeneration") == 1
    )


class Convergence:
    """Which tasks are Ready at generation 1 and have their CronJob, as the watches say."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.lock = threading.Lock()
        self.ready: set[str] = set()
        self.cronjobs: set[str] = set()
        self.both: set[str] = set()
        self.done = threading.Event()

    def _update(self, members: set[str], name: str, present: bool) -> None:
        with self.lock:
            (members.add if present else members.discard)(name)
            if name in self.ready and name in self.cronjobs:
                self.both.add(name)
            else:
                self.both.discard(name)
            if len(self.both) >= self.n:
                self.done.set()

    def on_task(self, type_: str, obj: dict[str, Any]) -> None:
        self._update(self.ready, obj["metadata"]["name"], type_ != "DELETED" and is_ready(obj))

    def on_cronjob(self, type_: str, obj: dict[str, Any]) -> None:
        self._update(self.cronjobs, obj["metadata"]["name"], type_ != "DELETED")


class Latency:
    """When each Job is first seen Complete, and when a task's lastRun first names it."""

    def __init__(self, m: int) -> None:
        self.m = m
        self.lock = threading.Lock()
        self.complete: dict[str, tuple[float, str]] = {}  # job -> (seen, task)
        self.reflected: dict[str, float] = {}  # job -> first seen in a task's lastRun
        self.first: dict[str, str] = {}  # task -> first job its lastRun named
        self.ready: set[str] = set()
        self.done = threading.Event()

    def on_job(self, type_: str, obj: dict[str, Any]) -> None:
        now = time.time()
        done = condition(obj, "Complete")
        if type_ != "DELETED" and done and done.get("status") == "True":
            owner = (obj["metadata"].get("labels") or {}).get("cronwarden.io/task", "")
            with self.lock:
                self.complete.setdefault(obj["metadata"]["name"], (now, owner))

    def on_task(self, type_: str, obj: dict[str, Any]) -> None:
        now = time.time()
        name = obj["metadata"]["name"]
        job = ((obj.get("status") or {}).get("lastRun") or {}).get("job")
        with self.lock:
            if is_ready(obj):
                self.ready.add(name)
            if job and type_ != "DELETED":
                self.reflected.setdefault(job, now)
                self.first.setdefault(name, job)
                if len(self.first) >= self.m:
                    self.done.set()

    def summary(self) -> dict[str, Any]:
        with self.lock:
            samples = [
                self.reflected[job] - self.complete[job][0]
                for job in self.first.values()
                if job in self.complete
            ]
            superseded = sum(
                1
                for job, (_, owner) in self.complete.items()
                if owner in self.first and slot(job) < slot(self.first[owner])
            )
            out: dict[str, Any] = {
                "tasks": self.m,
                "tasks_ready": len(self.ready),
                "jobs_complete_seen": len(self.complete),
                "tasks_reflecting_a_job": len(self.first),
                "count": len(samples),
                "superseded_jobs": superseded,
            }
        if samples:
            samples.sort()
            out.update(
                p50=percentile(samples, 0.5),
                p99=percentile(samples, 0.99),
                max=samples[-1],
                min=samples[0],
            )
        return out


def slot(job: str) -> int:
    """A CronJob's Job is named <cronjob>-<scheduled minutes since the epoch>."""
    tail = job.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[max(math.ceil(p * len(sorted_values)) - 1, 0)]


# --- processes and metrics ----------------------------------------------------------------


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def apiserver_counters(kc: Path) -> dict[str, Any]:
    """apiserver_request_total by (verb, resource[/subresource], code) and the server's CPU."""
    text = kubectl(kc, "get", "--raw", "/metrics", timeout=60)
    wanted = ("apiserver_request_total{", "process_cpu_seconds_total ")
    lines = "\n".join(line for line in text.splitlines() if line.startswith(wanted))
    requests: Counter[tuple[str, str, str]] = Counter()
    cpu = 0.0
    for family in text_string_to_metric_families(lines + "\n"):
        for s in family.samples:
            if s.name == "process_cpu_seconds_total":
                cpu = s.value
            elif s.name == "apiserver_request_total":
                res, sub = s.labels.get("resource", ""), s.labels.get("subresource", "")
                if not res:  # a non-resource URL: its path is in subresource
                    res, sub = "url /" + sub.lstrip("/"), ""
                res = f"{res}/{sub}" if sub else res
                requests[(s.labels["verb"], res, s.labels.get("code", ""))] += s.value
    return {"requests": requests, "cpu": cpu, "at": time.monotonic()}


def request_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    seconds = after["at"] - before["at"]
    by_key: Counter[tuple[str, str]] = Counter()
    errors: Counter[str] = Counter()
    for (verb, res, code), value in after["requests"].items():
        delta = value - before["requests"].get((verb, res, code), 0)
        if delta > 0:
            by_key[(verb, res)] += int(delta)
            if not code.startswith("2"):
                errors[f"{verb} {res} {code}"] += int(delta)

    def totals(rows: list[tuple[tuple[str, str], int]]) -> dict[str, Any]:
        non_watch = sum(c for (verb, _), c in rows if verb != "WATCH")
        by_verb = {v: sum(c for (verb, _), c in rows if verb == v) for v in VERBS}
        return {
            "non_watch": non_watch,
            "non_watch_per_second": non_watch / seconds,
            "watch": sum(c for (verb, _), c in rows if verb == "WATCH"),
            "by_verb": by_verb,
        }

    rows = sorted(by_key.items(), key=lambda kv: -kv[1])
    ours = [r for r in rows if r[0][1].split("/")[0] in OPERATOR_RESOURCES]
    return {
        "seconds": seconds,
        "rows": [
            {"verb": v, "resource": r, "count": c, "per_second": c / seconds} for (v, r), c in rows
        ],
        "all": totals(rows),
        "ours": totals(ours),
        "non_2xx": dict(errors),
        "apiserver_cpu_percent": 100 * (after["cpu"] - before["cpu"]) / seconds,
    }


def scrape(url: str, times: int = 5) -> dict[str, Any]:
    durations, size = [], 0
    for _ in range(times):
        start = time.monotonic()
        with urllib.request.urlopen(url, timeout=120) as resp:
            size = len(resp.read())
        durations.append(time.monotonic() - start)
    return {"median_seconds": statistics.median(durations), "bytes": size, "samples": durations}


def operator_requests(url: str) -> dict[str, float] | None:
    """The operator's own count of its requests (cronwarden_api_requests_total by verb and
    resource), or None for an operator that does not export it (older versions)."""
    with urllib.request.urlopen(url, timeout=120) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    found = False
    for line in text.splitlines():
        if line.startswith("cronwarden_api_requests_total{"):
            found = True
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            key = f"{labels.get('verb')} {labels.get('resource')}"
            out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    def __init__(
        self, root: Path, kc: Path, log_path: Path, resync: int, audit: int | None = None
    ) -> None:
        python = ROOT / ".venv" / "bin" / "python"
        env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
        env["PYTHONPATH"] = str(root / "operator")
        where = subprocess.run(
            [str(python), "-c", "import cronwarden; print(cronwarden.__file__)"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if not where.stdout.startswith(str(root / "operator")):
            raise BenchError(
                f"cronwarden is not imported from {root}/operator: "
                f"{where.stdout.strip() or where.stderr.strip()}"
            )
        port, self.metrics_port = free_port(), free_port()
        self.log_path = log_path
        flags = f"--namespace {NS_TASKS} --namespace {NS_LATENCY} --resync-seconds {resync} "
        help_text = subprocess.run(
            [str(python), "-m", "cronwarden", "run", "--help"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        # Operators before the audit have no --audit-seconds.
        self.audits = "--audit-seconds" in help_text
        if audit is not None and self.audits:
            flags += f"--audit-seconds {audit} "
        flags += (
            f"--metrics-port {self.metrics_port} --liveness-port {port} --bind-address 127.0.0.1"
        )
        cmd = [str(python), "-m", "cronwarden", "run", "--kubeconfig", str(kc), *flags.split()]
        with open(log_path, "w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        health = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"the operator exited ({self.proc.returncode}); see {log_path}")
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as r:
                if r.status == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"the operator's /healthz did not answer in 90s; see {log_path}")
            time.sleep(0.5)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_summary(self) -> dict[str, Any]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        bad = [ln for ln in lines if "ERROR" in ln or "Traceback" in ln or "WARNING" in ln]
        return {
            "lines": len(lines),
            "errors": sum("ERROR" in ln for ln in lines),
            "warnings": sum("WARNING" in ln for ln in lines),
            "tracebacks": sum("Traceback" in ln for ln in lines),
            "examples": bad[:5],
        }


# --- cluster ------------------------------------------------------------------------------


def cluster_ready(kc: Path) -> bool:
    cmd = [str(KUBECTL), "--kubeconfig", str(kc), "get", "--raw", "/readyz"]
    return kc.exists() and subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0


def wait_gone(kc: Path, kind: str, names: tuple[str, ...], timeout: float, *ns: str) -> list[str]:
    """Wait until none of the objects exist; returns those that still do."""
    deadline = time.monotonic() + timeout
    while True:
        out = kubectl(kc, *ns, "get", kind, "-o", "name", "--ignore-not-found", *names)
        left = [line.split("/")[-1] for line in out.split()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(2)


def prepare_namespaces(kc: Path) -> None:
    existing = set(kubectl(kc, "get", "namespaces", "-o", "name").split())
    stale = tuple(ns for ns in NAMESPACES if f"namespace/{ns}" in existing)
    if stale:
        log(f"deleting namespaces left from an earlier run: {', '.join(stale)}")
        kubectl(kc, "delete", "namespace", "--wait=false", *stale)
        if left := wait_gone(kc, "namespace", stale, 600):
            raise BenchError(f"namespaces {left} are still terminating after 600s")
    for ns in NAMESPACES:
        kubectl(kc, "create", "namespace", ns)


def apply_crd(kc: Path, root: Path) -> None:
    kubectl(kc, "apply", "--server-side", "--force-conflicts", "-f", str(root / "crds"))
    crd = f"crd/{PLURAL}.{GROUP}"
    for cond in ("create", "condition=Established"):
        kubectl(kc, "wait", f"--for={cond}", crd, "--timeout=60s", timeout=90)


# --- phases -------------------------------------------------------------------------------


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


def wait_event(
    done: threading.Event, deadline: float, op: Operator, progress: Callable[[], str]
) -> bool:
    """Wait for `done`, logging progress every 15 s; False at the deadline."""
    while not done.wait(timeout=min(15, max(deadline - time.monotonic(), 0))):
        if not op.alive():
            raise BenchError(f"the operator exited ({op.proc.returncode}); see {op.log_path}")
        if time.monotonic() >= deadline:
            return False
        log(progress())
    return True


def phase_tasks(kc: Path, op: Operator, n: int, chunk: int, timeout: float) -> dict[str, Any]:
    conv = Convergence(n)
    watchers = [
        Watcher(kc, TASKS, NS_TASKS, conv.on_task),
        Watcher(kc, CRONJOBS, NS_TASKS, conv.on_cronjob),
    ]
    start_watchers(watchers, time.monotonic() + 120)
    objs = [task(f"t-{i:05d}", NS_TASKS, NEVER) for i in range(n)]
    counters, cpu = apiserver_counters(kc), proc_cpu_seconds(op.pid)
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
        requests=request_delta(counters, apiserver_counters(kc)),
        watch_restarts=sum(w.restarts for w in watchers),
    )
    return result


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


# --- report -------------------------------------------------------------------------------


def report(r: dict[str, Any]) -> str:
    m = r["meta"]
    load = " ".join(f"{x:.2f}" for x in m["loadavg_start"])
    lines = [
        f"cronwarden bench: N={m['tasks']}, M={m['latency_tasks']}, operator "
        f"{m['operator_root']} ({m['operator_commit']}), {m['cpus']} CPUs, load {load} at start",
        "",
    ]

    def row(label: str, value: str) -> None:
        lines.append(f"  {label:<44} {value}")

    def verbs(totals: dict[str, Any]) -> str:
        return "  ".join(f"{v} {c}" for v, c in totals["by_verb"].items())

    if d := r.get("direct"):
        row(f"T_direct: {m['tasks']} CronJobs applied", f"{d['seconds']:.1f} s")
    if t := r.get("tasks"):
        done = "" if t["complete"] else f"  PARTIAL: {t['ready_with_cronjob']} of {m['tasks']}"
        row(f"T_tasks: {m['tasks']} tasks Ready with CronJob", f"{t['seconds']:.1f} s{done}")
        row("  of which kubectl apply", f"{t.get('apply_seconds', 0):.1f} s")
        row("  throughput", f"{t['tasks_per_second']:.1f} tasks/s")
        if "ratio" in r:
            row("ratio T_tasks / T_direct", f"{r['ratio']:.2f}")
        row("operator CPU while converging", f"{t['operator_cpu_seconds']:.1f} s")
    if "operator_rss_peak_kib" in r:
        row("operator RSS peak (VmHWM)", f"{r['operator_rss_peak_kib'] / 1024:.1f} MiB")
    if rest := r.get("rest"):
        req = rest["requests"]
        row("operator RSS at rest (VmRSS)", f"{rest['operator_rss_kib'] / 1024:.1f} MiB")
        row(
            f"operator CPU at rest ({rest['seconds']:.0f} s)",
            f"{rest['operator_cpu_percent']:.1f} % of a core",
        )
        row("apiserver CPU at rest", f"{req['apiserver_cpu_percent']:.1f} % of a core")
        for label, key in (("API requests at rest, non-watch", "all"), ("  " + OURS, "ours")):
            tot = req[key]
            row(
                label,
                f"{tot['non_watch']} ({tot['non_watch_per_second']:.2f}/s); WATCH {tot['watch']}",
            )
        if rest.get("operator_own_requests") is not None:
            own = rest["operator_own_requests"]
            total = int(sum(own.values()))
            detail = ", ".join(f"{k} {int(v)}" for k, v in sorted(own.items())) or "none"
            row("  sent by the operator (its own count)", f"{total} ({detail})")
            row(
                "  operator requests per second at rest",
                f"{total / rest['seconds']:.3f}/s (audit every "
                f"{m.get('audit_seconds') or '-'} s; target <= 0.5/s at N=10,000)",
            )
    if sc := r.get("metrics_scrape"):
        row(
            "/metrics scrape (median of 5)",
            f"{sc['median_seconds'] * 1000:.1f} ms, {sc['bytes']} bytes",
        )
    if (lat := r.get("latency")) and lat.get("count"):
        row(
            f"status latency ({lat['count']} of {m['latency_tasks']} tasks)",
            f"p50 {lat['p50']:.2f} s, p99 {lat['p99']:.2f} s, max {lat['max']:.2f} s, "
            f"min {lat['min']:.2f} s",
        )
    if rest:
        req = rest["requests"]
        lines += [
            "",
            f"  API requests over the rest window, whole apiserver ({req['seconds']:.0f} s):",
            f"    {'verb':<8} {'resource':<36} {'count':>8} {'per s':>8}",
        ]
        lines += [
            f"    {x['verb']:<8} {x['resource']:<36} {x['count']:>8} {x['per_second']:>8.2f}"
            for x in req["rows"]
        ]
        lines.append(f"    by verb, all: {verbs(req['all'])}")
        lines.append(f"    by verb, {OURS}: {verbs(req['ours'])}")
        if req["non_2xx"]:
            lines.append(f"    non-2xx: {req['non_2xx']}")
    if t:
        lines += [
            "",
            f"  API requests while converging, {OURS}: {verbs(t['requests']['ours'])}",
        ]
        if t["requests"]["non_2xx"]:
            lines.append(f"    non-2xx while converging: {t['requests']['non_2xx']}")
    if lat:
        lines.append(
            f"  latency phase: {lat['tasks_ready']} tasks Ready, {lat['jobs_complete_seen']} "
            f"Jobs seen Complete, {lat['superseded_jobs']} superseded before reflected"
        )
    if ol := r.get("operator_log"):
        lines.append(
            f"  operator log: {ol['lines']} lines, {ol['errors']} ERROR, {ol['warnings']} "
            f"WARNING, {ol['tracebacks']} Traceback ({m['operator_log']})"
        )
    lines += [f"  ERROR: {e}" for e in r["errors"]]
    lines.append(f"  wall time {r['wall_seconds']:.0f} s; JSON {m['json']}")
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", type=int, default=10000, help="N, tasks and CronJobs to apply")
    p.add_argument("--latency-tasks", type=int, default=200, help="M, per-minute tasks")
    p.add_argument("--json", type=Path, help="output (default .state/bench/bench-N.json)")
    p.add_argument(
        "--operator-root",
        type=Path,
        default=ROOT,
        help="checkout whose operator/ and crds/ are run (default: this one)",
    )
    p.add_argument(
        "--kubeconfig",
        type=Path,
        help="use this running cluster; else $STATE_DIR/kubeconfig, "
        "started with hack/cluster.sh up (and stopped after) if not running",
    )
    p.add_argument("--resync-seconds", type=int, default=60, help="the operator's resync")
    p.add_argument(
        "--audit-seconds",
        type=int,
        default=180,
        help="the operator's audit period (its default; ignored by operators without one)",
    )
    p.add_argument(
        "--rest-seconds",
        type=float,
        help="at-rest window (default: the longer of resync and audit, + 10 s, so that "
        "both run once in it)",
    )
    p.add_argument("--chunk", type=int, default=500, help="objects per kubectl apply")
    p.add_argument("--phase-timeout", type=float, default=1800, help="deadline of each phase")
    args = p.parse_args(argv)
    args.operator_root = args.operator_root.resolve()
    args.json = args.json or OUT_DIR / f"bench-{args.tasks}.json"
    if args.rest_seconds is None:
        args.rest_seconds = max(args.resync_seconds, args.audit_seconds) + 10
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not KUBECTL.exists():
        raise SystemExit(f"bench: {KUBECTL} is missing: run 'make tools' first")
    if not (args.operator_root / "operator" / "cronwarden").is_dir():
        raise SystemExit(f"bench: {args.operator_root}/operator/cronwarden does not exist")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "-C", str(args.operator_root), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    op_log = OUT_DIR / f"operator-{args.tasks}.log"
    r: dict[str, Any] = {
        "meta": {
            "tasks": args.tasks,
            "latency_tasks": args.latency_tasks,
            "chunk": args.chunk,
            "operator_root": str(args.operator_root),
            "operator_commit": commit or "unknown",
            "resync_seconds": args.resync_seconds,
            "rest_seconds": args.rest_seconds,
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "json": str(args.json),
            "operator_log": str(op_log),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "errors": [],
        "loadavg": {},
    }
    wall = time.monotonic()
    kc = args.kubeconfig or STATE_DIR / "kubeconfig"
    started_cluster = False
    op: Operator | None = None
    try:
        if not cluster_ready(kc):
            if args.kubeconfig:
                raise BenchError(f"no cluster answers with {kc}")
            log("starting the cluster with hack/cluster.sh up")
            subprocess.run([str(ROOT / "hack" / "cluster.sh"), "up"], check=True, timeout=600)
            started_cluster = True
        r["meta"]["kubeconfig"] = str(kc)
        apply_crd(kc, args.operator_root)
        prepare_namespaces(kc)

        log(f"direct: applying {args.tasks} CronJobs")
        r["direct"] = phase_direct(kc, args.tasks, args.chunk, args.phase_timeout)
        r["loadavg"]["direct"] = os.getloadavg()

        op = Operator(args.operator_root, kc, op_log, args.resync_seconds, args.audit_seconds)
        r["meta"]["audit_seconds"] = args.audit_seconds if op.audits else None
        log(f"operator pid {op.pid} live (log {op_log}); tasks: applying {args.tasks}")
        r["tasks"] = phase_tasks(kc, op, args.tasks, args.chunk, args.phase_timeout)
        r["ratio"] = r["tasks"]["seconds"] / r["direct"]["seconds"]
        r["operator_rss_peak_after_tasks_kib"] = proc_memory(op.pid)["VmHWM"]
        r["loadavg"]["tasks"] = os.getloadavg()
        if not r["tasks"]["complete"]:
            r["errors"].append(f"tasks phase incomplete: {r['tasks'].get('error', 'deadline')}")

        log(f"rest: {args.rest_seconds:.0f}s with nothing to do")
        r["rest"] = phase_rest(kc, op, args.rest_seconds)
        r["loadavg"]["rest"] = os.getloadavg()
        r["metrics_scrape"] = scrape(op.metrics_url)

        log(f"latency: {args.latency_tasks} per-minute tasks")
        r["latency"] = phase_latency(kc, op, args.latency_tasks, args.chunk, args.phase_timeout)
        r["loadavg"]["latency"] = os.getloadavg()
        if r["latency"]["count"] < args.latency_tasks:
            r["errors"].append(f"latency phase: {r['latency'].get('error', 'deadline')}")
    except (BenchError, subprocess.SubprocessError, OSError) as err:
        r["errors"].append(str(err))
    except Exception as err:
        traceback.print_exc()
        r["errors"].append(f"{type(err).__name__}: {err}")
    except KeyboardInterrupt:
        r["errors"].append("interrupted")
    finally:
        if op is not None:
            if not op.alive():
                r["errors"].append(f"the operator died ({op.proc.returncode}); see {op_log}")
            else:
                r["operator_rss_peak_kib"] = proc_memory(op.pid)["VmHWM"]
            op.stop()
            r["operator_log"] = op.log_summary()
        cleanup(kc, started_cluster, r)
    r["wall_seconds"] = time.monotonic() - wall
    args.json.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print("\n" + report(r))
    return 1 if r["errors"] else 0


def cleanup(kc: Path, started_cluster: bool, r: dict[str, Any]) -> None:
    try:
        if started_cluster:
            subprocess.run([str(ROOT / "hack" / "cluster.sh"), "down"], check=True, timeout=300)
            return
        if cluster_ready(kc):
            log("deleting the bench namespaces (waiting up to 300s)")
            kubectl(kc, "delete", "namespace", "--wait=false", "--ignore-not-found", *NAMESPACES)
            if left := wait_gone(kc, "namespace", NAMESPACES, 300):
                r["errors"].append(f"namespaces still terminating after 300s: {left}")
    except (BenchError, subprocess.SubprocessError, OSError) as err:
        r["errors"].append(f"cleanup: {err}")


if __name__ == "__main__":
    sys.exit(main())
