"""Tasks, CronJobs, Jobs and Events in wire form, at fixed named instants."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

# Saturday 2026-11-28, ten past noon UTC.
NOON = datetime(2026, 11, 28, 12, 10, tzinfo=UTC)
TASK_UID = "0f9a3c7e-2b1d-4e5f-8a6b-7c8d9e0f1a2b"
CRONJOB_UID = "5d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6"


def cond(
    type_: str, status: str, reason: str, message: str = "", since: str = ""
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or "2026-11-28T12:00:00Z",
    }


HEALTHY = [
    cond("Ready", "True", "Reconciled", "CronJob backup is in sync with the spec"),
    cond("Late", "False", "OnSchedule", "every due run started"),
    cond("Blocked", "False", "NotBlocked", "no earlier run is keeping slots from running"),
    cond("Failing", "False", "BelowFailureLimit", "0 failed run(s) in a row, limit 1"),
    cond("Stale", "False", "NoSuccessDeadline", "spec.successDeadlineSeconds is not set"),
    cond("LongRunning", "False", "WithinDuration", "no run is over its duration limit"),
    cond("Suspended", "False", "NotSuspended", "runs start on schedule"),
]


def with_conditions(*changed: dict[str, Any]) -> list[dict[str, Any]]:
    """HEALTHY with some conditions replaced by type."""
    by_type = {c["type"]: c for c in changed}
    return [by_type.get(c["type"], c) for c in HEALTHY]


def task(
    name: str = "backup",
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    namespace: str = "team-a",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "cronwarden.io/v1alpha1",
        "kind": "ScheduledTask",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": TASK_UID,
            "generation": 1,
            "creationTimestamp": "2026-11-20T00:00:00Z",
        },
        "spec": {
            "schedule": "30 2 * * *",
            "owner": "team-storage",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}},
            **copy.deepcopy(spec or {}),
        },
    }
    if status is not None:
        body["status"] = {"observedGeneration": 1, "cronJobName": name, **status}
    return body


def cronjob(name: str = "backup", **template_meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": CRONJOB_UID,
            "labels": {"app.kubernetes.io/managed-by": "cronwarden", "cronwarden.io/task": name},
            "ownerReferences": [
                {
                    "apiVersion": "cronwarden.io/v1alpha1",
                    "kind": "ScheduledTask",
                    "name": name,
                    "uid": TASK_UID,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "schedule": "30 2 * * *",
            "timeZone": "Etc/UTC",
            "jobTemplate": {
                "metadata": template_meta,
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": {"cronwarden.io/task": name}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "main", "image": "busybox:1.37"}],
                        },
                    },
                },
            },
        },
    }


def job(
    name: str,
    *,
    created: str,
    start: str | None = None,
    complete: str | None = None,
    failed: str | None = None,
    scheduled: str | None = None,
    triggered_by: str | None = None,
) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    if scheduled:
        annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] = scheduled
    if triggered_by:
        annotations["cronwarden.io/triggered-by"] = triggered_by
    status: dict[str, Any] = {}
    if start:
        status["startTime"] = start
    if complete:
        status["completionTime"] = complete
        status["conditions"] = [{"type": "Complete", "status": "True"}]
    if failed:
        status["conditions"] = [
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "lastTransitionTime": failed,
            }
        ]
    return {
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "creationTimestamp": created,
            "annotations": annotations,
            "ownerReferences": [{"kind": "CronJob", "uid": CRONJOB_UID, "controller": True}],
        },
        "status": status,
    }


def event(
    reason: str, message: str, *, first: str, last: str, count: int = 1, type_: str = "Normal"
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"backup.{reason.lower()}"},
        "involvedObject": {"kind": "ScheduledTask", "name": "backup", "uid": TASK_UID},
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": "cronwarden"},
        "firstTimestamp": first,
        "lastTimestamp": last,
        "count": count,
    }
