"""Blocked under concurrencyPolicy Replace: runs stopped before they finish. A run
that was active at the previous reconcile and is gone unfinished was stopped; N in a
row (blockedAfterSkippedRuns, default 1) make the task Blocked until a run finishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronwarden.core.status import Outcome, compute_status
from tests.unit.cronjob_model import condition
from tests.unit.factories import job, task

HOURLY = {"schedule": "0 * * * *"}
TEN = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
HUNG = job(
    "backup-29931000",
    scheduled="2026-11-28T10:00:00Z",
    created="2026-11-28T10:00:00Z",
    start="2026-11-28T10:00:01Z",
)


def reconcile(
    spec: dict[str, Any],
    now: datetime,
    jobs: list[dict[str, Any]],
    status: dict[str, Any] | None = None,
    last_schedule: str = "2026-11-28T10:00:00Z",
) -> Outcome:
    body = task(spec, status, creationTimestamp="2026-11-28T09:30:00Z")
    cronjob = {"metadata": {"name": "backup"}, "status": {"lastScheduleTime": last_schedule}}
    return compute_status(body, cronjob, jobs, now)


def wire(outcome: Outcome) -> dict[str, Any]:
    return dict(outcome.status.model_dump(by_alias=True, mode="json", exclude_none=True))


REPLACE = {**HOURLY, "concurrencyPolicy": "Replace"}
ELEVEN_RUNNING = job(
    "backup-29931060",
    scheduled="2026-11-28T11:00:00Z",
    created="2026-11-28T11:00:00Z",
    start="2026-11-28T11:00:01Z",
)
ELEVEN_DONE = job(
    "backup-29931060",
    scheduled="2026-11-28T11:00:00Z",
    created="2026-11-28T11:00:00Z",
    start="2026-11-28T11:00:01Z",
    complete="2026-11-28T11:20:00Z",
)
TWELVE_RUNNING = job(
    "backup-29931120",
    scheduled="2026-11-28T12:00:00Z",
    created="2026-11-28T12:00:00Z",
    start="2026-11-28T12:00:01Z",
)


@pytest.mark.parametrize(
    ("threshold", "blocked_after"),
    [pytest.param(None, [True, True], id="default 1"), pytest.param(2, [False, True], id="2")],
)
def test_replace_stopping_runs_before_they_finish_is_blocked(
    threshold: int | None, blocked_after: list[bool]
) -> None:
    spec = REPLACE if threshold is None else {**REPLACE, "blockedAfterSkippedRuns": threshold}
    ten = reconcile(spec, TEN + timedelta(minutes=5), [HUNG])
    assert ten.status.active == ["backup-29931000"]
    # At 11:00 the controller deleted the 10:00 Job to start 11:00's.
    eleven = reconcile(
        spec,
        TEN + timedelta(hours=1, seconds=5),
        [ELEVEN_RUNNING],
        wire(ten),
        "2026-11-28T11:00:00Z",
    )
    twelve = reconcile(
        spec,
        TEN + timedelta(hours=2, seconds=5),
        [TWELVE_RUNNING],
        wire(eleven),
        "2026-11-28T12:00:00Z",
    )
    states = [condition(o, "Blocked") == "True" for o in (eleven, twelve)]
    assert states == blocked_after
    assert (eleven.status.skipped_runs.replace, twelve.status.skipped_runs.replace) == (1, 2)
    assert twelve.status.consecutive_replaced_runs == 2
    [event] = [e for o in (eleven, twelve) for e in o.events if e.reason == "Blocked"]
    assert "stopped before they finished by concurrencyPolicy Replace" in event.message
    [blocked] = [c for c in twelve.status.conditions if c.type == "Blocked"]
    assert blocked.reason == "RunsReplaced"
    assert "2 run(s) in a row" in blocked.message
    assert "the current run, Job backup-29931120, has been running since" in blocked.message


def test_a_finished_run_ends_a_replace_streak() -> None:
    ten = reconcile(REPLACE, TEN + timedelta(minutes=5), [HUNG])
    eleven = reconcile(
        REPLACE,
        TEN + timedelta(hours=1, seconds=5),
        [ELEVEN_RUNNING],
        wire(ten),
        "2026-11-28T11:00:00Z",
    )
    assert condition(eleven, "Blocked") == "True"
    done = reconcile(
        REPLACE,
        TEN + timedelta(hours=1, minutes=21),
        [ELEVEN_DONE],
        wire(eleven),
        "2026-11-28T11:00:00Z",
    )
    assert condition(done, "Blocked") == "False"
    assert (done.status.consecutive_replaced_runs, done.status.skipped_runs.replace) == (0, 1)
