"""Late: from a missed slot until the work is done (a run that started at or after the
slot succeeds, scheduled or started by hand). Suspension pauses judging; resuming
starts afresh. Table tests with named instants, hourly schedule created at 09:30."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronwarden.core.status import Outcome, compute_status
from tests.unit.factories import job, task

HOURLY = {"schedule": "0 * * * *"}
CREATED = "2026-11-28T09:30:00Z"
TEN = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
TEN_IS_MISSED = TEN + timedelta(seconds=61)
HALF_PAST_TEN = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
AFTER_ELEVENS_RUN = datetime(2026, 11, 28, 11, 5, tzinfo=UTC)

ELEVEN_RUNNING = job("backup-11", scheduled="2026-11-28T11:00:00Z", start="2026-11-28T11:00:01Z")
ELEVEN_SUCCEEDED = job(
    "backup-11",
    scheduled="2026-11-28T11:00:00Z",
    start="2026-11-28T11:00:01Z",
    complete="2026-11-28T11:02:00Z",
)
ELEVEN_FAILED = job(
    "backup-11",
    scheduled="2026-11-28T11:00:00Z",
    start="2026-11-28T11:00:01Z",
    failed="2026-11-28T11:02:00Z",
)
MANUAL_AFTER_THE_SLOT = job(
    "backup-manual", start="2026-11-28T10:20:00Z", complete="2026-11-28T10:25:00Z"
)
NINE_STARTED_BEFORE_THE_SLOT = job(
    "backup-9", scheduled="2026-11-28T09:00:00Z", start="2026-11-28T09:00:01Z"
)
NINE_SUCCEEDED_AFTER_THE_SLOT = job(
    "backup-9",
    scheduled="2026-11-28T09:00:00Z",
    start="2026-11-28T09:00:01Z",
    complete="2026-11-28T10:25:00Z",
)


def wire(outcome: Outcome) -> dict[str, Any]:
    return dict(outcome.status.model_dump(by_alias=True, mode="json", exclude_none=True))


def reconcile(
    spec: dict[str, Any],
    now: datetime,
    status: dict[str, Any] | None = None,
    jobs: list[dict[str, Any]] | None = None,
    *,
    generation: int = 1,
    last_schedule: str | None = None,
) -> Outcome:
    body = task(spec, status, generation=generation, creationTimestamp=CREATED)
    cronjob: dict[str, Any] = {"metadata": {"name": "backup"}, "status": {}}
    if last_schedule:
        cronjob["status"]["lastScheduleTime"] = last_schedule
    return compute_status(body, cronjob, jobs or [], now)


def late(outcome: Outcome) -> tuple[str, str]:
    [cond] = [c for c in outcome.status.conditions if c.type == "Late"]
    return cond.status, cond.reason


@pytest.mark.parametrize(
    ("spec", "before", "jobs", "now", "expected"),
    [
        pytest.param(
            HOURLY, [], [ELEVEN_RUNNING], AFTER_ELEVENS_RUN, "True", id="next run still running"
        ),
        pytest.param(
            HOURLY, [], [ELEVEN_SUCCEEDED], AFTER_ELEVENS_RUN, "False", id="next run succeeded"
        ),
        pytest.param(HOURLY, [], [ELEVEN_FAILED], AFTER_ELEVENS_RUN, "True", id="next run failed"),
        pytest.param(
            HOURLY,
            [],
            [MANUAL_AFTER_THE_SLOT],
            HALF_PAST_TEN,
            "False",
            id="run started by hand after the slot succeeded",
        ),
        pytest.param(
            {**HOURLY, "concurrencyPolicy": "Allow"},
            [NINE_STARTED_BEFORE_THE_SLOT],
            [NINE_SUCCEEDED_AFTER_THE_SLOT],
            HALF_PAST_TEN,
            "True",
            id="run that started before the slot succeeded after it",
        ),
    ],
)
def test_late_clears_when_a_run_started_after_the_missed_slot_succeeds(
    spec: dict[str, Any],
    before: list[dict[str, Any]],
    jobs: list[dict[str, Any]],
    now: datetime,
    expected: str,
) -> None:
    missed = reconcile(spec, TEN_IS_MISSED, jobs=before)
    assert (missed.status.last_missed_time, late(missed)) == (TEN, ("True", "MissedSchedule"))
    after = reconcile(spec, now, wire(missed), jobs, last_schedule="2026-11-28T11:00:00Z")
    assert late(after)[0] == expected
    assert after.status.missed_runs == 1


def test_cleared_late_stays_cleared_when_the_job_is_deleted() -> None:
    missed = reconcile(HOURLY, TEN_IS_MISSED)
    eleven = "2026-11-28T11:00:00Z"
    done = reconcile(
        HOURLY, AFTER_ELEVENS_RUN, wire(missed), [ELEVEN_SUCCEEDED], last_schedule=eleven
    )
    assert late(done) == ("False", "OnSchedule")
    # The history limit deleted the Job; a restarted operator reads status back.
    gone = reconcile(
        HOURLY, AFTER_ELEVENS_RUN + timedelta(minutes=5), wire(done), last_schedule=eleven
    )
    assert late(gone) == ("False", "OnSchedule")
    assert gone.events == []


def test_work_done_by_hand_before_the_slot_is_due_is_missed_but_not_late() -> None:
    by_hand = job("backup-manual", start="2026-11-28T10:00:05Z", complete="2026-11-28T10:00:40Z")
    recorded = reconcile(HOURLY, TEN + timedelta(seconds=41), jobs=[by_hand])
    due = reconcile(HOURLY, TEN_IS_MISSED, wire(recorded), [by_hand])
    assert due.status.missed_runs == 1  # the controller did not start the slot
    assert late(due) == ("False", "OnSchedule")  # but its work is done


def test_late_survives_a_restart_until_the_work_is_done() -> None:
    missed = reconcile(HOURLY, TEN_IS_MISSED)
    restarted = reconcile(HOURLY, HALF_PAST_TEN, wire(missed))
    assert late(restarted) == ("True", "MissedSchedule")
    assert restarted.status == missed.status  # no write


def test_suspension_pauses_late_and_resuming_does_not_bring_it_back() -> None:
    missed = reconcile(HOURLY, TEN_IS_MISSED)
    assert late(missed) == ("True", "MissedSchedule")
    suspended = reconcile({**HOURLY, "suspend": True}, HALF_PAST_TEN, wire(missed), generation=2)
    assert late(suspended) == ("False", "Suspended")
    resumed = reconcile(HOURLY, AFTER_ELEVENS_RUN, wire(suspended), generation=3)
    assert late(resumed) == ("False", "OnSchedule")
    assert resumed.status.missed_runs == 1  # 11:00 passed while suspended: not missed
    assert resumed.events == []
    # Judging starts afresh: the next slot with no Job is missed again.
    noon = reconcile(HOURLY, datetime(2026, 11, 28, 12, 1, 1, tzinfo=UTC), wire(resumed))
    assert (noon.status.missed_runs, late(noon)) == (2, ("True", "MissedSchedule"))
