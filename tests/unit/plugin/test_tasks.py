"""`get`: one row per task, at a fixed `now`."""

from __future__ import annotations

from typing import Any

import pytest

from cronwarden.plugin.tasks import get_table, next_run_column, row, state
from tests.unit.plugin.objects import HEALTHY, NOON, cond, task, with_conditions

LATE = cond("Late", "True", "MissedSchedule", "the run scheduled at ... did not start")
BLOCKED = cond("Blocked", "True", "RunStillActive", "Job backup-1 is still running")
FAILING = cond("Failing", "True", "ConsecutiveFailures", "1 failed run(s) in a row, limit 1")
STALE = cond("Stale", "True", "SuccessDeadlineExceeded", "no successful run ...")
SUSPENDED = cond("Suspended", "True", "SuspendedBySpec", "spec.suspend is true")
NOT_OWNED = cond("Ready", "False", "CronJobNotOwned", "CronJob backup exists ...")


@pytest.mark.parametrize(
    ("conditions", "shown"),
    [
        (HEALTHY, "OK"),
        (with_conditions(LATE), "Late"),
        (with_conditions(LATE, FAILING, STALE), "Late,Failing,Stale"),
        (with_conditions(BLOCKED), "Blocked"),
        (with_conditions(SUSPENDED), "Suspended"),
        (with_conditions(SUSPENDED, FAILING), "Failing,Suspended"),
        (with_conditions(NOT_OWNED), "NotReady:CronJobNotOwned"),
        (with_conditions(NOT_OWNED, FAILING), "NotReady:CronJobNotOwned,Failing"),
        ([], "NotReady:NotObserved"),
    ],
)
def test_state_lists_the_bad_conditions(conditions: list[dict[str, Any]], shown: str) -> None:
    assert state(task(status={"conditions": conditions})) == shown


def test_a_task_without_status_yet() -> None:
    assert state(task()) == "NotReady:NotObserved"
    assert row(task(), NOON) == [
        "backup",
        "30 2 * * *",
        "Etc/UTC",
        "0",
        "<never>",
        "<none>",
        "NotReady:NotObserved",
        "team-storage",
        "8d",  # created 2026-11-20T00:00:00Z
    ]


def test_row_of_a_healthy_task() -> None:
    t = task(
        spec={"timeZone": "Europe/Berlin"},
        status={
            "conditions": HEALTHY,
            "lastSuccessfulTime": "2026-11-28T12:07:00Z",  # 3m before NOON
            "nextScheduleTime": "2026-11-28T12:14:00Z",  # in 4m
        },
    )
    assert row(t, NOON) == [
        "backup",
        "30 2 * * *",
        "Europe/Berlin",
        "0",
        "3m",
        "in 4m",
        "OK",
        "team-storage",
        "8d",
    ]


def test_active_runs_and_the_wide_columns() -> None:
    t = task(
        status={
            "conditions": with_conditions(LATE),
            "active": [{"name": "backup-29400000"}, {"name": "backup-manual-1"}],
            "lastScheduleTime": "2026-11-28T12:00:00Z",
            "lastRun": {"job": "backup-1", "result": "Failed", "reason": "DeadlineExceeded"},
            "consecutiveFailures": 2,
            "missedRuns": 3,
        }
    )
    assert row(t, NOON)[3] == "2"
    assert row(t, NOON, wide=True)[8:] == [
        "10m", "Failed(DeadlineExceeded)", "2", "3", "backup", "8d"
    ]  # fmt: skip
    header = get_table([t], NOON, wide=True).splitlines()[0]
    assert header.split()[-7:] == [
        "SCHEDULE",
        "LAST",
        "RESULT",
        "FAILURES",
        "MISSED",
        "CRONJOB",
        "AGE",
    ]


@pytest.mark.parametrize(
    ("last_success", "shown"),
    [
        ("2026-11-28T10:10:00Z", "120m"),  # kubectl shows 2 h as 120m
        ("2026-11-28T08:10:00Z", "4h"),
        ("2026-11-23T12:10:00Z", "5d"),
        (None, "<never>"),
    ],
)
def test_last_success_is_an_age(last_success: str | None, shown: str) -> None:
    status: dict[str, Any] = {"conditions": HEALTHY}
    if last_success:
        status["lastSuccessfulTime"] = last_success
    assert row(task(status=status), NOON)[4] == shown


@pytest.mark.parametrize(
    ("next_time", "shown"),
    [
        ("2026-11-28T12:14:00Z", "in 4m"),
        ("2026-11-29T02:30:00Z", "in 14h"),
        ("2026-11-29T12:10:00Z", "2026-11-29T12:10:00Z"),  # a day or more: the time
        ("2026-11-28T12:09:55Z", "5s ago"),  # status behind a slot that passed
        (None, "<none>"),
    ],
)
def test_next_run_is_relative_within_a_day(next_time: str | None, shown: str) -> None:
    status: dict[str, Any] = {"conditions": HEALTHY}
    if next_time:
        status["nextScheduleTime"] = next_time
    assert next_run_column(task(status=status), NOON) == shown


def test_monitor_mode_shows_the_cronjob_and_its_zone() -> None:
    t = task(
        spec={"cronJobRef": {"name": "vendor-backup"}, "schedule": None, "jobTemplate": None},
        status={
            "conditions": HEALTHY,
            "judging": {"schedule": "0 3 * * *", "timeZone": "America/New_York", "since": "x"},
        },
    )
    t["spec"] = {k: v for k, v in t["spec"].items() if v is not None}
    assert row(t, NOON)[1:3] == ["-> cronjob/vendor-backup", "America/New_York"]
    # Before the operator judged it, the zone is the default.
    del t["status"]["judging"]
    assert row(t, NOON)[2] == "Etc/UTC"


def test_table_with_all_namespaces_adds_namespace_first_and_sorts() -> None:
    tasks = [
        task("zeta", status={"conditions": HEALTHY}, namespace="b"),
        task("alpha", status={"conditions": with_conditions(LATE)}, namespace="b"),
        task("omega", status={"conditions": HEALTHY}, namespace="a"),
    ]
    lines = get_table(tasks, NOON, with_namespace=True).splitlines()
    assert lines[0].split() == [
        "NAMESPACE", "NAME", "SCHEDULE", "TZ", "ACTIVE", "LAST", "SUCCESS", "NEXT", "RUN",
        "STATE", "OWNER", "AGE",
    ]  # fmt: skip
    assert [line.split()[:2] for line in lines[1:]] == [
        ["a", "omega"],
        ["b", "alpha"],
        ["b", "zeta"],
    ]
    assert "Late" in lines[2]
    assert get_table(tasks, NOON).splitlines()[0].startswith("NAME ")
