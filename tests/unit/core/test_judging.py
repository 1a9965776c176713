"""A schedule or time-zone edit never judges the new schedule's slots before the edit;
other edits keep judging; status.judging survives a restart. Named instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronwarden.core.status import Outcome, compute_status
from tests.unit.factories import task

CREATED = "2026-11-20T00:00:00Z"
GRACE = timedelta(seconds=60)

DAILY = {"schedule": "30 2 * * *"}
HOURLY = {"schedule": "0 * * * *"}
DAILY_LOS_ANGELES = {"schedule": "30 2 * * *", "timeZone": "America/Los_Angeles"}

AFTER_THE_DAILY_RUN = datetime(2026, 11, 28, 2, 31, 10, tzinfo=UTC)
QUARTER_PAST_TEN = datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
HALF_PAST_TEN = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
ELEVEN = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# 02:30 in Los Angeles (UTC-8 in November) is 10:30 UTC: before an edit at noon.
LA_SLOT_BEFORE_THE_EDIT = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
LA_NEXT_SLOT = datetime(2026, 11, 29, 10, 30, tzinfo=UTC)
JUST_BEFORE_TEN = datetime(2026, 11, 28, 9, 59, tzinfo=UTC)
TEN = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
WITHIN_TENS_GRACE = TEN + timedelta(seconds=30)


def wire(outcome: Outcome) -> dict[str, Any]:
    """The status as the API server returns it (and a restarted operator reads it)."""
    return dict(outcome.status.model_dump(by_alias=True, mode="json", exclude_none=True))


def reconcile(
    spec: dict[str, Any],
    now: datetime,
    status: dict[str, Any] | None = None,
    *,
    generation: int = 1,
    last_schedule: str | None = None,
) -> Outcome:
    body = task(spec, status, generation=generation, creationTimestamp=CREATED)
    cronjob: dict[str, Any] = {"metadata": {"name": "backup"}, "status": {}}
    if last_schedule:
        cronjob["status"]["lastScheduleTime"] = last_schedule
    return compute_status(body, cronjob, [], now)


@pytest.mark.parametrize(
    ("before", "after", "judged_before", "last_schedule", "edited", "judged", "missed"),
    [
        pytest.param(
            DAILY,
            HOURLY,
            AFTER_THE_DAILY_RUN,
            "2026-11-28T02:30:00Z",
            QUARTER_PAST_TEN,
            HALF_PAST_TEN,
            [],
            id="daily-to-hourly: 03:00..10:00 lie before the edit",
        ),
        pytest.param(
            DAILY,
            HOURLY,
            AFTER_THE_DAILY_RUN,
            "2026-11-28T02:30:00Z",
            QUARTER_PAST_TEN,
            ELEVEN + GRACE + timedelta(seconds=1),
            [ELEVEN],
            id="daily-to-hourly: 11:00 comes after the edit",
        ),
        pytest.param(
            DAILY,
            DAILY_LOS_ANGELES,
            AFTER_THE_DAILY_RUN,
            "2026-11-28T02:30:00Z",
            NOON,
            NOON + timedelta(hours=1),
            [],
            id="UTC-to-Los_Angeles: 10:30Z lies before the edit",
        ),
        pytest.param(
            DAILY,
            DAILY_LOS_ANGELES,
            AFTER_THE_DAILY_RUN,
            "2026-11-28T02:30:00Z",
            NOON,
            LA_NEXT_SLOT + GRACE + timedelta(seconds=1),
            [LA_NEXT_SLOT],
            id="UTC-to-Los_Angeles: the next day's slot is judged",
        ),
        pytest.param(
            HOURLY,
            {**HOURLY, "owner": "team-b"},
            JUST_BEFORE_TEN,
            "2026-11-28T09:00:00Z",
            WITHIN_TENS_GRACE,
            TEN + GRACE + timedelta(seconds=1),
            [TEN],
            id="an owner edit within a slot's grace does not hide the slot",
        ),
    ],
)
def test_edits_judge_only_slots_after_a_schedule_change(
    before: dict[str, Any],
    after: dict[str, Any],
    judged_before: datetime,
    last_schedule: str,
    edited: datetime,
    judged: datetime,
    missed: list[datetime],
) -> None:
    first = reconcile(before, judged_before, last_schedule=last_schedule)
    assert first.status.missed_runs == 0
    edit = reconcile(after, edited, wire(first), generation=2, last_schedule=last_schedule)
    assert edit.status.missed_runs == 0
    # A restarted operator reads the status back: the edit instant is kept.
    later = reconcile(after, judged, wire(edit), generation=2, last_schedule=last_schedule)
    assert later.status.missed_runs == len(missed)
    assert later.status.last_missed_time == (missed[-1] if missed else None)
    assert [e.reason for e in later.events] == (["MissedSchedule"] if missed else [])


def test_judging_records_the_schedule_zone_and_the_instant_of_the_edit() -> None:
    first = reconcile(DAILY, AFTER_THE_DAILY_RUN)
    assert first.status.judging is not None
    assert (first.status.judging.schedule, first.status.judging.time_zone) == (
        "30 2 * * *",
        "Etc/UTC",
    )
    assert first.status.judging.since == datetime(2026, 11, 20, tzinfo=UTC)  # creation

    edit = reconcile(HOURLY, QUARTER_PAST_TEN, wire(first), generation=2)
    assert edit.status.judging is not None
    assert (edit.status.judging.schedule, edit.status.judging.since) == (
        "0 * * * *",
        QUARTER_PAST_TEN,
    )
    again = reconcile(HOURLY, HALF_PAST_TEN, wire(edit), generation=2)
    assert again.status.judging == edit.status.judging

    # Naming the default zone explicitly is not a change of zone.
    explicit = reconcile({**HOURLY, "timeZone": "Etc/UTC"}, ELEVEN, wire(again), generation=3)
    assert explicit.status.judging == edit.status.judging


def status_from_an_older_version(observed_generation: int) -> dict[str, Any]:
    """Written before status.judging existed: the operator cannot tell what changed."""
    return {"observedGeneration": observed_generation, "conditions": []}


def test_status_without_judging_starts_at_creation_or_at_an_unseen_edit() -> None:
    unchanged = reconcile(HOURLY, QUARTER_PAST_TEN, status_from_an_older_version(1))
    assert unchanged.status.judging is not None
    assert unchanged.status.judging.since == datetime(2026, 11, 20, tzinfo=UTC)
    edited = reconcile(HOURLY, QUARTER_PAST_TEN, status_from_an_older_version(1), generation=2)
    assert edited.status.judging is not None
    assert edited.status.judging.since == QUARTER_PAST_TEN
    assert edited.status.missed_runs == 0


def test_suspension_keeps_judging_still_and_resuming_restarts_it() -> None:
    suspended = reconcile({**HOURLY, "suspend": True}, TEN, generation=2)
    again = reconcile({**HOURLY, "suspend": True}, ELEVEN, wire(suspended), generation=2)
    assert again.status == suspended.status  # nothing moves while suspended: no write
    resumed = reconcile(HOURLY, NOON, wire(again), generation=3)
    assert resumed.status.judging is not None
    assert resumed.status.judging.since == NOON
    assert resumed.status.missed_runs == 0
