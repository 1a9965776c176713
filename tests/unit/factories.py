"""Objects in the wire form the API server returns, for table tests."""

from __future__ import annotations

import copy
from typing import Any

from cronwarden.api.models import ScheduledTask

TASK_UID = "0f9a3c7e-2b1d-4e5f-8a6b-7c8d9e0f1a2b"


def task_body(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "cronwarden.io/v1alpha1",
        "kind": "ScheduledTask",
        "metadata": {
            "name": "backup",
            "namespace": "team-a",
            "uid": TASK_UID,
            "generation": 1,
            "resourceVersion": "100",
            "creationTimestamp": "2026-11-27T00:00:00Z",
            **meta,
        },
        "spec": {
            "schedule": "30 2 * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}
                    }
                }
            },
        },
    }
    body["spec"].update(copy.deepcopy(spec or {}))
    return body


def task(
    spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, **meta: Any
) -> ScheduledTask:
    """A parsed task; `meta` overrides metadata fields (generation, creationTimestamp)."""
    body = task_body(spec, **meta)
    if status is not None:
        body["status"] = status
    return ScheduledTask.model_validate(body)


def job(
    name: str,
    *,
    scheduled: str | None = None,
    start: str | None = None,
    complete: str | None = None,
    failed: str | None = None,
    reason: str = "BackoffLimitExceeded",
    created: str | None = None,
) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = []
    status: dict[str, Any] = {}
    if start:
        status["startTime"] = start
    if complete:
        status["completionTime"] = complete
        conditions.append({"type": "Complete", "status": "True", "lastTransitionTime": complete})
    if failed:
        conditions.append(
            {
                "type": "Failed",
                "status": "True",
                "lastTransitionTime": failed,
                "reason": reason,
                "message": "Job has reached the specified backoff limit",
            }
        )
    if conditions:
        status["conditions"] = conditions
    annotations = {}
    if scheduled:
        annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] = scheduled
    metadata: dict[str, Any] = {"name": name, "namespace": "team-a", "annotations": annotations}
    if created:
        metadata["creationTimestamp"] = created
    return {"metadata": metadata, "status": status}
