"""Missed slots, Late, Stale, LongRunning and wake-ups: table tests with named instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronwarden.core import detection, schedule
from cronwarden.core.runs import Run
from cronwarden.core.status import compute_status
from tests.unit.factories import job, task

HOURLY = schedule.parse("0 * * * *")
GRACE = timedelta(seconds=60)
CREATED = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
TEN = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
JUST_BEFORE_GRACE_ENDS = TEN + timedelta(seconds=59)
JUST_AFTER_GRACE_ENDS = TEN + timedelta(seconds=61)
AFTER_THREE_SLOTS = datetime(2026, 11, 28, 12, 1, 30, tzinfo=UTC)


def run(name: str, start: datetime, finished: datetime | None = None) -> Run:
    result = "Running" if finished is None else "Succeeded"
    return Run(name, start, start, finished, result)  # type: ignore[arg-type]


def judge(now: datetime, **kwargs: Any) -> detection.SlotVerdict:
    args: dict[str, Any] = {
        "watermark": CREATED,
        "last_schedule": None,
        "now": now,
        "grace": GRACE,
        "forbid": True,
        "runs": [],
    }
    args.update(kwargs)
    return detection.judge_slots(HOURLY, **args)


@pytest.mark.parametrize(
    ("now", "missed"),
    [
        (JUST_BEFORE_GRACE_ENDS, []),
        (JUST_AFTER_GRACE_ENDS, [TEN]),
        (AFTER_THREE_SLOTS, [TEN, TEN + timedelta(hours=1), TEN + timedelta(hours=2)]),
    ],
    ids=["within-grace", "grace-over", "three-slots"],
)
def test_a_slot_with_no_job_is_missed_once_the_grace_is_over(
    now: datetime, missed: list[datetime]
) -> None:
    assert judge(now).missed == missed


def test_a_slot_the_controller_started_is_met() -> None:
    assert judge(JUST_AFTER_GRACE_ENDS, last_schedule=TEN).missed == []
    started = Run("t-1", TEN, TEN + timedelta(seconds=5), None, "Running")
    assert judge(JUST_AFTER_GRACE_ENDS, runs=[started]).missed == []


def test_slots_before_the_watermark_are_not_judged_again() -> None:
    assert judge(JUST_AFTER_GRACE_ENDS, watermark=TEN).missed == []


def test_forbid_skip_while_a_run_is_active_is_not_missed() -> None:
    long_run = run("t-0", CREATED, None)
    verdict = judge(JUST_AFTER_GRACE_ENDS, runs=[long_run])
    assert (verdict.missed, verdict.skipped) == ([], [TEN])
    allow = judge(JUST_AFTER_GRACE_ENDS, runs=[long_run], forbid=False)
    assert allow.missed == [TEN]


def test_overdue_runs() -> None:
    started = run("t-1", TEN)
    assert (
        detection.overdue_runs([started], TEN + timedelta(minutes=5), timedelta(minutes=10)) == []
    )
    assert detection.overdue_runs(
        [started], TEN + timedelta(minutes=11), timedelta(minutes=10)
    ) == [started]
    assert detection.overdue_runs([started], TEN + timedelta(days=1), None) == []


def test_wake_at_is_the_next_time_driven_change() -> None:
    at = detection.wake_at(
        CREATED, next_slot=TEN, grace=GRACE, success_deadline=None, runs=[], run_limit=None
    )
    assert at == TEN + GRACE  # TEN is judged; not TEN itself: its Job wakes the task
    at = detection.wake_at(
        TEN + timedelta(seconds=5),
        next_slot=TEN + timedelta(hours=1),
        grace=GRACE,
        success_deadline=None,
        runs=[],
        run_limit=None,
        undue_slot=TEN,
    )
    assert at == TEN + GRACE  # TEN becomes due
    at = detection.wake_at(
        CREATED,
        next_slot=None,
        grace=GRACE,
        success_deadline=CREATED + timedelta(minutes=5),
        runs=[run("t", CREATED)],
        run_limit=timedelta(minutes=2),
    )
    assert at == CREATED + timedelta(minutes=2, seconds=1)
    assert (
        detection.wake_at(
            CREATED, next_slot=None, grace=GRACE, success_deadline=None, runs=[], run_limit=None
        )
        is None
    )


def test_wake_at_a_slot_due_after_the_next_one_starts_when_the_grace_is_long() -> None:
    """Per-minute with a 90 s grace: at 10:01:05 the 10:01 slot is due at 10:02:30,
    after the next slot (10:02): the timer must not skip past it."""
    at = detection.wake_at(
        TEN + timedelta(minutes=1, seconds=5),
        next_slot=TEN + timedelta(minutes=2),
        grace=timedelta(seconds=90),
        success_deadline=None,
        runs=[],
        run_limit=None,
        undue_slot=TEN + timedelta(minutes=1),
    )
    assert at == TEN + timedelta(minutes=2, seconds=30)  # the 10:01 slot becomes due
    at = detection.wake_at(
        TEN + timedelta(minutes=2),
        next_slot=TEN + timedelta(minutes=3),
        grace=timedelta(seconds=90),
        success_deadline=None,
        runs=[],
        run_limit=None,
        undue_slot=TEN + timedelta(minutes=1),
    )
    assert at == TEN + timedelta(minutes=2, seconds=30)


def test_wake_at_one_second_after_a_run_outlasts_its_allowance() -> None:
    at = detection.wake_at(
        TEN + timedelta(minutes=1, seconds=1),
        next_slot=TEN + timedelta(minutes=2),
        grace=GRACE,
        success_deadline=None,
        runs=[],
        run_limit=None,
        blocked_at=[TEN + timedelta(minutes=2, seconds=1)],
    )
    assert at == TEN + timedelta(minutes=2, seconds=2)  # not the slot at 10:02 itself
    at = detection.wake_at(
        TEN + timedelta(minutes=2),
        next_slot=TEN + timedelta(minutes=3),
        grace=GRACE,
        success_deadline=None,
        runs=[],
        run_limit=None,
        blocked_at=[TEN + timedelta(minutes=2, seconds=1)],
    )
    assert at == TEN + timedelta(minutes=2, seconds=2)


def status_for(
    spec: dict[str, Any],
    now: datetime,
    status: dict[str, Any] | None = None,
    jobs: list[dict[str, Any]] | None = None,
    last_schedule: str | None = None,
) -> Any:
    body = task(spec, status)
    body = body.model_copy(
        update={"metadata": {**body.metadata, "creationTimestamp": "2026-11-28T09:30:00Z"}}
    )
    cronjob: dict[str, Any] = {"metadata": {"name": "backup"}, "status": {}}
    if last_schedule:
        cronjob["status"]["lastScheduleTime"] = last_schedule
    return compute_status(body, cronjob, jobs or [], now)


def cond(status: Any, type_: str) -> Any:
    return next(c for c in status.conditions if c.type == type_)


def wire(status: Any) -> dict[str, Any]:
    return dict(status.model_dump(by_alias=True, mode="json", exclude_none=True))


HOURLY_SPEC = {"schedule": "0 * * * *"}


def test_missed_slot_makes_the_task_late_once_and_a_later_success_clears_it() -> None:
    outcome = status_for(HOURLY_SPEC, JUST_AFTER_GRACE_ENDS)
    st = outcome.status
    assert (st.missed_runs, st.last_missed_time) == (1, TEN)
    assert cond(st, "Late").status == "True"
    assert [e.reason for e in outcome.events] == ["MissedSchedule"]

    # Reconciling again does not count the same slot twice.
    again = status_for(HOURLY_SPEC, JUST_AFTER_GRACE_ENDS + timedelta(seconds=30), wire(st))
    assert again.status.missed_runs == 1
    assert cond(again.status, "Late").status == "True"
    assert again.events == []

    # The next slot starts: still Late until the work is done.
    eleven = job("backup-11", scheduled="2026-11-28T11:00:00Z", start="2026-11-28T11:00:01Z")
    running = status_for(
        HOURLY_SPEC,
        datetime(2026, 11, 28, 11, 2, tzinfo=UTC),
        wire(again.status),
        [eleven],
        last_schedule="2026-11-28T11:00:00Z",
    )
    assert running.status.missed_runs == 1
    assert cond(running.status, "Late").status == "True"

    # It succeeds: Late clears.
    done = job(
        "backup-11",
        scheduled="2026-11-28T11:00:00Z",
        start="2026-11-28T11:00:01Z",
        complete="2026-11-28T11:03:00Z",
    )
    later = status_for(
        HOURLY_SPEC,
        datetime(2026, 11, 28, 11, 3, 5, tzinfo=UTC),
        wire(running.status),
        [done],
        last_schedule="2026-11-28T11:00:00Z",
    )
    assert cond(later.status, "Late").status == "False"


def test_suspended_task_misses_nothing_and_resuming_starts_afresh() -> None:
    suspended = status_for({**HOURLY_SPEC, "suspend": True}, AFTER_THREE_SLOTS)
    assert suspended.status.missed_runs == 0
    assert cond(suspended.status, "Late").status == "False"
    resumed = status_for(HOURLY_SPEC, AFTER_THREE_SLOTS, wire(suspended.status))
    assert resumed.status.missed_runs == 0
    assert resumed.status.next_schedule_time == datetime(2026, 11, 28, 13, 0, tzinfo=UTC)


def test_never_succeeded_task_goes_stale_after_the_deadline() -> None:
    spec = {**HOURLY_SPEC, "successDeadlineSeconds": 3600}
    fresh = status_for(spec, CREATED + timedelta(minutes=59))
    assert cond(fresh.status, "Stale").status == "False"
    stale = status_for(spec, CREATED + timedelta(minutes=61), wire(fresh.status))
    assert (cond(stale.status, "Stale").status, cond(stale.status, "Stale").reason) == (
        "True",
        "SuccessDeadlineExceeded",
    )
    assert "never succeeded" in cond(stale.status, "Stale").message
    assert "SuccessDeadlineExceeded" in [e.reason for e in stale.events]


def test_long_running_run_is_flagged_once() -> None:
    spec = {**HOURLY_SPEC, "maxRunDurationSeconds": 600}
    running = job("backup-10", scheduled="2026-11-28T10:00:00Z", start="2026-11-28T10:00:01Z")
    first = status_for(
        spec, TEN + timedelta(minutes=11), jobs=[running], last_schedule="2026-11-28T10:00:00Z"
    )
    assert cond(first.status, "LongRunning").status == "True"
    assert [e.reason for e in first.events] == ["RunTooLong"]
    assert first.oldest_active == TEN + timedelta(seconds=1)
    second = status_for(
        spec,
        TEN + timedelta(minutes=12),
        wire(first.status),
        [running],
        last_schedule="2026-11-28T10:00:00Z",
    )
    assert second.events == []
