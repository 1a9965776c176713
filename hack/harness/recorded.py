"""What the chaos recorder keeps of each object it watches: pure summaries of API
objects (plain dicts in, plain dicts out). Standard library only, like the recorder
(hack/harness/recorder.py), which imports it as a sibling module."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"
Summary = dict[str, Any]


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def condition(obj: dict[str, Any], type_: str) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return str(c.get("status"))
    return None


def controller(obj: dict[str, Any]) -> dict[str, Any]:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return {}


def job_summary(obj: dict[str, Any]) -> Summary:
    status = obj.get("status") or {}
    result = None
    if condition(obj, "Complete") == "True":
        result = "Succeeded"
    elif condition(obj, "Failed") == "True":
        result = "Failed"
    owner = controller(obj)
    return {
        "job": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "cronjob": owner.get("name") if owner.get("kind") == "CronJob" else None,
        "cronjob_uid": owner.get("uid") if owner.get("kind") == "CronJob" else None,
        "scheduled": (obj["metadata"].get("annotations") or {}).get(SCHEDULED),
        "created": obj["metadata"].get("creationTimestamp"),
        "start": status.get("startTime"),
        "result": result,
        "completion": status.get("completionTime"),
    }


def cronjob_summary(obj: dict[str, Any]) -> Summary:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    labels = obj["metadata"].get("labels") or {}
    return {
        "cronjob": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "created": obj["metadata"].get("creationTimestamp"),
        "schedule": spec.get("schedule"),
        "time_zone": spec.get("timeZone"),
        "suspend": bool(spec.get("suspend")),
        "policy": spec.get("concurrencyPolicy"),
        "managed_by": labels.get("app.kubernetes.io/managed-by"),
        "task_uid": controller(obj).get("uid"),
        "last_schedule": status.get("lastScheduleTime"),
        "last_success": status.get("lastSuccessfulTime"),
        "active": sorted(ref.get("name", "") for ref in status.get("active") or []),
    }


def task_summary(obj: dict[str, Any]) -> Summary:
    status = obj.get("status") or {}
    last_run = status.get("lastRun") or {}
    return {
        "task": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "generation": obj["metadata"].get("generation"),
        "schedule": (obj.get("spec") or {}).get("schedule"),
        "suspend": bool((obj.get("spec") or {}).get("suspend")),
        "observed": status.get("observedGeneration"),
        "ready": condition(obj, "Ready"),
        "late": condition(obj, "Late"),
        "blocked": condition(obj, "Blocked"),
        "succeeded": status.get("succeeded", 0),
        "failed": status.get("failed", 0),
        "unknown": status.get("unknown", 0),
        "missed": status.get("missedRuns", 0),
        "skipped": (status.get("skippedRuns") or {}).get("forbid", 0),
        "last_schedule": status.get("lastScheduleTime"),
        "last_success": status.get("lastSuccessfulTime"),
        "last_failure": status.get("lastFailureTime"),
        "last_missed": status.get("lastMissedTime"),
        "last_skipped": status.get("lastSkippedTime"),
        "last_run": last_run.get("job"),
        "last_result": last_run.get("result"),
        "watermark": (status.get("watermark") or {}).get("completionTime"),
        "active": list(status.get("active") or []),
    }


def pod_summary(obj: dict[str, Any]) -> Summary:
    return {
        "pod": obj["metadata"]["name"],
        "job": (obj["metadata"].get("labels") or {}).get("job-name"),
        "phase": (obj.get("status") or {}).get("phase"),
    }


def event_summary(obj: dict[str, Any]) -> Summary:
    involved = obj.get("involvedObject") or {}
    return {
        "reason": obj.get("reason"),
        "type": obj.get("type"),
        "object": f"{involved.get('kind')}/{involved.get('name')}",
        "count": obj.get("count") or (obj.get("series") or {}).get("count") or 1,
        "message": (obj.get("message") or "")[:200],
    }


def lease_summary(obj: dict[str, Any]) -> Summary:
    """Who holds a coordination.k8s.io Lease and since when (the holder's own clock)."""
    spec = obj.get("spec") or {}
    return {
        "lease": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "holder": spec.get("holderIdentity") or None,
        "acquired": spec.get("acquireTime"),
        "transitions": spec.get("leaseTransitions", 0),
    }


SUMMARIES: dict[str, Callable[[dict[str, Any]], Summary]] = {
    "jobs": job_summary,
    "cronjobs": cronjob_summary,
    "scheduledtasks": task_summary,
    "pods": pod_summary,
    "events": event_summary,
    "leases": lease_summary,
}
