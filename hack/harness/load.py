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
