"""The watch-fed cache: ownership by uid, departed Jobs kept until recorded, and
write answers that an older watch event cannot undo. Pure: no cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cronwarden.runtime.cache import CRONJOBS, JOBS, TASKS, Cache, controller_uid, slim
from tests.unit.factories import job as job_status

CRONJOB_UID = "cj-1"
MANAGED = {"app.kubernetes.io/managed-by": "cronwarden", "cronwarden.io/task": "backup"}


def cronjob(uid: str = CRONJOB_UID, rv: str = "10", name: str = "backup") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": uid,
            "resourceVersion": rv,
            "managedFields": [{"manager": "cronwarden"}],
            "labels": dict(MANAGED),
        },
        "spec": {"schedule": "* * * * *"},
    }


def job(name: str, owner: str | None = CRONJOB_UID, **times: str) -> dict[str, Any]:
    body = job_status(name, **times)
    body["spec"] = {"template": {"spec": {"containers": [{"name": "main"}]}}}
    body["metadata"]["labels"] = dict(MANAGED)
    if owner is not None:
        body["metadata"]["ownerReferences"] = [
            {"kind": "CronJob", "name": "backup", "uid": owner, "controller": True}
        ]
    return body


def task(rv: str = "5") -> dict[str, Any]:
    return {"metadata": {"name": "backup", "namespace": "team-a", "resourceVersion": rv}}


KEY = ("team-a", "backup")
DONE = {"start": "2026-11-27T10:00:00Z", "complete": "2026-11-27T10:00:05Z"}


def names(cache: Cache) -> list[str]:
    return sorted(j["metadata"]["name"] for j in cache.view(KEY).jobs)


def test_jobs_belong_to_the_cronjob_that_controls_them() -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob())
    cache.job_event(None, job("mine"))
    cache.job_event(None, job("other-cronjob", owner="cj-old"))
    cache.job_event(None, job("made-by-hand", owner=None))
    assert names(cache) == ["mine"]


def test_a_finished_job_deleted_at_once_is_kept_until_recorded() -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob())
    cache.job_event("DELETED", job("ttl-zero", **DONE))
    cache.job_event("DELETED", job("never-finished"))
    assert names(cache) == ["ttl-zero"]
    cache.forget_departed(CRONJOB_UID, {"ttl-zero"})
    assert names(cache) == []


def test_departed_jobs_of_a_deleted_cronjob_are_dropped() -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob())
    cache.job_event("DELETED", job("done", **DONE))
    cache.cronjob_event("DELETED", cronjob())
    cache.job_event("DELETED", job("late", **DONE))
    assert cache.counts()["departed"] == 0
    cache.cronjob_event(None, cronjob(uid="cj-2"))
    assert names(cache) == []


def test_an_older_watch_event_does_not_undo_a_write_answer() -> None:
    cache = Cache()
    cache.task_event(None, task("5"))
    cache.task_event("MODIFIED", task("7"))  # our status write's answer
    cache.task_event("MODIFIED", task("6"))  # an event already in flight
    assert cache.view(KEY).task["metadata"]["resourceVersion"] == "7"  # type: ignore[index]
    cache.task_event("DELETED", task("8"))
    assert KEY not in cache.tasks


def test_a_replaced_cronjob_moves_the_index() -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob(uid="cj-old", rv="1"))
    cache.cronjob_event("DELETED", cronjob(uid="cj-old", rv="2"))
    cache.cronjob_event(None, cronjob(uid="cj-new", rv="3"))
    cache.job_event("DELETED", job("new-run", owner="cj-new", **DONE))
    cache.job_event("DELETED", job("old-run", owner="cj-old", **DONE))
    assert names(cache) == ["new-run"]


def test_bodies_are_stored_slim() -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob())
    cache.job_event(None, job("mine"))
    stored = cache.view(KEY).cronjob
    assert stored is not None
    assert "managedFields" not in stored["metadata"]
    assert "spec" in stored
    assert "spec" not in cache.view(KEY).jobs[0]
    applied = {
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "a": "b"}
        }
    }
    assert slim(applied)["metadata"]["annotations"] == {"a": "b"}


def test_controller_uid() -> None:
    assert controller_uid(job("x")) == CRONJOB_UID
    assert controller_uid(job("x", owner=None)) is None
    not_controller = job("x")
    not_controller["metadata"]["ownerReferences"][0]["controller"] = False
    assert controller_uid(not_controller) is None


def test_rank_is_the_position_among_the_namespaces_tasks_oldest_first() -> None:
    cache = Cache()

    def add(name: str, created: str, ns: str = "team-a") -> None:
        body = {"metadata": {"name": name, "namespace": ns, "creationTimestamp": created}}
        cache.task_event(None, body)

    add("b", "2026-11-27T10:00:00Z")
    add("a", "2026-11-27T10:00:00Z")  # same second: by name
    add("c", "2026-11-27T09:00:00Z")
    add("z", "2026-11-27T08:00:00Z", ns="team-b")
    assert [cache.view(("team-a", n)).rank for n in ("c", "a", "b")] == [0, 1, 2]
    assert cache.view(("team-b", "z")).rank == 0
    assert cache.namespace_size("team-a") == 3
    cache.task_event("DELETED", cache.tasks[("team-a", "c")].body())
    assert [cache.view(("team-a", n)).rank for n in ("a", "b")] == [0, 1]
    assert cache.task_at("team-a", 1) == ("team-a", "b")
    assert cache.task_at("team-a", 2) is None


def test_a_list_answer_older_than_a_deletion_does_not_bring_the_object_back() -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob())
    running = job("replaced")
    running["metadata"]["uid"] = "job-uid-1"
    cache.job_event(None, running)
    cache.job_event("DELETED", running)
    cache.job_event(None, running)  # the same Job, from a list taken before it was deleted
    assert names(cache) == []
    gone = cronjob(rv="11")
    cache.cronjob_event("DELETED", gone)
    cache.cronjob_event(None, cronjob(rv="10"))
    assert KEY not in cache.cronjobs


# The rules that keep the cache true to the cluster, as tables.

STRIPPED = {"cronwarden.io/task": "backup"}  # the managed-by label removed by hand


def relabel(body: dict[str, Any], labels: dict[str, str], rv: str) -> dict[str, Any]:
    out = {**body, "metadata": {**body["metadata"], "labels": labels, "resourceVersion": rv}}
    return out


@pytest.mark.parametrize(
    ("events", "held"),
    [
        # A deletion hides what is older than it ...
        ([("DELETED", "11"), (None, "10")], None),
        ([("DELETED", "11"), ("MODIFIED", "11")], None),
        # ... and nothing newer: a later event or write answer revives the object.
        ([("DELETED", "11"), ("MODIFIED", "12")], "12"),
        ([("DELETED", "11"), ("ADDED", "13"), ("MODIFIED", "12")], "13"),
        # Newer wins whatever the order of arrival.
        ([(None, "10"), ("MODIFIED", "12"), ("MODIFIED", "11")], "12"),
    ],
)
def test_a_deletion_marker_hides_only_what_is_older(
    events: list[tuple[str | None, str]], held: str | None
) -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob(rv="10"))
    for type_, rv in events:
        cache.cronjob_event(type_, cronjob(rv=rv))
    got = cache.cronjobs.get(KEY)
    assert (got.resource_version if got else None) == held


def test_a_label_stripped_cronjob_is_kept_as_it_is_and_revived_by_the_restore() -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob(rv="10"))
    cache.job_event(None, job("run-1", **DONE))
    # The label-filtered watch says DELETED, but the object still exists, unlabelled.
    cache.cronjob_event("DELETED", relabel(cronjob(), STRIPPED, "11"))
    held = cache.view(KEY).cronjob
    assert held is not None
    assert "app.kubernetes.io/managed-by" not in held["metadata"]["labels"]
    assert names(cache) == ["run-1"]  # its Jobs stay attached
    # The operator restores the label: the answer and the ADDED event that follows count.
    cache.cronjob_event("MODIFIED", cronjob(rv="12"))
    cache.cronjob_event("ADDED", cronjob(rv="12"))
    cache.job_event("MODIFIED", job("run-2", **DONE))
    assert cache.cronjobs[KEY].resource_version == "12"
    assert names(cache) == ["run-1", "run-2"]


def test_a_label_stripped_job_is_not_a_deleted_job() -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob())
    running = job("run-1")
    cache.job_event(None, running)
    cache.job_event("DELETED", relabel(running, STRIPPED, "20"))
    assert names(cache) == ["run-1"]
    assert cache.counts()["departed"] == 0


def listed(*rvs: tuple[str, str]) -> list[dict[str, Any]]:
    """CronJobs named by (uid, resourceVersion)."""
    return [cronjob(uid=uid, rv=rv, name=f"cj-{uid}") for uid, rv in rvs]


@pytest.mark.parametrize(
    ("held", "listing", "list_rv", "after", "kinds"),
    [
        # What the list lacks, and the cache holds at or before the list, was deleted.
        ([("a", "10"), ("b", "11")], [("a", "10")], "20", {"a": "10"}, {"deleted": 1}),
        # What the cache holds newer than the list was created after it: kept.
        ([("a", "10"), ("b", "25")], [("a", "10")], "20", {"a": "10", "b": "25"}, {}),
        # What the list holds and the cache lacks or holds older is taken.
        ([("a", "10")], [("a", "15"), ("c", "12")], "20", {"a": "15", "c": "12"},
         {"updated": 1, "added": 1}),
        # What the cache holds newer than the list stays.
        ([("a", "30")], [("a", "15")], "20", {"a": "30"}, {}),
        # An empty listing empties the scope.
        ([("a", "10"), ("b", "11")], [], "20", {}, {"deleted": 2}),
    ],
)  # fmt: skip
def test_a_listing_replaces_the_scope(
    held: list[tuple[str, str]],
    listing: list[tuple[str, str]],
    list_rv: str,
    after: dict[str, str],
    kinds: dict[str, int],
) -> None:
    cache = Cache()
    for body in listed(*held):
        cache.cronjob_event(None, body)
    result = cache.replace(CRONJOBS, "team-a", listed(*listing), list_rv)
    assert {p.uid: p.resource_version for p in cache.cronjobs.values()} == after
    assert result.corrections == kinds
    # A deleted object stays deleted when an older answer arrives afterwards.
    for uid, rv in held:
        if uid not in after:
            cache.cronjob_event("MODIFIED", listed((uid, rv))[0])
            assert uid not in {p.uid for p in cache.cronjobs.values()}


def test_a_listing_of_one_namespace_leaves_the_others() -> None:
    cache = Cache()
    other = cronjob(uid="x", rv="5")
    other["metadata"]["namespace"] = "team-b"
    cache.cronjob_event(None, other)
    cache.replace(CRONJOBS, "team-a", [], "20")
    assert [p.uid for p in cache.cronjobs.values()] == ["x"]
    cache.replace(CRONJOBS, None, [], "20")
    assert cache.cronjobs == {}


def test_jobs_missing_from_a_listing_depart_when_finished_and_vanish_when_running() -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob())
    cache.task_event(None, {"metadata": {"name": "backup", "namespace": "team-a", "uid": "t"}})
    done, running, kept = job("done", **DONE), job("running"), job("kept")
    for i, body in enumerate((done, running, kept)):
        body["metadata"]["uid"] = f"j{i}"
        body["metadata"]["resourceVersion"] = str(10 + i)
        cache.job_event(None, body)
    result = cache.replace(JOBS, "team-a", [kept], "20")
    assert names(cache) == ["done", "kept"]  # "done" as departed, until recorded
    assert cache.counts() | {"tombstones": 0} == {
        "tasks": 1, "cronjobs": 1, "jobs": 1, "departed": 1, "tombstones": 0
    }  # fmt: skip
    assert result.touched == {KEY}
    assert result.corrections == {"deleted": 2}


def test_a_listing_of_tasks_reports_the_deleted_ones() -> None:
    cache = Cache()

    def body(name: str, uid: str, rv: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": "team-a", "uid": uid, "resourceVersion": rv}
        }

    cache.task_event(None, body("stays", "u1", "10"))
    cache.task_event(None, body("gone", "u2", "11"))
    cache.task_event(None, body("new", "u3", "30"))
    result = cache.replace(TASKS, "team-a", [body("stays", "u1", "10")], "20")
    assert sorted(k[1] for k in cache.tasks) == ["new", "stays"]
    assert [b["metadata"]["name"] for b in result.deleted] == ["gone"]
    assert cache.namespace_size("team-a") == 2
    # A task recreated under the same name is a new object, not the deleted one.
    cache.task_event("ADDED", body("gone", "u4", "31"))
    assert cache.tasks[("team-a", "gone")].uid == "u4"


def test_departed_jobs_are_stored_cut_to_what_recording_reads() -> None:
    cache = Cache()
    cache.cronjob_event(None, cronjob())
    done = job("done", **DONE)
    done["metadata"]["annotations"] = {
        "batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-11-27T10:00:00Z",
        "unrelated": "x" * 1000,
    }
    cache.job_event("DELETED", done)
    (stored,) = cache.view(KEY).jobs
    assert stored["metadata"]["annotations"] == {
        "batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-11-27T10:00:00Z"
    }
    assert len(json.dumps(stored)) < 600


def test_deletion_markers_are_kept_for_their_time_not_for_an_hour() -> None:
    """A Job deleted every 2 s (300 per-minute tasks) for ten minutes: only the markers
    of the last TOMBSTONE_SECONDS stay, and a recent one still hides an older answer."""
    from cronwarden.runtime.cache import TOMBSTONE_SECONDS

    now = [0.0]
    cache = Cache(clock=lambda: now[0])
    cache.cronjob_event(None, cronjob())
    for i in range(300):
        now[0] = i * 2.0
        body = job(f"run-{i}", **DONE)
        body["metadata"] |= {"uid": f"job-{i}", "resourceVersion": str(100 + i)}
        cache.job_event(None, body)
        cache.job_event("DELETED", body)
    assert cache.counts()["tombstones"] == TOMBSTONE_SECONDS / 2 + 1
    stale = job("run-299", **DONE)
    stale["metadata"] |= {"uid": "job-299", "resourceVersion": "398"}  # before its deletion
    assert cache.job_event(None, stale) is False
