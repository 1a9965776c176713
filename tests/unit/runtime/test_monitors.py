"""Monitor mode's view of a watched namespace: only CronJobs named by tasks and the
Jobs they control are kept, a change queues only the tasks that name it, and every
listing replaces what is held. Pure: no cluster."""

from __future__ import annotations

from typing import Any

import pytest

from cronwarden.runtime.cache import CRONJOBS, JOBS, Listing
from cronwarden.runtime.monitors import Monitors, cronjob_of, reference

A, A2, B, C = ("ns", "a"), ("ns", "a2"), ("ns", "b"), ("other", "c")


def cronjob(name: str, uid: str, rv: str = "1", ns: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": uid, "resourceVersion": rv},
        "spec": {"schedule": "0 0 1 1 *"},
    }


def job(
    name: str,
    owner: str,
    owner_uid: str,
    rv: str = "1",
    *,
    kind: str = "CronJob",
    done: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"j-{name}",
            "resourceVersion": rv,
            "ownerReferences": [
                {"kind": kind, "name": owner, "uid": owner_uid, "controller": True}
            ],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "big"}]}}},
        "status": {},
    }
    if done:
        body["status"] = {
            "conditions": [
                {"type": "Failed", "status": "True", "lastTransitionTime": "2026-12-02T03:00:00Z"}
            ]
        }
    return body


def listing(m: Monitors, cronjobs: list[dict[str, Any]], jobs: list[dict[str, Any]], rv: str):
    """A complete listing of both resources in "ns" at `rv`, as the watch applies it."""
    wanted = m.wanted("ns")
    total = Listing()
    for resource, items in ((CRONJOBS, cronjobs), (JOBS, jobs)):
        out = Listing()
        for body in items:
            m.listed(resource, body, out)
        out.merge(m.sweep(resource, "ns", {b["metadata"]["uid"] for b in items}, rv))
        total.merge(out)
    return m.synced("ns", wanted, total)


def names(view: Any) -> list[str]:
    return sorted(j["metadata"]["name"] for j in view[1])


def watched() -> Monitors:
    m = Monitors()
    assert m.track(A, "vendor-a") is True  # a CronJob not named before: list it
    assert m.track(A2, "vendor-a") is False  # named already
    assert m.track(B, "vendor-b") is True
    assert m.track(C, "vendor-c") is True
    return m


def test_a_listing_keeps_only_named_cronjobs_and_the_jobs_they_control() -> None:
    m = watched()
    assert m.namespaces() == {"ns", "other"}
    assert m.view(A) is None  # not listed yet: not judged
    queued = listing(
        m,
        [cronjob("vendor-a", "ua"), cronjob("unrelated", "ux")],
        [
            job("a-1", "vendor-a", "ua"),
            job("x-1", "unrelated", "ux"),
            job("by-hand", "vendor-a", "ua", kind="Deployment"),
        ],
        rv="10",
    )
    assert queued == {A, A2, B}  # every task of the namespace, once: C is elsewhere
    seen = m.view(A)
    assert seen is not None
    assert seen[0] is not None
    assert names(seen) == ["a-1"]
    assert "spec" not in seen[1][0]  # kept without the pod template
    assert m.view(B) == (None, [])  # listed, and absent
    assert m.view(C) is None
    assert m.cache.counts()["cronjobs"] == 1
    assert m.cache.counts()["jobs"] == 1


@pytest.mark.parametrize(
    ("resource", "body", "queued"),
    [
        (CRONJOBS, cronjob("vendor-a", "ua", rv="11"), {A, A2}),
        (CRONJOBS, cronjob("vendor-b", "ub", rv="11"), {B}),
        (CRONJOBS, cronjob("unrelated", "ux", rv="11"), set()),
        (CRONJOBS, cronjob("vendor-a", "ua", rv="10"), set()),  # what is held already
        (JOBS, job("a-2", "vendor-a", "ua", rv="11"), {A, A2}),
        (JOBS, job("b-1", "vendor-b", "ub", rv="11"), {B}),  # before its CronJob: kept
        (JOBS, job("x-2", "unrelated", "ux", rv="11"), set()),
        (JOBS, job("a-1", "vendor-a", "ua", rv="1"), set()),  # older than what is held
    ],
)
def test_a_watch_event_queues_only_the_tasks_that_name_it(
    resource: str, body: dict[str, Any], queued: set[tuple[str, str]]
) -> None:
    m = watched()
    listing(m, [cronjob("vendor-a", "ua", rv="10")], [job("a-1", "vendor-a", "ua", rv="5")], "10")
    assert m.event(resource, "MODIFIED", body) == queued


def test_a_job_seen_before_its_cronjob_is_judged_once_the_cronjob_arrives() -> None:
    m = watched()
    listing(m, [], [], "10")
    m.event(JOBS, "ADDED", job("b-1", "vendor-b", "ub", rv="12"))
    assert m.event(CRONJOBS, "ADDED", cronjob("vendor-b", "ub", rv="11")) == {B}
    seen = m.view(B)
    assert seen is not None
    assert names(seen) == ["b-1"]


