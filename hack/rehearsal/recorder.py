"""Ground truth for the rehearsal, from the cluster and never from the operator.

`Recorder` watches, on its own connections, the Jobs of the rehearsal's namespaces
(every run that finished, by Job uid, with its result) and the operator's pods
(when one was Ready). `compare` then sets each task's counters in its status
against the Jobs that really finished: a run the operator never counted is lost,
one it counted more than once is counted twice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch
from kubernetes.client import ApiClient

TASK_LABEL = "cronwarden.io/task"


@dataclass
class Run:
    namespace: str
    task: str
    job: str
    result: str  # "Succeeded" or "Failed"


@dataclass
class Recorder:
    api: ApiClient
    namespaces: list[str]
    operator_namespace: str
    operator_selector: str
    runs: dict[str, Run] = field(default_factory=dict)
    # (monotonic time, whether some operator pod is Ready), in order.
    ready_changes: list[tuple[float, bool]] = field(default_factory=list)
    _ready_pods: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for namespace in self.namespaces:
            self._spawn(self._watch_jobs, namespace)
        self._spawn(self._watch_operator)

    def stop(self) -> None:
        self._stop.set()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _stream(self, list_fn: Any, on_event: Any, **kwargs: Any) -> None:
        """Watch until stopped, resuming from the last resourceVersion (relist on 410)."""
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listed = list_fn(**kwargs)
                    for obj in listed.items:
                        on_event(obj)
                    version = listed.metadata.resource_version
                for event in watch.Watch().stream(
                    list_fn, resource_version=version, timeout_seconds=30, **kwargs
                ):
                    obj = event["object"]
                    version = obj.metadata.resource_version
                    on_event(obj)
                    if self._stop.is_set():
                        return
            except client.ApiException as err:
                if err.status == 410:
                    version = ""
                else:
                    time.sleep(1)
            except Exception:
                time.sleep(1)

    def _watch_jobs(self, namespace: str) -> None:
        batch = client.BatchV1Api(self.api)
        self._stream(batch.list_namespaced_job, self._on_job, namespace=namespace)

    def _on_job(self, job: Any) -> None:
        task = (job.metadata.labels or {}).get(TASK_LABEL)
        if not task:
            return
        result = None
        for cond in (job.status and job.status.conditions) or []:
            if cond.status == "True" and cond.type in ("Complete", "Failed"):
                result = "Succeeded" if cond.type == "Complete" else "Failed"
        if result:
            with self._lock:
                self.runs[job.metadata.uid] = Run(
                    job.metadata.namespace, task, job.metadata.name, result
                )

    def _watch_operator(self) -> None:
        core = client.CoreV1Api(self.api)
        self._stream(
            core.list_namespaced_pod,
            self._on_pod,
            namespace=self.operator_namespace,
            label_selector=self.operator_selector,
        )

    def _on_pod(self, pod: Any) -> None:
        ready = pod.metadata.deletion_timestamp is None and any(
            c.type == "Ready" and c.status == "True"
            for c in (pod.status and pod.status.conditions) or []
        )
        with self._lock:
            before = bool(self._ready_pods)
            if ready:
                self._ready_pods.add(pod.metadata.name)
            else:
                self._ready_pods.discard(pod.metadata.name)
            after = bool(self._ready_pods)
            if before != after or not self.ready_changes:
                self.ready_changes.append((time.monotonic(), after))

    def counts(self) -> dict[tuple[str, str], dict[str, int]]:
        """Finished runs per (namespace, task): {"Succeeded": n, "Failed": n}."""
        out: dict[tuple[str, str], dict[str, int]] = {}
        with self._lock:
            for run in self.runs.values():
                per = out.setdefault((run.namespace, run.task), {"Succeeded": 0, "Failed": 0})
                per[run.result] += 1
        return out

    def downtime(self, since: float, until: float) -> float:
        """Seconds within [since, until] during which no operator pod was Ready."""
        with self._lock:
            changes = list(self.ready_changes)
        down, state, at = 0.0, False, since
        for when, ready in changes:
            if when <= since:
                state = ready
                continue
            if when >= until:
                break
            if not state:
                down += when - at
            state, at = ready, when
        if not state:
            down += until - at
        return down


def compare(
    truth: dict[tuple[str, str], dict[str, int]], statuses: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any]:
    """Lost and doubly counted runs: the Jobs that finished against each task's counters."""
    lost = twice = 0
    per_task = {}
    for key in sorted(set(truth) | set(statuses)):
        real = truth.get(key, {"Succeeded": 0, "Failed": 0})
        status = statuses.get(key, {})
        counted = {"Succeeded": status.get("succeeded", 0), "Failed": status.get("failed", 0)}
        for result in ("Succeeded", "Failed"):
            diff = counted[result] - real[result]
            lost += max(-diff, 0)
            twice += max(diff, 0)
        per_task[f"{key[0]}/{key[1]}"] = {"jobs": real, "status": counted}
    return {"lost": lost, "counted_twice": twice, "tasks": per_task}
