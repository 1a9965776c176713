"""Recording runs once: the watermark across runs that finish in one second, and
runs whose Jobs vanish before they are seen to finish. Pure: no cluster."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cronwarden.api.models import Watermark
from cronwarden.core.recording import advance, covered, new_runs
from cronwarden.core.runs import run_of, scheduled_from_name
from cronwarden.core.status import compute_status
from tests.unit.factories import job, task

SECOND = "2026-11-28T02:31:00Z"
AT = datetime(2026, 11, 28, 2, 31, tzinfo=UTC)
LATER = datetime(2026, 11, 28, 2, 33, 10, tzinfo=UTC)
# "backup-manual-…" sorts after "backup-2993…": recorded first, it hid the other.
MANUAL = job("backup-manual-1795843246", start="2026-11-28T02:30:30Z", failed=SECOND)
SCHEDULED = job(
    "backup-29930550",
    scheduled="2026-11-28T02:30:00Z",
    start="2026-11-28T02:30:01Z",
    complete=SECOND,
)
CRONJOB: dict[str, Any] = {
    "metadata": {"name": "backup", "uid": "cj"},
    "status": {"lastScheduleTime": "2026-11-28T02:30:00Z"},
}


def wire(status: Any) -> dict[str, Any]:
    return dict(status.model_dump(by_alias=True, mode="json", exclude_none=True))


@pytest.mark.parametrize(
    ("first", "second"), [([MANUAL], [MANUAL, SCHEDULED]), ([SCHEDULED], [SCHEDULED, MANUAL])]
)
def test_two_runs_finishing_in_one_second_are_both_counted_in_either_order(
    first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    status = compute_status(task(), CRONJOB, first, LATER).status
    assert status.succeeded + status.failed == 1
    status = compute_status(task(status=wire(status)), CRONJOB, second, LATER).status
    assert (status.succeeded, status.failed) == (1, 1)
    assert status.watermark is not None
    assert status.watermark.completion_time == AT
    assert status.watermark.jobs == sorted(j["metadata"]["name"] for j in second)
    # And once more: nothing is counted twice.
    again = compute_status(task(status=wire(status)), CRONJOB, second, LATER).status
    assert (again.succeeded, again.failed) == (1, 1)


@pytest.mark.parametrize(
    ("mark", "finished", "name", "is_covered"),
    [
        (None, SECOND, "a", False),
        ((SECOND, ["a"]), SECOND, "a", True),
        ((SECOND, ["a"]), SECOND, "b", False),
        ((SECOND, ["a"]), "2026-11-28T02:30:59Z", "z", True),
        ((SECOND, ["a"]), "2026-11-28T02:31:01Z", "a", False),
    ],
)
def test_covered(
    mark: tuple[str, list[str]] | None, finished: str, name: str, is_covered: bool
) -> None:
    watermark = (
        Watermark.model_validate({"completionTime": mark[0], "jobs": mark[1]}) if mark else None
    )
    assert covered(run_of(job(name, complete=finished)), watermark) is is_covered


def test_status_written_before_the_watermark_falls_back_to_last_run() -> None:
    old = {"lastRun": {"job": "backup-manual-1795843246", "result": "Failed",
                       "completionTime": SECOND}, "failed": 1}  # fmt: skip
    status = compute_status(task(status=old), CRONJOB, [MANUAL, SCHEDULED], LATER).status
    assert (status.succeeded, status.failed) == (1, 1)


def test_advance_keeps_the_jobs_of_the_marks_second() -> None:
    mark = Watermark(completion_time=AT, jobs=["a"])
    runs = new_runs(mark, [run_of(job("b", complete=SECOND)), run_of(job("a", complete=SECOND))])
    assert [r.job for r in runs] == ["b"]
    assert advance(mark, runs) == Watermark(completion_time=AT, jobs=["a", "b"])
    assert advance(mark, []) == mark


def test_scheduled_from_name() -> None:
    assert scheduled_from_name("backup-29930550") == datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
    assert scheduled_from_name("backup-manual-1795843246") is None
    assert scheduled_from_name("backup-7") is None


RUNNING = job("backup-29930550", scheduled="2026-11-28T02:30:00Z", start="2026-11-28T02:30:01Z")


def active_status() -> dict[str, Any]:
    status = compute_status(task(), CRONJOB, [RUNNING], LATER).status
    assert status.active == ["backup-29930550"]
    return wire(status)


def test_a_vanished_run_is_taken_from_the_cronjobs_last_success() -> None:
    cronjob = {**CRONJOB, "status": {**CRONJOB["status"], "lastSuccessfulTime": SECOND}}
    outcome = compute_status(task(status=active_status()), cronjob, [], LATER)
    status = outcome.status
    assert status.active == []
    assert (status.succeeded, status.failed, status.unknown) == (1, 0, 0)
    assert status.last_run is not None
    assert (status.last_run.job, status.last_run.result, status.last_run.reason) == (
        "backup-29930550",
        "Succeeded",
        "CronJobLastSuccess",
    )
    assert [e.reason for e in outcome.events] == ["RunSucceeded"]
    again = compute_status(task(status=wire(status)), cronjob, [], LATER).status
    assert (again.succeeded, again.unknown) == (1, 0)


def test_a_vanished_run_with_no_other_record_is_unknown_never_dropped() -> None:
    outcome = compute_status(task(status=active_status()), CRONJOB, [], LATER)
    status = outcome.status
    assert (status.succeeded, status.failed, status.unknown) == (0, 0, 1)
    assert status.last_run is not None
    assert (status.last_run.result, status.last_run.reason) == ("Unknown", "JobVanished")
    assert [(e.type, e.reason) for e in outcome.events] == [("Warning", "RunUnknown")]
    assert "backup-29930550" in outcome.events[0].message
    again = compute_status(task(status=wire(status)), CRONJOB, [], LATER).status
    assert again.unknown == 1


def test_a_last_success_older_than_the_recorded_runs_accounts_for_nothing() -> None:
    done = job("backup-29930549", complete="2026-11-28T02:30:30Z")
    status = compute_status(task(), CRONJOB, [done, RUNNING], LATER).status
    cronjob = {**CRONJOB, "status": {"lastSuccessfulTime": "2026-11-28T02:30:30Z"}}
    status = compute_status(task(status=wire(status)), cronjob, [done], LATER).status
    assert (status.succeeded, status.unknown) == (1, 1)


def test_under_replace_a_vanished_run_is_a_replaced_one() -> None:
    spec = {"concurrencyPolicy": "Replace"}
    status = compute_status(task(spec), CRONJOB, [RUNNING], LATER).status
    status = compute_status(task(spec, status=wire(status)), CRONJOB, [], LATER).status
    assert status.unknown == 0
    assert status.skipped_runs.replace == 1


# D1: a run whose Job was created, finished and deleted while the operator was not
# watching. The CronJob's lastSuccessfulTime is its only evidence.
UNSEEN_AT = "2026-11-28T02:32:04Z"
UNSEEN = datetime(2026, 11, 28, 2, 32, 4, tzinfo=UTC)
PROVES = {**CRONJOB, "status": {**CRONJOB["status"], "lastSuccessfulTime": UNSEEN_AT}}


def recorded_status() -> dict[str, Any]:
    """One run recorded (02:31:00); the CronJob's lastSuccessfulTime says as much."""
    cronjob = {**CRONJOB, "status": {**CRONJOB["status"], "lastSuccessfulTime": SECOND}}
    status = compute_status(task(), cronjob, [SCHEDULED], LATER).status
    assert (status.succeeded, status.last_successful_time) == (1, AT)
    return wire(status)


