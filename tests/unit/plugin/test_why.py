"""`why`: the explanation in words, and the report around it, at a fixed `now`."""

from __future__ import annotations

from typing import Any

import pytest

from cronwarden.core.runs import run_of
from cronwarden.plugin.why import events_table, explain, render, runs_table
from tests.unit.plugin.objects import HEALTHY, NOON, cond, event, job, task, with_conditions

LATE = cond(
    "Late",
    "True",
    "MissedSchedule",
    "the run scheduled at 2026-11-28T02:30:00Z did not start within 60s, and no run "
    "started since has succeeded",
)
BLOCKED = cond(
    "Blocked",
    "True",
    "RunStillActive",
    "Job backup-29400 has been running since 2026-11-27T02:30:00Z and holds back 1 slot",
)
REPLACED = cond("Blocked", "True", "RunsReplaced", "2 runs in a row were stopped by Replace")
FAILING = cond(
    "Failing",
    "True",
    "ConsecutiveFailures",
    "2 failed run(s) in a row, limit 1; last: Job backup-29401 failed (BackoffLimitExceeded)",
)
STALE = cond(
    "Stale",
    "True",
    "SuccessDeadlineExceeded",
    "no successful run within the success deadline (last success at 2026-11-26T02:31:00Z)",
)


def explained(*conditions: dict[str, Any], **spec: Any) -> str:
    return "\n".join(explain(task(spec=spec, status={"conditions": with_conditions(*conditions)})))


def test_healthy() -> None:
    [line] = explain(task(status={"conditions": HEALTHY}))
    assert line.startswith("Healthy")


def test_late_names_the_slot_and_how_to_catch_up() -> None:
    text = explained(LATE)
    assert text.startswith("Late: the run scheduled at 2026-11-28T02:30:00Z did not start")
    assert "(reason MissedSchedule)" in text
    assert "kubectl cronwarden trigger backup" in text


def test_blocked_by_a_run_that_does_not_end() -> None:
    text = explained(BLOCKED)
    assert "Blocked: Job backup-29400 has been running since" in text
    assert "Forbid" in text
    assert "delete the Job" in text


def test_blocked_by_replace() -> None:
    text = explained(REPLACED)
    assert "Blocked: 2 runs in a row were stopped by Replace (reason RunsReplaced)" in text
    assert "longer than the schedule" in text


NOT_ADMITTED = cond(
    "Blocked",
    "True",
    "PodsNotAdmitted",
    "Job backup-29400 has no pod: the API server refuses its pods: Error creating: pods "
    '"backup-29400-x7k2p" is forbidden: violates PodSecurity "restricted:latest": '
    'privileged (container "main" must not set securityContext.privileged=true)',
)
POD_SECURITY_WARNING = (
    'would violate PodSecurity "restricted:latest": privileged (container "main" must not '
    "set securityContext.privileged=true)"
)


def test_blocked_by_refused_pods_quotes_the_refusal_and_says_what_to_change() -> None:
    text = explained(NOT_ADMITTED)
    assert (
        "Blocked: Job backup-29400 has no pod: the API server refuses its pods: Error creating: "
        'pods "backup-29400-x7k2p" is forbidden: violates PodSecurity'
    ) in text
    assert "(reason PodsNotAdmitted)" in text
    assert "change the pod template or the namespace's policy" in text
    assert "Forbid" not in text  # not the hint for a run that does not end


def test_apply_warnings_are_a_line_each_after_the_verdict() -> None:
    status = {"conditions": HEALTHY, "applyWarnings": [POD_SECURITY_WARNING, "deprecated x"]}
    lines = explain(task(status=status))
    assert lines[0].startswith("Healthy")
    assert lines[1:] == [
        f"API server warning on the CronJob's last apply: {POD_SECURITY_WARNING}",
        "API server warning on the CronJob's last apply: deprecated x",
    ]
    assert POD_SECURITY_WARNING in render(task(status=status), [], [], NOON)


def test_failing_names_the_last_failed_job() -> None:
    text = explained(FAILING)
    assert "Failing: 2 failed run(s) in a row, limit 1; last: Job backup-29401 failed" in text
    assert "kubectl logs job/NAME" in text


def test_stale_names_the_deadline() -> None:
    text = explained(STALE, successDeadlineSeconds=93600)
    assert "Stale: no successful run within the success deadline" in text
    assert "spec.successDeadlineSeconds is 93600s" in text


def test_several_problems_one_line_each_in_a_fixed_order() -> None:
    lines = explain(task(status={"conditions": with_conditions(STALE, LATE, FAILING)}))
    assert [line.split(":")[0] for line in lines] == ["Late", "Failing", "Stale"]


@pytest.mark.parametrize(
    ("conditions", "start"),
    [
        (
            [cond("Ready", "False", "UnknownTimeZone", "timeZone: unknown time zone 'X'")],
            "Not ready",
        ),
        ([], "Not reconciled yet"),
    ],
)
def test_not_ready_or_not_reconciled(conditions: list[dict[str, Any]], start: str) -> None:
    status = {"conditions": with_conditions(*conditions)} if conditions else {}
    assert explain(task(status=status))[0].startswith(start)