def test_a_deleted_event_deletes_though_nothing_carries_our_label() -> None:
    m = watched()
    listing(m, [cronjob("vendor-a", "ua")], [job("a-1", "vendor-a", "ua")], "10")
    assert m.event(JOBS, "DELETED", job("a-1", "vendor-a", "ua", rv="12")) == {A, A2}
    assert names(m.view(A)) == []
    assert m.event(CRONJOBS, "DELETED", cronjob("vendor-a", "ua", rv="13")) == {A, A2}
    assert m.view(A) == (None, [])


def test_a_finished_job_deleted_at_once_stays_until_its_run_is_recorded() -> None:
    m = watched()
    listing(m, [cronjob("vendor-a", "ua")], [], "10")
    m.event(JOBS, "ADDED", job("a-1", "vendor-a", "ua", rv="11"))
    m.event(JOBS, "MODIFIED", job("a-1", "vendor-a", "ua", rv="12", done=True))
    assert m.event(JOBS, "DELETED", job("a-1", "vendor-a", "ua", rv="13", done=True)) == {A, A2}
    assert names(m.view(A)) == ["a-1"]  # departed: its run is not lost
    m.cache.forget_departed("ua", {"a-1"})  # the task's status covers it
    assert names(m.view(A)) == []


def test_a_relist_replaces_what_is_held() -> None:
    """After a 410 the watch lists again: what the listing lacks was deleted meanwhile
    (the task is queued), what is newer replaces what is held."""
    m = watched()
    listing(
        m,
        [cronjob("vendor-a", "ua"), cronjob("vendor-b", "ub")],
        [job("a-1", "vendor-a", "ua"), job("b-1", "vendor-b", "ub")],
        "10",
    )
    queued = listing(
        m,
        [cronjob("vendor-a", "ua")],
        [job("a-1", "vendor-a", "ua"), job("b-1", "vendor-b", "ub")],
        "20",
    )
    assert queued == {B}  # vendor-b vanished; nothing of vendor-a changed
    assert m.view(B) == (None, [])
    queued = listing(m, [cronjob("vendor-a", "ua")], [job("a-1", "vendor-a", "ua", rv="15")], "30")
    assert queued == {A, A2}
    assert m.cache.counts()["jobs"] == 1  # b-1 (its CronJob gone) swept too


def test_a_cronjob_no_task_names_is_forgotten_without_hiding_it_later() -> None:
    """A CronJob that stops being named is evicted, not marked deleted: once a task
    names it again, the next listing takes it in again."""
    m = watched()
    listing(m, [cronjob("vendor-a", "ua")], [job("a-1", "vendor-a", "ua")], "10")
    m.forget(A)
    assert m.track(A2, None) is False  # the last task naming vendor-a
    assert m.cache.counts()["cronjobs"] == 0
    assert m.cache.counts()["jobs"] == 0
    assert m.event(JOBS, "MODIFIED", job("a-1", "vendor-a", "ua", rv="11")) == set()
    assert m.track(A, "vendor-a") is True  # must be listed again
    assert m.view(A) is None
    assert listing(m, [cronjob("vendor-a", "ua")], [job("a-1", "vendor-a", "ua")], "20") == {A}
    assert names(m.view(A)) == ["a-1"]


def test_a_task_that_changes_its_reference_is_judged_after_the_next_listing() -> None:
    m = watched()
    listing(m, [cronjob("vendor-a", "ua"), cronjob("vendor-z", "uz")], [], "10")
    assert m.track(A, "vendor-z") is True
    assert m.view(A) is None
    assert listing(m, [cronjob("vendor-a", "ua"), cronjob("vendor-z", "uz")], [], "11") == {A}
    seen = m.view(A)
    assert seen is not None
    assert seen[0] is not None
    assert seen[0]["metadata"]["name"] == "vendor-z"


def test_the_last_task_of_a_namespace_leaves_nothing_behind() -> None:
    m = watched()
    listing(m, [cronjob("vendor-b", "ub")], [job("b-1", "vendor-b", "ub")], "10")
    for key in (A, A2, B):
        m.forget(key)
    assert m.namespaces() == {"other"}
    assert m.wanted("ns") == set()
    assert m.cache.counts() == {
        "tasks": 0,
        "cronjobs": 0,
        "jobs": 0,
        "departed": 0,
        "tombstones": 0,
    }


def test_cronjob_of_and_reference() -> None:
    assert cronjob_of(job("a-1", "vendor-a", "ua")) == ("ns", "vendor-a")
    assert cronjob_of(job("d-1", "deploy", "ud", kind="Deployment")) is None
    assert cronjob_of({"metadata": {"name": "bare"}}) is None
    assert reference({"spec": {"cronJobRef": {"name": "x"}}}) == "x"
    assert reference({"spec": {"schedule": "* * * * *"}}) is None
