"""Task metrics: a valid exposition, bounded label values, nothing from a standby."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from cronwarden.core.status import compute_status
from cronwarden.runtime.metrics import MAX_LABEL_LENGTH, TaskMetrics
from tests.unit.factories import job, task

NOW = datetime(2026, 11, 28, 2, 31, 10, tzinfo=UTC)
DONE = job(
    "backup-1",
    scheduled="2026-11-28T02:30:00Z",
    start="2026-11-28T02:30:01Z",
    complete="2026-11-28T02:31:00Z",
)


def exposition(metrics: TaskMetrics) -> str:
    return metrics.exposition().decode()


def samples(metrics: TaskMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the page, parsed by Prometheus' own client parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition(metrics))
        for s in family.samples
    }


def test_the_page_parses_and_carries_the_status() -> None:
    metrics = TaskMetrics()
    cronjob = {
        "metadata": {"name": "backup"},
        "status": {"lastScheduleTime": "2026-11-28T02:30:00Z"},
    }
    t = task({"owner": 'team "a"\\ops', "successDeadlineSeconds": 3600})
    metrics.update(t, compute_status(t, cronjob, [DONE], NOW))
    got = samples(metrics)
    key = (("name", "backup"), ("namespace", "team-a"))
    assert got[("cronwarden_task_runs_total", (*key, ("result", "succeeded")))] == 1.0
    assert got[("cronwarden_task_runs_total", (*key, ("result", "unknown")))] == 0.0
    assert got[("cronwarden_task_missed_runs_total", key)] == 0.0
    assert got[("cronwarden_task_success_deadline_seconds", key)] == 3600.0
    assert (
        got[("cronwarden_task_last_success_timestamp_seconds", key)]
        == datetime(2026, 11, 28, 2, 31, tzinfo=UTC).timestamp()
    )
    assert ("cronwarden_task_max_run_duration_seconds", key) not in got  # unset: absent
    info = next(k for k in got if k[0] == "cronwarden_task_info")
    assert ("owner", 'team "a"\\ops') in info[1]  # escaped and read back
    assert got[("cronwarden_task_run_duration_seconds_count", key)] == 1.0


def test_user_controlled_label_values_are_capped() -> None:
    metrics = TaskMetrics()
    long_owner = "team-" + "x" * 200
    t = task({"owner": long_owner, "runbookURL": "https://example.com/" + "r" * 1000})
    metrics.update(t, compute_status(t, None, [], NOW))
    info = next(k for k in samples(metrics) if k[0] == "cronwarden_task_info")
    labels = dict(info[1])
    assert len(labels["owner"]) == MAX_LABEL_LENGTH
    assert labels["owner"].endswith("...")
    assert len(labels["runbook_url"]) == MAX_LABEL_LENGTH


def test_a_standby_exports_no_task_series() -> None:
    metrics = TaskMetrics()
    t = task()
    metrics.set_active(True)
    metrics.set_over_limit("team-a", 3)
    metrics.update(t, compute_status(t, None, [], NOW))
    assert any(k[0] == "cronwarden_task_info" for k in samples(metrics))
    metrics.clear()
    metrics.set_active(False)
    names = {k[0] for k in samples(metrics)}
    assert not {n for n in names if n.startswith(("cronwarden_task_", "cronwarden_namespace_"))}
    assert samples(metrics)[("cronwarden_operator_active", ())] == 0.0


def test_over_limit_series_disappears_at_zero() -> None:
    metrics = TaskMetrics()
    metrics.set_over_limit("team-a", 2)
    key = ("cronwarden_namespace_tasks_over_limit", (("namespace", "team-a"),))
    assert samples(metrics)[key] == 2.0
    metrics.set_over_limit("team-a", 0)
    assert key not in samples(metrics)


def test_a_deleted_task_leaves_no_series() -> None:
    metrics = TaskMetrics()
    t = task()
    metrics.update(t, compute_status(t, None, [DONE], NOW))
    metrics.forget("team-a", "backup")
    assert not [k for k in samples(metrics) if dict(k[1]).get("name") == "backup"]


TEN = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
KEY = (("name", "backup"), ("namespace", "team-a"))


def test_blocked_skipped_runs_and_threshold_are_exported_from_status() -> None:
    hung = job(
        "backup-29931000",
        scheduled="2026-11-28T10:00:00Z",
        created="2026-11-28T10:00:00Z",
        start="2026-11-28T10:00:01Z",
    )
    t = task({"schedule": "0 * * * *"}, creationTimestamp="2026-11-28T09:30:00Z")
    cronjob = {
        "metadata": {"name": "backup"},
        "status": {"lastScheduleTime": "2026-11-28T10:00:00Z"},
    }
    metrics = TaskMetrics()
    metrics.update(t, compute_status(t, cronjob, [hung], TEN + timedelta(hours=3, minutes=2)))
    got = samples(metrics)
    assert got[("cronwarden_task_blocked", KEY)] == 1
    assert got[("cronwarden_task_late", KEY)] == 0
    assert got[("cronwarden_task_skipped_runs_total", (*KEY, ("reason", "forbid")))] == 3
    assert got[("cronwarden_task_skipped_runs_total", (*KEY, ("reason", "replace")))] == 0
    assert got[("cronwarden_task_blocked_after_skipped_runs", KEY)] == 1
    assert (
        got[("cronwarden_task_oldest_active_run_start_timestamp_seconds", KEY)]
        == (TEN + timedelta(seconds=1)).timestamp()
    )


def test_a_pending_job_counts_as_active_since_its_creation() -> None:
    pending = job(
        "backup-29931000", scheduled="2026-11-28T10:00:00Z", created="2026-11-28T10:00:00Z"
    )
    t = task({"schedule": "0 * * * *"}, creationTimestamp="2026-11-28T09:30:00Z")
    metrics = TaskMetrics()
    metrics.update(t, compute_status(t, None, [pending], TEN + timedelta(minutes=5)))
    got = samples(metrics)
    assert got[("cronwarden_task_oldest_active_run_start_timestamp_seconds", KEY)] == (
        TEN.timestamp()
    )


def test_the_info_metric_names_the_effective_time_zone() -> None:
    metrics = TaskMetrics()
    t = task()
    metrics.update(t, compute_status(t, None, [], NOW))
    info = next(k for k in samples(metrics) if k[0] == "cronwarden_task_info")
    assert ("time_zone", "Etc/UTC") in info[1]


def test_the_ready_reason_is_a_label_and_the_message_is_not() -> None:
    """CronwardenTaskNotReady names the reason; the free-text message stays in status."""
    metrics = TaskMetrics()
    key = (("name", "backup"), ("namespace", "team-a"))
    t = task({"timeZone": "Mars/Olympus_Mons"})
    metrics.update(t, compute_status(t, None, [], NOW))
    got = samples(metrics)
    assert got[("cronwarden_task_ready", key)] == 0.0
    reasons = [k for k in got if k[0] == "cronwarden_task_ready_reason"]
    assert reasons == [("cronwarden_task_ready_reason", (*key, ("reason", "UnknownTimeZone")))]
    assert got[reasons[0]] == 1.0

    # Fixed: one series again, with the new reason (the old one is gone).
    fixed = task()
    cronjob = {"metadata": {"name": "backup"}, "status": {}}
    metrics.update(fixed, compute_status(fixed, cronjob, [], NOW))
    got = samples(metrics)
    assert got[("cronwarden_task_ready", key)] == 1.0
    assert [k for k in got if k[0] == "cronwarden_task_ready_reason"] == [
        ("cronwarden_task_ready_reason", (*key, ("reason", "Reconciled")))
    ]


def test_the_process_start_time_is_exported_for_the_restart_alert() -> None:
    got = samples(TaskMetrics())
    started = got[("process_start_time_seconds", ())]
    now = datetime.now(UTC).timestamp()
    assert now - 86400 < started <= now  # this test process, started today


def test_a_task_whose_spec_does_not_parse_still_exports_what_pages_it() -> None:
    """CronwardenTaskNotReady reads ready, ready_reason, suspended and info: a task that
    the models refuse (InvalidSpec beyond what admission checks) exports them too."""
    from prometheus_client.parser import text_string_to_metric_families

    metrics = TaskMetrics()
    body = {
        "metadata": {"namespace": "team-a", "name": "broken"},
        "spec": {"schedule": "30 2 * * *", "owner": "team-storage", "maxConsecutiveFailures": "x"},
    }
    metrics.update_unparsable(body)
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.labels.get("name") == "broken"
    }
    key = (("name", "broken"), ("namespace", "team-a"))
    assert got[("cronwarden_task_ready", key)] == 0.0
    assert got[("cronwarden_task_suspended", key)] == 0.0
    reason = tuple(sorted((*key, ("reason", "InvalidSpec"))))
    assert got[("cronwarden_task_ready_reason", reason)] == 1.0
    info = [k for k in got if k[0] == "cronwarden_task_info"]
    assert len(info) == 1
    assert ("owner", "team-storage") in info[0][1]
    assert ("time_zone", "Etc/UTC") in info[0][1]
    metrics.forget("team-a", "broken")
    assert b'name="broken"' not in metrics.exposition()


def test_every_replica_exports_every_shard_and_1_only_for_the_one_it_holds() -> None:
    def flags(metrics: TaskMetrics) -> dict[str, float]:
        return {
            dict(labels)["shard"]: value
            for (name, labels), value in samples(metrics).items()
            if name == "cronwarden_operator_shard_active"
        }

    assert flags(TaskMetrics()) == {"0": 0.0}  # one shard: what the single Lease means
    standby = TaskMetrics(shards=3)
    assert flags(standby) == {"0": 0.0, "1": 0.0, "2": 0.0}
    holder = TaskMetrics(shards=3)
    holder.shard = 1
    holder.set_active(True)
    assert flags(holder) == {"0": 0.0, "1": 1.0, "2": 0.0}
    holder.set_active(False)
    assert flags(holder) == {"0": 0.0, "1": 0.0, "2": 0.0}


def test_lines_are_rendered_again_only_for_a_new_version() -> None:
    """A reconcile that names the version its lines come from keeps the lines rendered
    from it; a new version, or none (a status written), renders them again; the
    histograms observe every recorded run either way."""
    metrics = TaskMetrics()
    t = task()
    idle = compute_status(t, None, [], NOW)
    done = compute_status(t, None, [DONE], NOW)
    key = (("name", "backup"), ("namespace", "team-a"))
    runs = ("cronwarden_task_runs_total", (*key, ("result", "succeeded")))
    count = ("cronwarden_task_run_duration_seconds_count", key)

    metrics.update(t, idle, ("100", None, 0))
    assert samples(metrics)[runs] == 0.0
    metrics.update(t, done, ("100", None, 0))  # the same version: the lines are kept
    assert samples(metrics)[runs] == 0.0
    assert samples(metrics)[count] == 1.0
    metrics.update(t, done, ("101", None, 0))
    assert samples(metrics)[runs] == 1.0
    metrics.update(t, idle, None)
    assert samples(metrics)[runs] == 0.0
    metrics.clear()
    metrics.update(t, done, ("101", None, 0))  # cleared: rendered again
    assert samples(metrics)[runs] == 1.0
