"""Build the CronJob that a ScheduledTask owns. Pure: no API calls, no clock."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
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
    assert task.spec.job_template is not None, "a managed task has a jobTemplate (CRD rule)"
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
        # Always explicit: the controller and the operator evaluate the same zone.
        "timeZone": models.effective_time_zone(spec),
        "suspend": bool(spec.suspend),
        "concurrencyPolicy": models.effective_concurrency_policy(spec),
        "startingDeadlineSeconds": models.effective_starting_deadline_seconds(spec),
        "successfulJobsHistoryLimit": successful,
        "failedJobsHistoryLimit": failed,
        "jobTemplate": _job_template(task),
    }
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


# A Kubernetes resource.Quantity in its serialised form: 1.5Gi, 1536Mi, 500m, 1e3.
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}


def quantity(value: Any) -> Decimal | None:
    """The value of a number or of a Kubernetes quantity string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if match is None:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E") and suffix not in _SUFFIX:
            return Decimal(number + suffix)
        return Decimal(number) * _SUFFIX[suffix]
    except InvalidOperation:
        return None


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def is_subset(desired: Any, actual: Any) -> bool:
    """Whether every value in `desired` is present and equal in `actual`, comparing as
    the API server stores objects.

    The API server adds defaults to what we apply (so the live object is a superset
    of the desired one when nobody changed it), drops empty lists, maps and nulls, and
    writes quantities in canonical form (1.5Gi as 1536Mi, a cpu of 1 as "1").
    """
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return not desired and actual is None
        return all(
            is_subset(value, actual[key]) if key in actual else _empty(value)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(actual, list):
            return not desired and actual is None
        return len(desired) == len(actual) and all(
            is_subset(d, a) for d, a in zip(desired, actual, strict=True)
        )
    if desired == actual and type(desired) is type(actual):
        return True
    if desired is None:
        return actual is None
    a, b = quantity(desired), quantity(actual)
    return a is not None and a == b and (isinstance(desired, str) or isinstance(actual, str))


def in_sync(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Whether the live CronJob already matches the desired one: no write needed."""
    if live is None:
        return False
    live_hash = (live.get("metadata", {}).get("annotations") or {}).get(SPEC_HASH_ANNOTATION)
    wanted_hash = desired["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    return (
        live_hash == wanted_hash and metadata_in_sync(desired, live) and spec_in_sync(desired, live)
    )


def metadata_in_sync(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    """Labels and ownerReferences, which a hand edit may change without a new generation."""
    meta = desired["metadata"]
    return is_subset(
        {"labels": meta["labels"], "ownerReferences": meta["ownerReferences"]},
        live.get("metadata") or {},
    )


def spec_in_sync(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    return is_subset(desired["spec"], live.get("spec") or {})


def desired_hash(desired: dict[str, Any]) -> str:
    return str(desired["metadata"]["annotations"][SPEC_HASH_ANNOTATION])
