"""How the engine handles what a reconcile raises: a conflict is tried again at
once without backoff, a write refused by the fence comes back while the replica
still leads, a 404 on the status write forgets the task. No cluster: the
controller and the API client are stand-ins."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cronwarden.runtime import audit
from cronwarden.runtime.cache import Listing
from cronwarden.runtime.controller import NotActive, Result
from cronwarden.runtime.engine import CONFLICT_RETRY, CRONJOB_EVENT_DELAY, Engine
from cronwarden.runtime.kube import ApiError
from cronwarden.runtime.metrics import TaskMetrics
from cronwarden.runtime.queue import WorkQueue
from cronwarden.settings import Settings

KEY = ("team-a", "backup")
TASK = {"metadata": {"name": "backup", "namespace": "team-a", "uid": "u", "resourceVersion": "5"}}


class Raises:
    """A controller whose reconcile raises `error` (or returns an empty result)."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.forgotten: list[tuple[str, str]] = []

    def reconcile(self, view: Any) -> Result:
        if self.error is not None:
            raise self.error
        return Result()

    def forget(self, key: tuple[str, str]) -> None:
        self.forgotten.append(key)


class NoApi:
    """Nothing here may reach the API server."""

    def post_event(self, *args: Any) -> None:
        raise AssertionError("no Event is posted in these tests")


class Leading:
    def __init__(self, leading: bool) -> None:
        self.leading = leading

    def active(self) -> bool:
        return False


def engine(error: Exception | None, *, leading: bool | None = None) -> tuple[Engine, Raises]:
    settings = Settings(namespaces=["team-a"], workers=1)
    eng = Engine(settings, kube=NoApi(), metrics=TaskMetrics())  # type: ignore[arg-type]
    controller = Raises(error)
    eng.controller = controller  # type: ignore[assignment]
    if leading is not None:
        eng.elector = Leading(leading)  # type: ignore[assignment]
    eng.cache.task_event(None, TASK)
    return eng, controller


def run(error: Exception | None, *, leading: bool | None = None) -> tuple[Engine, Raises]:
    async def scenario() -> tuple[Engine, Raises]:
        eng, controller = engine(error, leading=leading)
        await eng.reconcile(asyncio.get_running_loop(), KEY)
        return eng, controller

    return asyncio.run(scenario())


def test_a_conflict_is_retried_promptly_and_without_backoff() -> None:
    eng, _ = run(ApiError(409, "Conflict", "the object has been modified"))
    assert KEY in eng.queue._timers
    assert eng.queue._failures == {}  # no error backoff accrues


@pytest.mark.parametrize(("leading", "requeued"), [(True, True), (False, False)])
def test_a_write_refused_by_the_fence_comes_back_while_still_leading(
    leading: bool, requeued: bool
) -> None:
    eng, _ = run(NotActive(), leading=leading)
    assert (KEY in eng.queue._timers) is requeued


def test_a_404_on_the_status_write_forgets_the_task() -> None:
    eng, controller = run(ApiError(404, "NotFound", "scheduledtasks.cronwarden.io not found"))
    assert KEY not in eng.cache.tasks
    assert controller.forgotten == [KEY]
    assert KEY not in eng.queue._timers


def test_other_errors_back_off() -> None:
    eng, _ = run(ApiError(500, "InternalError", "etcd leader changed"))
    assert eng.queue._failures == {KEY: 1}


def test_the_conflict_delay_is_short() -> None:
    assert CONFLICT_RETRY <= 0.5


class Records(Raises):
    """A controller that keeps the views it was given."""

    def __init__(self) -> None:
        super().__init__(None)
        self.views: list[Any] = []

    def reconcile(self, view: Any) -> Result:
        self.views.append(view)
        return Result()