def test_suspended_in_monitor_mode_points_at_the_cronjob() -> None:
    suspended = cond("Suspended", "True", "SuspendedBySpec", "spec.suspend is true")
    t = task(
        spec={"cronJobRef": {"name": "vendor"}}, status={"conditions": with_conditions(suspended)}
    )
    assert explain(t) == [
        "Suspended: the CronJob's spec.suspend is true: no new runs start and slots are not judged."
    ]


JOBS = [
    job(
        "backup-29401",
        created="2026-11-28T02:30:00Z",
        start="2026-11-28T02:30:01Z",
        failed="2026-11-28T02:31:01Z",
        scheduled="2026-11-28T02:30:00Z",
    ),
    job(
        "backup-manual-1795867200",
        created="2026-11-28T12:00:00Z",
        start="2026-11-28T12:00:01Z",
        complete="2026-11-28T12:00:03Z",
        triggered_by="alice@example.com",
    ),
    job("backup-manual-1795867700", created="2026-11-28T12:08:20Z"),  # pending
]


def test_runs_newest_first_with_trigger_result_and_duration() -> None:
    lines = runs_table([run_of(j) for j in JOBS], NOON).splitlines()
    assert lines[0].split() == ["JOB", "TRIGGER", "RESULT", "SCHEDULED", "STARTED", "DURATION"]
    rows = [line.split(None, 1)[0] for line in lines[1:]]
    assert rows == ["backup-manual-1795867700", "backup-manual-1795867200", "backup-29401"]
    assert "Manual by alice@example.com" in lines[2]
    assert "Succeeded" in lines[2]
    assert lines[2].rstrip().endswith("2s")
    assert "Failed (BackoffLimitExceeded)" in lines[3]
    assert "2026-11-28T02:30:00Z" in lines[3]
    assert "Running" in lines[1]
    assert "100s ago" in lines[1]
    assert lines[1].endswith("<none>")


def test_events_like_kubectl_describe_with_counts() -> None:
    events = [
        event(
            "RunSucceeded",
            "Job backup-manual-1795867200 succeeded after 2s",
            first="2026-11-28T11:10:00Z",
            last="2026-11-28T12:00:03Z",
            count=5,
        ),
        event(
            "MissedSchedule",
            "no Job started for the run scheduled at 2026-11-28T02:30:00Z within 60s",
            first="2026-11-28T02:31:00Z",
            last="2026-11-28T02:31:00Z",
            type_="Warning",
        ),
    ]
    lines = events_table(events, NOON).splitlines()
    assert lines[0].split() == ["TYPE", "REASON", "AGE", "FROM", "MESSAGE"]
    assert lines[1].split()[:3] == ["Warning", "MissedSchedule", "9h"]  # oldest first
    assert "9m57s (x5 over 60m)" in lines[2]


def test_the_whole_report() -> None:
    t = task(
        spec={
            "owner": "team-storage",
            "runbookURL": "https://runbooks.example.com/backup",
            "expectedResult": "orders.sql.gz > 1 MB in s3://backups",
            "rollbackNote": "safe to re-run",
        },
        status={
            "conditions": with_conditions(FAILING),
            "nextScheduleTime": "2026-11-29T02:30:00Z",
            "lastSuccessfulTime": "2026-11-28T12:00:03Z",
            "succeeded": 4,
            "failed": 2,
            "consecutiveFailures": 0,
            "lastRun": {
                "job": "backup-manual-1795867200",
                "startTime": "2026-11-28T12:00:01Z",
                "completionTime": "2026-11-28T12:00:03Z",
                "result": "Succeeded",
                "trigger": "Manual",
                "triggeredBy": "alice@example.com",
            },
        },
    )
    text = render(t, [run_of(j) for j in JOBS], [], NOON, "backup")
    assert "State:           Failing\n" in text
    assert "Schedule:        30 2 * * * (Etc/UTC)\n" in text
    assert "Next run:        2026-11-29T02:30:00Z (in 14h)\n" in text
    assert "Last success:    2026-11-28T12:00:03Z (9m57s ago)\n" in text
    assert "Runbook:         https://runbooks.example.com/backup\n" in text
    assert "Expected result: orders.sql.gz > 1 MB in s3://backups\n" in text
    assert "Rollback note:   safe to re-run\n" in text
    assert "\nWhy:\n  Failing: " in text
    assert (
        "Last run:      Job backup-manual-1795867200: Succeeded, Manual by alice@example.com, "
        "finished 9m57s ago, took 2s\n"
    ) in text
    assert "Jobs of cronjob/backup (newest first):" in text
    assert "\nEvents:\n  <none>\n" in text
    assert "  Failing       True      ConsecutiveFailures   10m " in text
