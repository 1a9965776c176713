"""What the harness measures: watches (convergence, latency), process RSS and CPU, the
API server's request counters and the operator's own."""

from __future__ import annotations

import math
import os
import re
import statistics
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from prometheus_client.parser import text_string_to_metric_families

from harness.setup import GROUP, PLURAL, VERSION, BenchError, Operator, kubectl, log

# Only the operator reads or writes these in the bench namespaces while at rest.
OPERATOR_RESOURCES = ("scheduledtasks", "cronjobs", "jobs", "events")
OURS = "/".join(OPERATOR_RESOURCES)
VERBS = ("GET", "LIST", "PATCH", "POST", "PUT", "DELETE")
# (group, version, plural) of what the harness watches.
TASKS, CRONJOBS, JOBS = (
    (GROUP, VERSION, PLURAL),
    ("batch", "v1", "cronjobs"),
    ("batch", "v1", "jobs"),
)
OnEvent = Callable[[str, dict[str, Any]], None]


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
        self.before: set[str] = set()  # Jobs that finished before restart(): not measured
        self.done = threading.Event()

    def restart(self) -> None:
        """Measure only Jobs that finish from now on (not those a task's first status
        names, which finished before it was judged)."""
        with self.lock:
            self.before = set(self.complete) | set(self.reflected)
            self.first.clear()
            self.done.clear()

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
            if job and type_ != "DELETED" and job not in self.before:
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


def task_series(url: str) -> int:
    """How many tasks an operator exports (its cronwarden_task_info lines); -1 if down."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
    except OSError:
        return -1
    return sum(1 for line in text.splitlines() if line.startswith("cronwarden_task_info{"))


def wait_event(
    done: threading.Event,
    deadline: float,
    ops: Operator | Sequence[Operator],
    progress: Callable[[], str],
) -> bool:
    """Wait for `done`, logging progress every 15 s; False at the deadline. Raises when
    an operator process exits meanwhile."""
    replicas = [ops] if isinstance(ops, Operator) else ops
    while not done.wait(timeout=min(15, max(deadline - time.monotonic(), 0))):
        for op in replicas:
            if not op.alive():
                raise BenchError(f"an operator exited ({op.proc.returncode}); see {op.log_path}")
        if time.monotonic() >= deadline:
            return False
        log(progress())
    return True