def test_a_refusal_of_a_podless_jobs_pods_wakes_its_task_and_reaches_the_reconcile() -> None:
    cronjob = {**TASK, "metadata": {**TASK["metadata"], "uid": "cj", "resourceVersion": "6"}}
    job = {
        "metadata": {
            "name": "backup-29400600",
            "namespace": "team-a",
            "uid": "job-1",
            "resourceVersion": "7",
            "labels": {"app.kubernetes.io/managed-by": "cronwarden"},
            "ownerReferences": [{"controller": True, "uid": "cj"}],
        },
        "status": {"ready": 0, "terminating": 0, "uncountedTerminatedPods": {}},
    }
    refusal = {
        "metadata": {"name": "backup-29400600.1", "namespace": "team-a", "uid": "ev-1"},
        "involvedObject": {"kind": "Job", "name": "backup-29400600", "uid": "job-1"},
        "reason": "FailedCreate",
        "message": 'Error creating: pods "backup-29400600-x" is forbidden: exceeded quota',
        "lastTimestamp": "2026-11-28T10:00:01Z",
    }

    async def scenario() -> Records:
        eng, _ = engine(None)
        controller = Records()
        eng.controller = controller  # type: ignore[assignment]
        eng.cronjob_event("ADDED", cronjob, "backup")
        eng.job_event("ADDED", job, "backup")
        await eng.reconcile(asyncio.get_running_loop(), KEY)
        eng.queue = WorkQueue()  # nothing pending
        eng.refusal_event("ADDED", refusal)
        assert eng.queue._pending == {KEY: True}  # woken at once by the Event
        await eng.reconcile(asyncio.get_running_loop(), KEY)
        return controller

    controller = asyncio.run(scenario())
    assert controller.views[0].refusals == {}
    assert controller.views[1].refusals == {"job-1": refusal["message"]}


def monitoring(name: str, cronjob: str | None, rv: str = "1") -> dict[str, Any]:
    meta = {"name": name, "namespace": "team-a", "uid": f"u-{name}", "resourceVersion": rv}
    spec = {"cronJobRef": {"name": cronjob}} if cronjob else {"schedule": "@daily"}
    return {"metadata": meta, "spec": spec}


class Unreachable(NoApi):
    """An API server that answers nothing: the monitor watch keeps trying."""

    def list_page(self, *args: Any) -> Any:
        raise ApiError(0, "ConnectionError", "connection refused")

    def forget_events(self, namespace: str, name: str) -> None:
        pass


def test_a_namespace_is_watched_from_its_first_monitored_task_to_its_last() -> None:
    async def scenario() -> None:
        eng = Engine(Settings(namespaces=["team-a"], workers=1), Unreachable(), TaskMetrics())  # type: ignore[arg-type]
        eng.task_event("ADDED", monitoring("a", "vendor-a"))
        watch = eng._watches["team-a"]
        eng.task_event("ADDED", monitoring("b", "vendor-a"))
        eng.task_event("ADDED", monitoring("c", None))
        assert eng._watches == {"team-a": watch}  # one per namespace
        eng.task_event("MODIFIED", monitoring("a", None, rv="2"))  # no longer monitored
        assert eng._watches == {"team-a": watch}
        eng.task_event("DELETED", monitoring("b", "vendor-a"))
        assert eng._watches == {}  # the last one went: the watch stops
        assert eng.monitors.namespaces() == set()
        await asyncio.gather(*eng._stopping)
        assert watch._task is not None
        assert watch._task.cancelled()

    asyncio.run(scenario())


def test_a_monitored_task_in_an_excluded_namespace_is_judged_without_a_watch() -> None:
    task = monitoring("a", "vendor-a")
    task["metadata"]["namespace"] = "kube-system"

    async def scenario() -> Records:
        settings = Settings(namespaces=["kube-system"], workers=1)
        assert "kube-system" in settings.excluded_namespaces
        eng = Engine(settings, Unreachable(), TaskMetrics())  # type: ignore[arg-type]
        controller = Records()
        eng.controller = controller  # type: ignore[assignment]
        eng.task_event("ADDED", task)
        await eng.reconcile(asyncio.get_running_loop(), ("kube-system", "a"))
        assert eng._watches == {}
        return controller

    controller = asyncio.run(scenario())
    assert [v.monitored for v in controller.views] == [(None, [])]


