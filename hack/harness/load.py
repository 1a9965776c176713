"""What the harness applies: ScheduledTasks, the equivalent plain CronJobs, and how."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness.setup import GROUP, VERSION, BenchError, kubectl

NS_DIRECT, NS_TASKS, NS_LATENCY = "bench-direct", "bench-tasks", "bench-latency"
NAMESPACES = (NS_DIRECT, NS_TASKS, NS_LATENCY)
NEVER = "0 0 1 1 *"
APPLY = ("apply", "--server-side", "--field-manager=bench", "-f", "-")


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


# The chaos mix. Per-minute tasks cycle through these kinds; the rest never fire.
FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"  # kwok fails such pods
CHAOS_KINDS = (
    "plain",
    "failing",
    "plain",
    "history0",
    "plain",
    "ttl0",
    "plain",
    "hung",
    "plain",
    "failing",
)
GRACE_SECONDS = 30  # missedRunGraceSeconds of the chaos tasks: short, so that runs stay short


def chaos_task(name: str, namespace: str, kind: str) -> dict[str, Any]:
    """One task of the chaos mix: `kind` is one of CHAOS_KINDS, or "never" (no slot
    during a run). Schedules are UTC (the recorder computes slots with croniter)."""
    obj = task(name, namespace, NEVER if kind == "never" else "* * * * *")
    spec = obj["spec"]
    spec["timeZone"] = "Etc/UTC"
    spec["missedRunGraceSeconds"] = GRACE_SECONDS
    obj["metadata"]["labels"] = {"cronwarden.io/chaos-kind": kind}
    job, pod = spec["jobTemplate"]["spec"], spec["jobTemplate"]["spec"]["template"]
    if kind == "failing":
        pod["metadata"] = {"labels": {FAIL_LABEL: "true"}}
    elif kind == "history0":
        spec["successfulJobsHistoryLimit"] = 0
        spec["failedJobsHistoryLimit"] = 0
    elif kind == "ttl0":
        job["ttlSecondsAfterFinished"] = 0
    elif kind == "hung":  # Forbid (the default) with a run whose pod never starts
        spec["concurrencyPolicy"] = "Forbid"
        pod["spec"]["nodeSelector"] = {"cronwarden.io/no-such-node": "true"}
    return obj


def chaos_tasks(n: int, per_minute: int, namespace: str) -> list[dict[str, Any]]:
    return [
        chaos_task(
            f"c-{i:04d}",
            namespace,
            CHAOS_KINDS[i % len(CHAOS_KINDS)] if i < per_minute else "never",
        )
        for i in range(n)
    ]