def test_a_run_never_seen_is_counted_once_from_the_cronjobs_last_success() -> None:
    outcome = compute_status(task(status=recorded_status()), PROVES, [], LATER)
    status = outcome.status
    assert (status.succeeded, status.failed, status.unknown) == (2, 0, 0)
    assert status.last_successful_time == UNSEEN
    assert status.watermark == Watermark(completion_time=UNSEEN, unseen_success=True)
    assert [e.reason for e in outcome.events] == ["RunSucceeded"]
    assert "02:32:04" in outcome.events[0].message
    # Idempotent: the next reconcile, or a restarted operator reading the same status.
    again = compute_status(task(status=wire(status)), PROVES, [], LATER)
    assert again.status == status
    assert again.events == []


def test_a_job_seen_late_that_succeeded_in_that_second_is_the_run_already_counted() -> None:
    """The CronJob's status can reach the operator before the Job's own events."""
    status = compute_status(task(status=recorded_status()), PROVES, [], LATER).status
    late = job("backup-manual-1", start="2026-11-28T02:32:01Z", complete=UNSEEN_AT)
    outcome = compute_status(task(status=wire(status)), PROVES, [late], LATER)
    assert outcome.status.succeeded == 2
    assert outcome.recorded == []
    assert outcome.status.watermark == Watermark(completion_time=UNSEEN, jobs=["backup-manual-1"])
    assert outcome.status.last_run is not None
    assert outcome.status.last_run.job == "backup-manual-1"
    # Another Job that succeeded in the same second is another run.
    twin = job("backup-manual-2", start="2026-11-28T02:32:01Z", complete=UNSEEN_AT)
    status = compute_status(task(status=wire(outcome.status)), PROVES, [late, twin], LATER).status
    assert status.succeeded == 3


def test_a_failure_in_the_unseen_successs_second_does_not_name_it() -> None:
    status = compute_status(task(status=recorded_status()), PROVES, [], LATER).status
    failed = job("backup-manual-1", start="2026-11-28T02:32:01Z", failed=UNSEEN_AT)
    status = compute_status(task(status=wire(status)), PROVES, [failed], LATER).status
    assert (status.succeeded, status.failed) == (2, 1)
    assert status.watermark == Watermark(
        completion_time=UNSEEN, jobs=["backup-manual-1"], unseen_success=True
    )


