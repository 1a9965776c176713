"""Reconcile one ScheduledTask: keep its CronJob in sync and its status true.

Written as numbered steps; every decision is made by the pure modules
(builder, status), every API call goes through kube.Kube.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pydantic

from cronwarden.api.models import ScheduledTask, ScheduledTaskStatus
from cronwarden.core import builder
from cronwarden.core.conditions import Event, Problem
from cronwarden.core.status import compute_status
from cronwarden.runtime.kube import ApiError, Kube
from cronwarden.runtime.metrics import TaskMetrics

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def invalid_spec_message(err: pydantic.ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"spec.{where}: {e['msg']}")
    return "; ".join(parts)


def problem_from_apply(err: ApiError) -> Problem:
    """An invalid CronJob (422) is the task's fault: report it on the task."""
    if "timeZone" in err.message:
        return Problem("UnknownTimeZone", f"spec.timeZone: {err.message}")
    return Problem("InvalidSpec", f"the CronJob was rejected: {err.message}")


def status_body(status: ScheduledTaskStatus) -> dict[str, Any]:
    """Status in wire form; unset fields are sent as null so a merge patch removes them."""
    body: dict[str, Any] = status.model_dump(by_alias=True, mode="json")
    return body


class Controller:
    def __init__(self, kube: Kube, metrics: TaskMetrics, clock: Clock = utcnow) -> None:
        self.kube = kube
        self.metrics = metrics
        self.clock = clock

    def reconcile(self, namespace: str, name: str) -> datetime | None:
        """Reconcile one task; returns when to reconcile it again (time-driven changes
        such as a slot becoming due), or None. Raises ApiError when an API call failed;
        the caller retries."""
        # 1. Read the task. A deleted task's CronJob and Jobs are garbage-collected.
        obj = self.kube.get_task(namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.metrics.forget(namespace, name)
            return None

        # 2. Parse it. Admission rejects almost every invalid spec; what remains is
        #    reported on the object rather than raised.
        try:
            task = ScheduledTask.model_validate(obj)
        except pydantic.ValidationError as err:
            self.report_unparsable(obj, invalid_spec_message(err))
            return None

        # 3. Bring the CronJob in sync: no write when it already is.
        desired = builder.build_cronjob(task)
        live = self.kube.get_cronjob(namespace, desired["metadata"]["name"])
        problem: Problem | None = None
        events: list[Event] = []
        applied = False
        if not builder.in_sync(desired, live):
            drifted = self.drifted(task, desired, live)
            try:
                live = self.kube.apply_cronjob(desired)
            except ApiError as err:
                if err.retryable:
                    raise
                problem = problem_from_apply(err)
            else:
                applied = True
                if drifted:
                    events.append(Event("Normal", "DriftCorrected", drifted))
                log.info("applied CronJob %s/%s", namespace, desired["metadata"]["name"])

        # 4. Observe the runs.
        jobs = self.kube.list_jobs(namespace, builder.selector_for(task.name))

        # 5. Compute the status; write it only when it changed.
        outcome = compute_status(task, live, jobs, self.clock(), problem)
        status = outcome.status
        events.extend(outcome.events)
        status_changed = status != task.status
        if status_changed:
            self.kube.patch_task_status(
                namespace, name, status_body(status), obj["metadata"]["resourceVersion"]
            )
        log.debug(
            "reconciled %s/%s: cronjob %s, status %s",
            namespace,
            name,
            "applied" if applied else "in sync",
            "written" if status_changed else "unchanged",
        )

        # 6. Tell people, once the status that records it is written.
        for event in events:
            self.kube.post_event(obj, event.type, event.reason, event.message)

        # 7. Export what status says as metrics.
        self.metrics.update(task, outcome)
        return outcome.wake_at

    def drifted(
        self, task: ScheduledTask, desired: dict[str, Any], live: dict[str, Any] | None
    ) -> str | None:
        """Why the CronJob differs although the task did not change, or None if the
        difference comes from the task (created or edited)."""
        if live is None:
            if task.status.cron_job_name:
                return f"CronJob {desired['metadata']['name']} was deleted; recreated it"
            return None
        live_hash = (live["metadata"].get("annotations") or {}).get(builder.SPEC_HASH_ANNOTATION)
        if live_hash == desired["metadata"]["annotations"][builder.SPEC_HASH_ANNOTATION]:
            return f"CronJob {desired['metadata']['name']} was changed by hand; restored it"
        return None

    def report_unparsable(self, obj: dict[str, Any], message: str) -> None:
        previous = (obj.get("status") or {}).get("conditions") or []
        ready = next((c for c in previous if c.get("type") == "Ready"), None)
        if ready and ready.get("reason") == "InvalidSpec" and ready.get("message") == message:
            return
        now = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {
            "type": "Ready",
            "status": "False",
            "reason": "InvalidSpec",
            "message": message,
            "lastTransitionTime": now,
            "observedGeneration": obj["metadata"].get("generation"),
        }
        others = [c for c in previous if c.get("type") != "Ready"]
        self.kube.patch_task_status(
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            {
                "observedGeneration": obj["metadata"].get("generation"),
                "conditions": [condition, *others],
            },
            obj["metadata"]["resourceVersion"],
        )
        self.kube.post_event(obj, "Warning", "InvalidSpec", message)
