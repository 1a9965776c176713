"""Build the CronJob that a ScheduledTask owns. Pure: no API calls, no clock."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from cronwarden.api import models
from cronwarden.api.models import ScheduledTask

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "cronwarden"
TASK_LABEL = "cronwarden.io/task"
SPEC_HASH_ANNOTATION = "cronwarden.io/spec-hash"
FIELD_MANAGER = "cronwarden"


def labels_for(task_name: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, TASK_LABEL: task_name}


def selector_for(task_name: str) -> str:
    """Label selector for the CronJob and Jobs of one task."""
    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{TASK_LABEL}={task_name}"


def cronjob_name(task: ScheduledTask) -> str:
    return task.name


def owner_reference(task: ScheduledTask) -> dict[str, Any]:
    return {
        "apiVersion": models.API_VERSION,
        "kind": models.KIND,
        "name": task.name,
        "uid": task.metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _job_template(task: ScheduledTask) -> dict[str, Any]:
    template = task.spec.job_template.model_dump(by_alias=True, exclude_none=True)
    template = copy.deepcopy(template)
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**metadata.get("labels", {}), **labels_for(task.name)}
    pod = template["spec"].setdefault("template", {})
    pod_metadata = pod.setdefault("metadata", {})
    pod_metadata["labels"] = {**pod_metadata.get("labels", {}), **labels_for(task.name)}
    # Jobs reject restartPolicy Always (the Pod default): default to Never.
    pod.setdefault("spec", {}).setdefault("restartPolicy", "Never")
    return template


def cronjob_spec(task: ScheduledTask) -> dict[str, Any]:
    """The CronJob spec, with cronwarden's defaults filled in."""
    spec = task.spec
    successful, failed = models.effective_history_limits(spec)
    out: dict[str, Any] = {
        "schedule": spec.schedule,
        "suspend": bool(spec.suspend),
        "concurrencyPolicy": models.effective_concurrency_policy(spec),
        "startingDeadlineSeconds": models.effective_starting_deadline_seconds(spec),
        "successfulJobsHistoryLimit": successful,
        "failedJobsHistoryLimit": failed,
        "jobTemplate": _job_template(task),
    }
    if spec.time_zone is not None:
        out["timeZone"] = spec.time_zone
    return out


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def build_cronjob(task: ScheduledTask) -> dict[str, Any]:
    """The whole CronJob object to apply (server-side apply, field manager cronwarden)."""
    spec = cronjob_spec(task)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(task),
            "namespace": task.namespace,
            "labels": labels_for(task.name),
            "annotations": {SPEC_HASH_ANNOTATION: spec_hash(spec)},
            "ownerReferences": [owner_reference(task)],
        },
        "spec": spec,
    }


def is_subset(desired: Any, actual: Any) -> bool:
    """Whether every value in `desired` is present and equal in `actual`.

    The API server adds defaults to what we apply, so the live object is a
    superset of the desired one when nobody changed it.
    """
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            key in actual and is_subset(value, actual[key]) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(desired) == len(actual)
            and all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
        )
    return bool(desired == actual)


def in_sync(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Whether the live CronJob already matches the desired one: no write needed."""
    if live is None:
        return False
    live_hash = (live.get("metadata", {}).get("annotations") or {}).get(SPEC_HASH_ANNOTATION)
    wanted_hash = desired["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    return live_hash == wanted_hash and is_subset(
        {
            "metadata": {
                "labels": desired["metadata"]["labels"],
                "ownerReferences": desired["metadata"]["ownerReferences"],
            },
            "spec": desired["spec"],
        },
        live,
    )