def test_a_running_job_that_may_be_the_success_defers_it_to_its_own_finish() -> None:
    """A Job still running in the operator's view, created before the CronJob's
    success, may be the run that succeeded: its finish is recorded instead."""
    running = job("backup-29930552", scheduled="2026-11-28T02:32:00Z", start="2026-11-28T02:32:01Z",
                  created="2026-11-28T02:32:00Z")  # fmt: skip
    status = compute_status(task(status=recorded_status()), PROVES, [running], LATER).status
    assert status.succeeded == 1
    assert status.last_successful_time == UNSEEN  # the lower bound, as before
    done = job("backup-29930552", scheduled="2026-11-28T02:32:00Z", start="2026-11-28T02:32:01Z",
               complete=UNSEEN_AT, created="2026-11-28T02:32:00Z")  # fmt: skip
    status = compute_status(task(status=wire(status)), PROVES, [done], LATER).status
    assert status.succeeded == 2
    assert status.watermark == Watermark(completion_time=UNSEEN, jobs=["backup-29930552"])
    status = compute_status(task(status=wire(status)), PROVES, [], LATER).status
    assert status.succeeded == 2


def test_a_referenced_cronjobs_success_before_the_task_is_not_the_tasks() -> None:
    status = compute_status(task(creationTimestamp="2026-11-28T02:33:00Z"), PROVES, [], LATER)
    assert status.status.succeeded == 0
    assert status.status.last_successful_time == UNSEEN


def test_a_vanished_success_taken_by_a_previous_version_is_not_counted_again() -> None:
    """Status written before the watermark followed a vanished run's success: its
    lastRun (CronJobLastSuccess) still covers it."""
    old = recorded_status()
    old["succeeded"] = 2
    old["lastRun"] = {"job": "backup-29930552", "result": "Succeeded",
                      "reason": "CronJobLastSuccess", "completionTime": UNSEEN_AT}  # fmt: skip
    status = compute_status(task(status=old), PROVES, [], LATER).status
    assert status.succeeded == 2


# Full chaos run, operator-freeze, 2026-12-02 (c-0123): while the operator was frozen
# a run came and went (the CronJob recorded its success), and the next run finished
# just after the operator continued. Its first reconcile saw that next run finish and
# recorded it first: the CronJob's older lastSuccessfulTime, no longer later than the
# watermark, was taken as accounted for. One success lost.
NEXT = job(
    "backup-29930553",
    scheduled="2026-11-28T02:33:00Z",
    start="2026-11-28T02:33:01Z",
    complete="2026-11-28T02:33:05Z",
    created="2026-11-28T02:33:00Z",
)


def test_a_success_only_the_cronjob_holds_is_counted_beside_a_later_recorded_run() -> None:
    outcome = compute_status(task(status=recorded_status()), PROVES, [NEXT], LATER)
    status = outcome.status
    assert (status.succeeded, status.failed, status.unknown) == (3, 0, 0)
    assert status.watermark == Watermark(
        completion_time=datetime(2026, 11, 28, 2, 33, 5, tzinfo=UTC), jobs=["backup-29930553"]
    )
    assert status.last_run is not None
    assert status.last_run.job == "backup-29930553"
    assert sorted(e.reason for e in outcome.events) == ["RunSucceeded", "RunSucceeded"]
    # Nothing more once the CronJob catches up with the next run, nor on a restart.
    caught_up = {**CRONJOB, "status": {"lastSuccessfulTime": "2026-11-28T02:33:05Z"}}
    for cronjob, jobs in ((PROVES, [NEXT]), (caught_up, [NEXT]), (caught_up, [])):
        again = compute_status(task(status=wire(status)), cronjob, jobs, LATER)
        assert again.status.succeeded == 3
        assert again.events == []


def test_a_later_success_recorded_with_the_cronjobs_own_is_counted_once() -> None:
    """The CronJob's lastSuccessfulTime is the run recorded in this reconcile: one run."""
    caught_up = {**CRONJOB, "status": {"lastSuccessfulTime": "2026-11-28T02:33:05Z"}}
    status = compute_status(task(status=recorded_status()), caught_up, [NEXT], LATER).status
    assert status.succeeded == 2


def test_a_vanished_run_the_cronjob_holds_is_resolved_beside_a_later_recorded_run() -> None:
    """The same with the first run seen active before the operator stopped watching."""
    vanished_success = {**CRONJOB, "status": {"lastSuccessfulTime": "2026-11-28T02:30:40Z"}}
    outcome = compute_status(task(status=active_status()), vanished_success, [NEXT], LATER)
    status = outcome.status
    assert (status.succeeded, status.failed, status.unknown) == (2, 0, 0)
    assert status.watermark is not None
    assert status.watermark.completion_time == datetime(2026, 11, 28, 2, 33, 5, tzinfo=UTC)
    again = compute_status(task(status=wire(status)), vanished_success, [NEXT], LATER).status
    assert (again.succeeded, again.unknown) == (2, 0)
