"""Task metrics: bounded label values, and nothing exported by a standby."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import generate_latest

from cronwarden.core.status import compute_status
from cronwarden.runtime.metrics import MAX_LABEL_LENGTH, TaskMetrics
from tests.unit.factories import task

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def exposition(metrics: TaskMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_user_controlled_label_values_are_capped() -> None:
    metrics = TaskMetrics()
    long_owner = "team-" + "x" * 200
    t = task({"owner": long_owner, "runbookURL": "https://example.com/" + "r" * 1000})
    metrics.update(t, compute_status(t, None, [], NOW))
    text = exposition(metrics)
    info = next(line for line in text.splitlines() if line.startswith("cronwarden_task_info{"))
    assert long_owner not in info
    owner = info.split('owner="')[1].split('"')[0]
    assert len(owner) == MAX_LABEL_LENGTH
    assert owner.endswith("...")


def test_a_standby_exports_no_task_series() -> None:
    metrics = TaskMetrics()
    t = task()
    metrics.set_active(True)
    metrics.set_over_limit("team-a", 3)
    metrics.update(t, compute_status(t, None, [], NOW))
    assert "cronwarden_task_info{" in exposition(metrics)
    metrics.clear()
    metrics.set_active(False)
    text = exposition(metrics)
    assert not [
        line
        for line in text.splitlines()
        if line.startswith(("cronwarden_task_", "cronwarden_namespace_"))
    ]
    assert "cronwarden_operator_active 0.0" in text


def test_over_limit_series_disappears_at_zero() -> None:
    metrics = TaskMetrics()
    metrics.set_over_limit("team-a", 2)
    assert 'cronwarden_namespace_tasks_over_limit{namespace="team-a"} 2.0' in exposition(metrics)
    metrics.set_over_limit("team-a", 0)
    assert "cronwarden_namespace_tasks_over_limit{" not in exposition(metrics)
