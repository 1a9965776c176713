"""The FailedCreate Events kept per Job: newest message, routing to the task, bounds."""

from __future__ import annotations

from typing import Any

from cronwarden.runtime.refusals import Refusals

TASK = ("team-a", "backup")
NO_POD = {"ready": 0, "terminating": 0, "uncountedTerminatedPods": {}}


def job(uid: str = "job-1", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "backup-1", "namespace": "team-a", "uid": uid}, "status": status}


def failed_create(
    job_uid: str = "job-1",
    message: str = "Error creating: forbidden",
    when: str = "10:00:01",
    uid: str = "ev-1",
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"backup-1.{uid}", "namespace": "team-a", "uid": uid},
        "involvedObject": {"kind": "Job", "name": "backup-1", "uid": job_uid},
        "reason": "FailedCreate",
        "type": "Warning",
        "message": message,
        "lastTimestamp": f"2026-11-28T{when}Z",
    }


def test_an_event_wakes_the_task_of_a_job_without_a_pod() -> None:
    refusals = Refusals()
    refusals.job("ADDED", job(), TASK)
    assert refusals.event("ADDED", failed_create()) == TASK
    assert refusals.of([job()]) == {"job-1": "Error creating: forbidden"}


def test_an_event_before_its_job_is_kept_for_the_reconcile_the_job_causes() -> None:
    refusals = Refusals()
    assert refusals.event("ADDED", failed_create()) is None
    refusals.job("ADDED", job(**NO_POD), TASK)
    assert refusals.of([job()]) == {"job-1": "Error creating: forbidden"}


def test_the_newest_message_wins_whatever_the_order() -> None:
    refusals = Refusals()
    refusals.event("ADDED", failed_create(message="new", when="10:05:00", uid="ev-2"))
    refusals.event(None, failed_create(message="old", when="10:00:01", uid="ev-1"))
    assert refusals.of([job()]) == {"job-1": "new"}


def test_a_refusal_goes_with_its_event_its_jobs_pod_or_its_job() -> None:
    refusals = Refusals()
    refusals.event("ADDED", failed_create(uid="ev-2"))
    refusals.event("DELETED", failed_create(uid="ev-1"))  # an older Event expired
    assert len(refusals) == 1
    refusals.event("DELETED", failed_create(uid="ev-2"))  # the one held expired
    assert len(refusals) == 0

    refusals.event("ADDED", failed_create())
    refusals.job("MODIFIED", job(**NO_POD, active=1), TASK)  # admitted at last
    assert len(refusals) == 0
    refusals.job("MODIFIED", job(**NO_POD), TASK)
    refusals.event("ADDED", failed_create())
    refusals.job("DELETED", job(**NO_POD), TASK)
    assert len(refusals) == 0
    assert refusals.event("ADDED", failed_create()) is None  # no longer routed


def test_other_events_are_ignored_and_memory_is_bounded() -> None:
    refusals = Refusals(limit=3)
    other = {**failed_create(), "reason": "SuccessfulCreate"}
    assert refusals.event("ADDED", other) is None
    assert len(refusals) == 0
    for i in range(10):
        refusals.event("ADDED", failed_create(job_uid=f"job-{i}", uid=f"ev-{i}"))
    assert len(refusals) == 3
    assert set(refusals.of([job(f"job-{i}") for i in range(10)])) == {"job-7", "job-8", "job-9"}
    for i in range(10):
        refusals.job("ADDED", job(f"job-{i}", **NO_POD), TASK)
    assert len(refusals._podless) == 3
