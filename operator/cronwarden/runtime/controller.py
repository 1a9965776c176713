"""Reconcile one ScheduledTask from the cache: keep its CronJob in sync and its
status true.

Written as numbered steps; every decision is made by the pure modules
(core.builder, core.status), every API call goes through runtime.kube.Kube, and
every read comes from the cache view passed in, so a reconcile that changes
nothing sends no request at all. Runs in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic

from cronwarden.api.models import ScheduledTask, ScheduledTaskStatus
from cronwarden.core import builder, monitor, tenancy
from cronwarden.core.conditions import Event, Problem
from cronwarden.core.recording import covered
from cronwarden.core.runs import run_of
from cronwarden.core.status import compute_status
from cronwarden.runtime.cache import Body, Key, View, controller_uid
from cronwarden.runtime.kube import ApiError, Kube
from cronwarden.runtime.metrics import TaskMetrics

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# How often a task whose CronJob name is taken by someone else checks whether it is free.
NOT_OWNED_RECHECK = timedelta(seconds=30)


def utcnow() -> datetime:
    return datetime.now(UTC)


class NotActive(Exception):
    """This replica stopped being the active one: it must not write."""


class Stale(Exception):
    """The process stalled after this reconcile read its view (runtime/stall.py): what
    it judged may be out of date, so its status is not written."""


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


def not_owned(task: ScheduledTask, cronjob: Body) -> Problem:
    """CronJobNotOwned, naming who owns or manages the CronJob that holds the name."""
    meta = cronjob.get("metadata") or {}
    name = meta.get("name")
    owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    if owner is not None:
        who = f"is controlled by {owner.get('kind')} {owner.get('name')} (uid {owner.get('uid')})"
    else:
        managers = sorted({m.get("manager", "?") for m in meta.get("managedFields") or []})
        who = "is not controlled by this task" + (
            f" (managed by {', '.join(managers)})" if managers else ""
        )
    return Problem(
        "CronJobNotOwned",
        f"CronJob {name} already exists and {who}; cronwarden leaves it untouched. Delete "
        "or rename that CronJob, or rename this task.",
    )


def status_body(status: ScheduledTaskStatus) -> dict[str, Any]:
    """Status in wire form; unset fields are sent as null so a merge patch removes them."""
    body: dict[str, Any] = status.model_dump(by_alias=True, mode="json")
    return body


@dataclass
class Result:
    """What a reconcile wrote (for the cache) and when to look again."""

    wake_at: datetime | None = None
    task: Body | None = None
    cronjob: Body | None = None
    recorded: set[str] = field(default_factory=set)  # Jobs whose runs status covers
    cronjob_uid: str | None = None
    events: list[tuple[Body, Event]] = field(default_factory=list)  # to post, in order


class Controller:
    def __init__(
        self,
        kube: Kube,
        metrics: TaskMetrics,
        clock: Clock = utcnow,
        active: Callable[[], bool] = lambda: True,
        excluded_namespaces: frozenset[str] = frozenset(),
        max_tasks_per_namespace: int = 0,
        fresh: Callable[[int], bool] = lambda stalls: True,
    ) -> None:
        self.kube = kube
        self.fresh = fresh
        self.metrics = metrics
        self.clock = clock
        self.active = active
        self.excluded = excluded_namespaces
        self.max_per_namespace = max_tasks_per_namespace
        # (hash of the desired spec, CronJob generation) after our last apply, per task:
        # a CronJob at that generation is in sync whatever the API server normalised.
        self.applied: dict[Key, tuple[str, int]] = {}
        # (task resourceVersion, CronJob resourceVersion) last found in sync, per task.
        self.synced: dict[Key, tuple[str, str]] = {}

    def fence(self, view: View | None = None) -> None:
        """Before a write: this replica is active and, before a status write, the view
        the status was judged from is current (no stall of the process since)."""
        if not self.active():
            raise NotActive
        if view is not None and not self.fresh(view.stalls):
            raise Stale

    def reconcile(self, view: View) -> Result:
        """Reconcile one task from `view`. Raises ApiError when a write failed (the
        caller retries with backoff) and NotActive when the replica stepped down."""
        namespace, name = view.key
        # 1. The task, from the cache. A deleted task's CronJob and Jobs are
        #    garbage-collected.
        obj = view.task
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.forget(view.key)
            return Result()

        # 2. Parse it. Admission rejects almost every invalid spec; what remains is
        #    reported on the object rather than raised.
        try:
            task = ScheduledTask.model_validate(obj)
        except pydantic.ValidationError as err:
            self.metrics.update_unparsable(obj)  # so that CronwardenTaskNotReady pages
            return Result(task=self.report_unparsable(obj, invalid_spec_message(err)))

        if task.spec.cron_job_ref is not None:
            return self.reconcile_monitored(task, obj, view)

        # 3. Bring the CronJob in sync: never adopt one this task does not control,
        #    and send no write when it is in sync. A task the operator may not act on
        #    (an excluded namespace, beyond the namespace's limit) gets no CronJob.
        result = Result()
        desired: Body | None = None
        live = view.cronjob
        events: list[Event] = []
        warnings: list[str] | None = None  # the API server's, when the CronJob is applied
        problem = tenancy.refusal(namespace, view.rank, self.excluded, self.max_per_namespace)
        created = False
        if problem is not None:
            live = None
        elif live is None:
            # Only CronJobs labelled as ours are watched: the name may be taken by one
            # we do not control (or by ours, which the cache has not seen yet). The
            # create says so (409) without a look first; only then is it read.
            desired = builder.build_cronjob(task)
            try:
                live, problem, warnings = self.apply(task, desired, None, events)
                result.cronjob, created = live, problem is None
            except ApiError as err:
                if err.status != 409:
                    raise
                live = self.kube.get_cronjob(namespace, desired["metadata"]["name"])
                if live is None:
                    raise  # deleted in between: the retry creates it
        if live is not None and controller_uid(live) != task.metadata.get("uid"):
            problem = not_owned(task, live)
            live = None
            result.wake_at = self.clock() + NOT_OWNED_RECHECK
        elif not created and problem is None:
            # A CronJob found in sync with the task stays so while neither changes: most
            # reconciles (a Job's events) neither build the desired one nor compare.
            versions = (_rv(obj), _rv(live))
            if self.synced.get(view.key) != versions:
                desired = desired or builder.build_cronjob(task)
                if self.is_in_sync(view.key, desired, live):
                    if all(versions):
                        self.synced[view.key] = versions
                else:
                    live, problem, warnings = self.apply(task, desired, live, events)
                    result.cronjob = live

        # 4. The runs: Jobs controlled by this task's CronJob (live, or deleted since).
        uid = live["metadata"].get("uid") if live is not None else None
        jobs = view.jobs if uid is not None and uid == _uid(view.cronjob) else []

        # 5. Compute the status; write it only when it changed.
        outcome = compute_status(
            task, live, jobs, self.clock(), problem, refusals=view.refusals, warnings=warnings
        )
        status = outcome.status
        events.extend(outcome.events)
        status_changed = status != task.status
        if status_changed:
            self.fence(view)
            result.task = self.kube.patch_task_status(
                namespace, name, status_body(status), obj["metadata"]["resourceVersion"]
            )
        if uid is not None:
            # Departed Jobs that the watermark now covers are dropped from the cache.
            result.cronjob_uid = uid
            result.recorded = {r.job for r in map(run_of, jobs) if covered(r, status.watermark)}
        log.debug(
            "reconciled %s/%s: cronjob %s, status %s",
            namespace,
            name,
            "applied" if result.cronjob is not None else "in sync",
            "written" if status_changed else "unchanged",
        )

        # 6. Tell people, once the status that records it is written (the engine posts
        #    them off the worker, so a burst of runs does not wait for its Events).
        result.events = [(obj, event) for event in events]

        # 7. Export what status says as metrics (the lines are kept when the status
        #    is the one stored at this version of the task, and so are the rest).
        version = (
            None if status_changed else (_rv(obj), outcome.oldest_active, outcome.not_admitted)
        )
        self.metrics.update(task, outcome, version)
        wakes = [t for t in (result.wake_at, outcome.wake_at) if t is not None]
        result.wake_at = min(wakes, default=None)
        return result

    def reconcile_monitored(self, task: ScheduledTask, obj: Body, view: View) -> Result:
        """Monitor mode: judge the referenced CronJob and its Jobs as its namespace's
        watch last saw them (runtime/monitors.py), never write them; status, Events
        and metrics as for a managed task."""
        assert task.spec.cron_job_ref is not None
        namespace, ref = task.namespace, task.spec.cron_job_ref.name
        now = self.clock()
        events: list[Event] = []
        problem = tenancy.refusal(namespace, 0, self.excluded, 0)
        cronjob, jobs = view.monitored or (None, [])
        if problem is not None:
            cronjob, jobs = None, []
        judged = task
        if problem is None and cronjob is None:
            problem = Problem(
                "CronJobNotFound",
                f"CronJob {ref} (spec.cronJobRef) does not exist in namespace {namespace}; "
                "cronwarden monitors it as soon as it appears",
            )
        elif cronjob is not None:
            spec = monitor.effective_spec(task.spec, cronjob)
            judged = task.model_copy(update={"spec": spec})
        outcome = compute_status(judged, cronjob, jobs, now, problem, refusals=view.refusals)
        events.extend(outcome.events)
        result = Result(wake_at=outcome.wake_at)
        unchanged = outcome.status == task.status
        if not unchanged:
            self.fence(view)
            result.task = self.kube.patch_task_status(
                namespace,
                task.name,
                status_body(outcome.status),
                obj["metadata"]["resourceVersion"],
            )
        if (uid := _uid(cronjob)) is not None:
            # Departed Jobs that the watermark now covers are dropped from the cache.
            result.cronjob_uid = uid
            watermark = outcome.status.watermark
            result.recorded = {r.job for r in map(run_of, jobs) if covered(r, watermark)}
        result.events = [(obj, event) for event in events]
        # The judged spec follows the CronJob: its version is part of the lines' version.
        version = (
            (_rv(obj), _rv(cronjob), outcome.oldest_active, outcome.not_admitted)
            if unchanged
            else None
        )
        self.metrics.update(judged, outcome, version)
        log.debug("reconciled %s/%s: monitors CronJob %s", namespace, task.name, ref)
        return result

    def is_in_sync(self, key: Key, desired: Body, live: Body | None) -> bool:
        if live is None:
            return False
        if self.applied.get(key) == (builder.desired_hash(desired), generation(live)):
            # Our own apply produced this spec: in sync, in the stored form.
            return builder.metadata_in_sync(desired, live)
        return builder.in_sync(desired, live)

    def apply(
        self, task: ScheduledTask, desired: Body, live: Body | None, events: list[Event]
    ) -> tuple[Body | None, Problem | None, list[str] | None]:
        """Create the CronJob (live None) or update ours; returns the stored object (the
        live one when refused), why it was refused, and the API server's warnings."""
        self.fence()
        # On update the uid is a precondition: the apply cannot touch a CronJob that
        # replaced ours since the cache saw it (the API server refuses a uid change).
        uid = live["metadata"]["uid"] if live is not None else None
        try:
            stored, warnings = self.kube.apply_cronjob(desired, uid)
        except ApiError as err:
            if err.retryable or (live is not None and "uid" in err.message):
                raise
            return live, problem_from_apply(err), None
        key = (task.namespace, task.name)
        self.applied[key] = (builder.desired_hash(desired), generation(stored))
        drift = self.drift(task, desired, live, stored)
        if drift:
            events.append(Event("Normal", "DriftCorrected", drift))
        log.info("applied CronJob %s/%s", task.namespace, desired["metadata"]["name"])
        return stored, None, warnings

    def drift(
        self, task: ScheduledTask, desired: Body, live: Body | None, stored: Body
    ) -> str | None:
        """Why the CronJob had to change although the task did not, or None when the
        difference came from the task (created or edited) or the apply changed nothing."""
        name = desired["metadata"]["name"]
        if live is None:
            return (
                f"CronJob {name} was deleted; recreated it" if task.status.cron_job_name else None
            )
        live_hash = (live["metadata"].get("annotations") or {}).get(builder.SPEC_HASH_ANNOTATION)
        if live_hash != builder.desired_hash(desired):
            return None  # the task changed
        changed_spec = generation(stored) != generation(live)
        if changed_spec or not builder.metadata_in_sync(desired, live):
            return f"CronJob {name} was changed by hand; restored it"
        return None

    def forget(self, key: Key) -> None:
        self.metrics.forget(*key)
        self.kube.forget_events(*key)
        self.applied.pop(key, None)
        self.synced.pop(key, None)

    def report_unparsable(self, obj: Body, message: str) -> Body | None:
        previous = (obj.get("status") or {}).get("conditions") or []
        ready = next((c for c in previous if c.get("type") == "Ready"), None)
        if ready and ready.get("reason") == "InvalidSpec" and ready.get("message") == message:
            return None
        now = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {
            "type": "Ready",
            "status": "False",
            "reason": "InvalidSpec",
            "message": message,
            "lastTransitionTime": now,
            "observedGeneration": obj["metadata"].get("generation"),
        }
        stalled = {**condition, "type": "Stalled", "status": "True"}
        reconciling = {
            **condition,
            "type": "Reconciling",
            "message": "waiting for the spec to change",
        }
        mine = ("Ready", "Stalled", "Reconciling")
        others = [c for c in previous if c.get("type") not in mine]
        self.fence()
        written = self.kube.patch_task_status(
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            {
                "observedGeneration": obj["metadata"].get("generation"),
                "conditions": [condition, reconciling, stalled, *others],
            },
            obj["metadata"]["resourceVersion"],
        )
        self.kube.post_event(obj, "Warning", "InvalidSpec", message)
        return written


def generation(obj: Body) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def _rv(obj: Body | None) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "") if obj else ""


def _uid(obj: Body | None) -> str | None:
    return (obj.get("metadata") or {}).get("uid") if obj is not None else None
