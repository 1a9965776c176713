"""Monitor mode: the spec a referenced CronJob is judged by."""

from __future__ import annotations

from datetime import UTC, datetime

from cronwarden.api.models import ScheduledTask
from cronwarden.core.monitor import effective_spec
from cronwarden.core.status import compute_status
from tests.unit.factories import job, task_body

NOW = datetime(2026, 11, 28, 2, 31, 10, tzinfo=UTC)
VENDOR = {
    "metadata": {"name": "vendor-backup", "uid": "cj-1"},
    "spec": {
        "schedule": "30 2 * * *",
        "timeZone": "Europe/Berlin",
        "suspend": False,
        "concurrencyPolicy": "Allow",
        "startingDeadlineSeconds": 100,
        "jobTemplate": {"spec": {}},
    },
    "status": {"lastScheduleTime": "2026-11-28T01:30:00Z"},
}


def monitoring() -> ScheduledTask:
    body = task_body()
    del body["spec"]["schedule"], body["spec"]["jobTemplate"]
    body["spec"].update(cronJobRef={"name": "vendor-backup"}, missedRunGraceSeconds=30)
    return ScheduledTask.model_validate(body)


def test_schedule_zone_and_policies_come_from_the_cronjob() -> None:
    spec = effective_spec(monitoring().spec, VENDOR)
    assert (spec.schedule, spec.time_zone, spec.concurrency_policy) == (
        "30 2 * * *",
        "Europe/Berlin",
        "Allow",
    )
    assert spec.starting_deadline_seconds == 100
    assert spec.missed_run_grace_seconds == 30  # the monitoring contract stays the task's


def test_a_monitored_task_gets_the_same_status_as_a_managed_one() -> None:
    t = monitoring()
    judged = t.model_copy(update={"spec": effective_spec(t.spec, VENDOR)})
    done = job(
        "vendor-backup-1",
        scheduled="2026-11-28T01:30:00Z",
        start="2026-11-28T01:30:01Z",
        complete="2026-11-28T01:31:00Z",
    )
    status = compute_status(judged, VENDOR, [done], NOW).status
    assert status.succeeded == 1
    assert status.next_schedule_time == datetime(2026, 11, 29, 1, 30, tzinfo=UTC)  # Berlin
    assert next(c for c in status.conditions if c.type == "Ready").status == "True"


def test_without_the_cronjob_there_is_no_schedule_to_judge() -> None:
    status = compute_status(monitoring(), None, [], NOW).status
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "InvalidSpec")