def test_a_watch_that_lists_again_has_only_its_own_listing_audited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A relisting of team-b's Jobs is followed by an audit of that listing alone, not of
    every resource in every namespace; the objects of one relisting ask for it once."""
    monkeypatch.setattr(audit, "RELIST_DELAY", 0.05)
    monkeypatch.setattr(audit, "RELIST_GAP", 0.0)
    job = {
        "metadata": {"name": "j", "namespace": "team-b", "uid": "j", "resourceVersion": "3"},
    }

    async def scenario() -> tuple[list[Any], float]:
        settings = Settings(namespaces=["team-a", "team-b"], workers=1, audit_seconds=3600)
        eng = Engine(settings, kube=NoApi(), metrics=TaskMetrics())  # type: ignore[arg-type]
        calls: list[Any] = []
        second = asyncio.Event()

        async def listed(pairs: Any = None) -> Listing:
            calls.append(pairs)
            if len(calls) == 2:
                second.set()
            return Listing()

        eng.audit.run = listed  # type: ignore[method-assign]
        eng._workers = [asyncio.create_task(eng.audits())]
        await asyncio.wait_for(eng._audited.wait(), 5)
        for _ in range(3):
            eng.job_event(None, job, None)
        await asyncio.wait_for(second.wait(), 5)
        assert eng._plan is not None
        next_in = eng._plan.next_at() - asyncio.get_running_loop().time()
        await eng.stop_workers()
        return calls, next_in

    calls, next_in = asyncio.run(scenario())
    assert next_in > 3000  # nothing else due before the period
    assert calls[0] is None or len(calls[0]) == 6  # the first: everything
    assert calls[1] == [("jobs", "team-b")]


def managed_job(rv: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "backup-1",
            "namespace": "team-a",
            "uid": "j",
            "resourceVersion": rv,
            "labels": {"cronwarden.io/task": "backup"},
            "ownerReferences": [{"kind": "CronJob", "uid": "cj", "controller": True}],
        },
        "status": status,
    }


def test_only_job_and_cronjob_events_that_move_something_wake_the_task() -> None:
    """A Job event wakes its task when what a status reads from the Job moved (its
    times, result, pods), not when only its ready count did; a CronJob's event wakes it
    CRONJOB_EVENT_DELAY later, and one the cache already holds (our own apply's
    answer) wakes nothing."""

    async def scenario() -> None:
        eng, _ = engine(None)
        queued: list[tuple[str, str]] = []
        eng.queue.add = lambda key, **_: queued.append(key)  # type: ignore[method-assign]
        soon: list[tuple[tuple[str, str], float]] = []
        eng.queue.add_soon = lambda key, delay: soon.append((key, delay))  # type: ignore[method-assign]
        start = "2026-12-02T07:00:01Z"
        eng.job_event("ADDED", managed_job("10"), "backup")
        eng.job_event("MODIFIED", managed_job("11", active=1, ready=0, startTime=start), "backup")
        assert queued == [KEY, KEY]
        eng.job_event("MODIFIED", managed_job("12", active=1, ready=1, startTime=start), "backup")
        assert queued == [KEY, KEY]  # only its pod became ready
        done = [{"type": "Complete", "status": "True", "lastTransitionTime": start}]
        eng.job_event(
            "MODIFIED",
            managed_job("13", succeeded=1, ready=0, startTime=start, conditions=done),
            "backup",
        )
        assert queued == [KEY, KEY, KEY]

        cronjob = {
            "metadata": {
                "name": "backup",
                "namespace": "team-a",
                "uid": "cj",
                "resourceVersion": "20",
                "labels": {"app.kubernetes.io/managed-by": "cronwarden"},
            }
        }
        eng.cronjob_event("MODIFIED", cronjob, "backup")
        eng.cronjob_event("MODIFIED", cronjob, "backup")  # already held: nothing
        assert soon == [(KEY, CRONJOB_EVENT_DELAY)]

    asyncio.run(scenario())


def test_a_task_event_already_held_wakes_nothing() -> None:
    """Our own status write's answer is in the cache before its watch event comes back:
    that event wakes no reconcile; a newer version does."""

    async def scenario() -> None:
        eng, _ = engine(None)
        queued: list[tuple[str, str]] = []
        eng.queue.add = lambda key, **_: queued.append(key)  # type: ignore[method-assign]
        eng.task_event("MODIFIED", TASK)
        assert queued == []
        newer = {**TASK, "metadata": {**TASK["metadata"], "resourceVersion": "6"}}
        eng.task_event("MODIFIED", newer)
        assert queued == [KEY]

    asyncio.run(scenario())
