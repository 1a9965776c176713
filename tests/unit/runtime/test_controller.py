"""What a reconcile of a managed task sends to the API server: a new task costs the
CronJob's create and the status write, nothing more; a name taken by a CronJob the
task does not control is found by the create's 409, never adopted, and reported;
a task the operator refuses gets no CronJob. No cluster: the API client is a
stand-in that records every call."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from cronwarden.runtime.cache import View
from cronwarden.runtime.controller import Controller, Stale
from cronwarden.runtime.kube import CREATE_ONLY, ApiError, Kube
from cronwarden.runtime.metrics import TaskMetrics
from tests.unit.factories import TASK_UID, task_body

KEY = ("team-a", "backup")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Recorder:
    """Kube's calls the controller makes, answered as the API server would: the
    CronJob named `taken` (if any) exists already."""

    def __init__(self, taken: dict[str, Any] | None = None) -> None:
        self.taken = taken
        self.calls: list[str] = []

    def apply_cronjob(
        self, cronjob: dict[str, Any], uid: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        if uid is None:
            self.calls.append("create")
            if self.taken is not None:
                raise ApiError(409, "Conflict", "the object has been modified")
        else:
            self.calls.append("update")
        stored = copy.deepcopy(cronjob)
        stored["metadata"].update(uid="cj-uid", resourceVersion="7", generation=1)
        return stored, []

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get")
        return self.taken

    def patch_task_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        self.calls.append("status")
        body = task_body()
        body["status"] = status
        return body

    def forget_events(self, namespace: str, name: str) -> None:
        pass


def reconcile(kube: Recorder, **options: Any) -> tuple[Any, View]:
    controller = Controller(kube, TaskMetrics(), clock=lambda: NOW, **options)  # type: ignore[arg-type]
    view = View(KEY, task_body(), None)
    return controller.reconcile(view), view


def foreign(controller_uid: str | None) -> dict[str, Any]:
    refs = [{"kind": "Thing", "name": "x", "uid": controller_uid, "controller": True}]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "backup",
            "namespace": "team-a",
            "uid": "other",
            "resourceVersion": "3",
            "generation": 1,
            **({"ownerReferences": refs} if controller_uid else {}),
        },
        "spec": {"schedule": "0 * * * *"},
    }


def ready(result: Any) -> dict[str, Any]:
    conditions = result.task["status"]["conditions"]
    return next(c for c in conditions if c["type"] == "Ready")


def test_a_new_task_costs_the_create_and_the_status_write() -> None:
    kube = Recorder()
    result, _ = reconcile(kube)
    assert kube.calls == ["create", "status"]  # no GET before the create
    assert result.cronjob is not None
    assert ready(result)["status"] == "True"


@pytest.mark.parametrize("owner", [None, "someone-else"])
def test_a_taken_name_is_found_by_the_create_and_never_adopted(owner: str | None) -> None:
    kube = Recorder(taken=foreign(owner))
    result, _ = reconcile(kube)
    assert kube.calls == ["create", "get", "status"]  # no second apply: never adopted
    assert result.cronjob is None
    condition = ready(result)
    assert (condition["status"], condition["reason"]) == ("False", "CronJobNotOwned")
    assert "already exists" in condition["message"]
    assert result.wake_at is not None  # looks again whether the name became free


def test_our_own_cronjob_unseen_by_the_cache_is_used_as_it_is() -> None:
    ours = foreign(TASK_UID)
    kube = Recorder(taken=ours)
    result, _ = reconcile(kube)
    # It differs from the desired one, so it is updated (uid as precondition).
    assert kube.calls == ["create", "get", "update", "status"]
    assert ready(result)["status"] == "True"


def test_a_create_met_by_409_then_404_is_retried() -> None:
    kube = Recorder(taken=None)

    def conflict(cronjob: dict[str, Any], uid: str | None) -> Any:
        kube.calls.append("create")
        raise ApiError(409, "Conflict", "the object has been modified")

    kube.apply_cronjob = conflict  # type: ignore[method-assign]
    with pytest.raises(ApiError) as raised:
        reconcile(kube)
    assert raised.value.status == 409  # the engine tries again shortly
    assert kube.calls == ["create", "get"]


def test_a_refused_task_gets_no_cronjob() -> None:
    kube = Recorder()
    result, _ = reconcile(kube, excluded_namespaces=frozenset({"team-a"}))
    assert kube.calls == ["status"]
    assert ready(result)["reason"] == "NamespaceExcluded"


def test_the_apply_without_uid_only_creates() -> None:
    """Its precondition, resourceVersion 1, is met by no stored object (etcd's first
    write is revision 2), so a taken name answers 409 instead of being taken over."""
    sent: list[dict[str, Any]] = []

    class Captured:
        def apply(self, path: str, body: dict[str, Any]) -> Any:
            sent.append({"path": path, "body": body})
            return {}, []

    kube = Kube.__new__(Kube)  # no client: only the request is looked at
    kube.api = Captured()  # type: ignore[assignment]
    cronjob = {"metadata": {"name": "backup", "namespace": "team-a"}, "spec": {}}
    kube.apply_cronjob(cronjob, None)
    kube.apply_cronjob(cronjob, "cj-uid")
    create, update = (s["body"]["metadata"] for s in sent)
    assert (create.get("resourceVersion"), create.get("uid")) == (CREATE_ONLY, None)
    assert (update.get("resourceVersion"), update.get("uid")) == (None, "cj-uid")
    assert all(s["path"].endswith("/namespaces/team-a/cronjobs/backup") for s in sent)
    assert cronjob["metadata"] == {"name": "backup", "namespace": "team-a"}  # not changed


def test_a_cronjob_changed_by_hand_is_restored_after_it_was_found_in_sync() -> None:
    """The sync is judged once per (task, CronJob) version: a reconcile of the same
    versions sends nothing, and the CronJob's next version is judged again."""
    kube = Recorder()
    controller = Controller(kube, TaskMetrics(), clock=lambda: NOW)  # type: ignore[arg-type]
    first = controller.reconcile(View(KEY, task_body(), None))
    stored = first.cronjob
    assert stored is not None
    written = task_body(resourceVersion="101")
    written["status"] = first.task["status"] if first.task else {}
    kube.calls.clear()
    controller.reconcile(View(KEY, written, copy.deepcopy(stored)))
    controller.reconcile(View(KEY, written, copy.deepcopy(stored)))
    assert kube.calls == []
    edited = copy.deepcopy(stored)
    edited["metadata"].update(resourceVersion="8", generation=2)
    edited["spec"]["schedule"] = "* * * * *"
    controller.reconcile(View(KEY, written, edited))
    assert kube.calls[0] == "update"


def test_a_status_judged_from_a_view_read_before_a_stall_is_not_written() -> None:
    """runtime/stall.py: the view was read, then the process stalled; the CronJob may be
    applied, but the status judged from that view is refused and not sent."""
    kube = Recorder()
    controller = Controller(kube, TaskMetrics(), clock=lambda: NOW, fresh=lambda stalls: False)  # type: ignore[arg-type]
    with pytest.raises(Stale):
        controller.reconcile(View(KEY, task_body(), None))
    assert kube.calls == ["create"]
    fresh = Controller(kube, TaskMetrics(), clock=lambda: NOW, fresh=lambda stalls: stalls == 0)  # type: ignore[arg-type]
    fresh.reconcile(View(KEY, task_body(), None))
    assert kube.calls[-1] == "status"
