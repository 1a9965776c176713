"""The watch-fed cache: ownership by uid, departed Jobs kept until recorded, and
write answers that an older watch event cannot undo. Pure: no cluster."""

from __future__ import annotations

from typing import Any

from cronwarden.runtime.cache import Cache, controller_uid, slim
from tests.unit.factories import job as job_status

CRONJOB_UID = "cj-1"


def cronjob(uid: str = CRONJOB_UID, rv: str = "10", name: str = "backup") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": uid,
            "resourceVersion": rv,
            "managedFields": [{"manager": "cronwarden"}],
        },
        "spec": {"schedule": "* * * * *"},
    }


def job(name: str, owner: str | None = CRONJOB_UID, **times: str) -> dict[str, Any]:
    body = job_status(name, **times)
    body["spec"] = {"template": {"spec": {"containers": [{"name": "main"}]}}}
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
