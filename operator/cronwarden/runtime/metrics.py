"""Prometheus metrics, defined in one place and derived from task status.

Gauges and counters are produced at scrape time from the latest status of each
task (a custom collector), so a restarted operator exports the same values as
soon as it has reconciled each task once, and a deleted task's series vanish
with it. Timestamps rather than ages; thresholds as metrics so one generic
alert rule covers every task (helm/cronwarden/files/prometheus-rules.yaml).
The two histograms observe runs as they are recorded.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cronwarden.api import models
from cronwarden.api.models import ScheduledTask, ScheduledTaskStatus
from cronwarden.core.runs import parse_time
from cronwarden.core.status import Outcome

LABELS = ["namespace", "name"]
# User-controlled label values (owner, runbook URL, schedule) are cut to this length,
# so that a tenant cannot make every series of every task kilobytes long.
MAX_LABEL_LENGTH = 128
PREFIX = "cronwarden_task_"
# Run durations from seconds to a day; start delays from instant to an hour.
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
DELAY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class Snapshot:
    spec: models.ScheduledTaskSpec
    status: ScheduledTaskStatus
    created: datetime | None
    oldest_active: datetime | None


def cap(value: str) -> str:
    return value if len(value) <= MAX_LABEL_LENGTH else value[: MAX_LABEL_LENGTH - 3] + "..."


def ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def is_true(status: ScheduledTaskStatus, type_: str) -> float:
    return float(any(c.type == type_ and c.status == "True" for c in status.conditions))


class TaskMetrics(Collector):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._lock = threading.Lock()
        self._tasks: dict[tuple[str, str], Snapshot] = {}
        self.run_duration = Histogram(
            PREFIX + "run_duration_seconds",
            "How long finished runs took, from Job start to completion or failure.",
            LABELS,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.start_delay = Histogram(
            PREFIX + "start_delay_seconds",
            "How long after its scheduled time each run's Job started.",
            LABELS,
            buckets=DELAY_BUCKETS,
            registry=self.registry,
        )
        self.active = Gauge(
            "cronwarden_operator_active",
            "1 while this replica is the active one (it reconciles and exports task series).",
            registry=self.registry,
        )
        self.over_limit = Gauge(
            "cronwarden_namespace_tasks_over_limit",
            "ScheduledTasks beyond --max-tasks-per-namespace in a namespace (not reconciled).",
            ["namespace"],
            registry=self.registry,
        )
        self.registry.register(self)

    def set_over_limit(self, namespace: str, count: int) -> None:
        if count:
            self.over_limit.labels(namespace).set(count)
        else:
            with contextlib.suppress(KeyError):
                self.over_limit.remove(namespace)

    def set_active(self, active: bool) -> None:
        self.active.set(1 if active else 0)

    def clear(self) -> None:
        """Forget every task: a standby replica exports no cronwarden_task_* series."""
        with self._lock:
            self._tasks.clear()
        self.run_duration.clear()
        self.start_delay.clear()
        self.over_limit.clear()

    def update(self, task: ScheduledTask, outcome: Outcome) -> None:
        key = (task.namespace, task.name)
        with self._lock:
            self._tasks[key] = Snapshot(
                task.spec,
                outcome.status,
                parse_time(task.metadata.get("creationTimestamp")),
                outcome.oldest_active,
            )
        for run in outcome.recorded:
            if run.start is not None and run.finished is not None:
                self.run_duration.labels(*key).observe((run.finished - run.start).total_seconds())
            if run.start is not None and run.scheduled is not None:
                delay = max((run.start - run.scheduled).total_seconds(), 0.0)
                self.start_delay.labels(*key).observe(delay)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            known = self._tasks.pop((namespace, name), None)
        if known is not None:
            for histogram in (self.run_duration, self.start_delay):
                with contextlib.suppress(KeyError):
                    histogram.remove(namespace, name)

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            tasks = dict(self._tasks)

        def gauge(name: str, doc: str, extra: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, labels=LABELS + (extra or []))

        info = gauge(
            "info",
            "Always 1: the schedule, time zone, owner and runbook of a task, for joins.",
            ["schedule", "time_zone", "owner", "runbook_url"],
        )
        times = {
            "created_timestamp_seconds": gauge(
                "created_timestamp_seconds", "When the task was created (Unix time)."
            ),
            "last_schedule_timestamp_seconds": gauge(
                "last_schedule_timestamp_seconds", "When the CronJob last started a Job."
            ),
            "last_success_timestamp_seconds": gauge(
                "last_success_timestamp_seconds", "When the last successful run finished."
            ),
            "last_failure_timestamp_seconds": gauge(
                "last_failure_timestamp_seconds", "When the last failed run failed."
            ),
            "next_schedule_timestamp_seconds": gauge(
                "next_schedule_timestamp_seconds", "The next slot; absent while suspended."
            ),
            "last_missed_timestamp_seconds": gauge(
                "last_missed_timestamp_seconds", "The most recent missed slot."
            ),
        }
        oldest_active = gauge(
            "oldest_active_run_start_timestamp_seconds",
            "Start of the longest-running active Job; absent when none runs.",
        )
        values = {
            "consecutive_failures": gauge(
                "consecutive_failures", "Failed runs since the last successful one."
            ),
            "active_jobs": gauge("active_jobs", "Jobs of the task running now."),
            "late": gauge("late", "1 when a due run did not start within the grace period."),
            "failing": gauge("failing", "1 when consecutive failures reached the limit."),
            "stale": gauge("stale", "1 when no run succeeded within the success deadline."),
            "long_running": gauge("long_running", "1 when a run exceeds its duration limit."),
            "suspended": gauge("suspended", "1 when the task is suspended."),
            "ready": gauge("ready", "1 when the CronJob is in sync with the spec."),
        }
        thresholds = {
            "missed_run_grace_seconds": gauge(
                "missed_run_grace_seconds", "How late a run may start before it is missed."
            ),
            "success_deadline_seconds": gauge(
                "success_deadline_seconds", "Longest acceptable time since the last success."
            ),
            "max_consecutive_failures": gauge(
                "max_consecutive_failures", "Failed runs in a row before the task is Failing."
            ),
            "max_run_duration_seconds": gauge(
                "max_run_duration_seconds", "Longest acceptable duration of one run."
            ),
        }
        runs = CounterMetricFamily(
            PREFIX + "runs", "Finished runs by result.", labels=[*LABELS, "result"]
        )
        missed = CounterMetricFamily(
            PREFIX + "missed_runs", "Scheduled runs that did not start.", labels=LABELS
        )

        for (namespace, name), snap in sorted(tasks.items()):
            key = [namespace, name]
            spec, st = snap.spec, snap.status
            info.add_metric(
                [
                    *key,
                    cap(spec.schedule),
                    spec.time_zone or "",
                    cap(spec.owner or ""),
                    cap(spec.runbook_url or ""),
                ],
                1,
            )
            for metric, value in (
                ("created_timestamp_seconds", ts(snap.created)),
                ("last_schedule_timestamp_seconds", ts(st.last_schedule_time)),
                ("last_success_timestamp_seconds", ts(st.last_successful_time)),
                ("last_failure_timestamp_seconds", ts(st.last_failure_time)),
                ("next_schedule_timestamp_seconds", ts(st.next_schedule_time)),
                ("last_missed_timestamp_seconds", ts(st.last_missed_time)),
            ):
                if value is not None:
                    times[metric].add_metric(key, value)
            if snap.oldest_active is not None:
                oldest_active.add_metric(key, snap.oldest_active.timestamp())
            values["consecutive_failures"].add_metric(key, st.consecutive_failures)
            values["active_jobs"].add_metric(key, len(st.active))
            for metric, condition in (
                ("late", "Late"),
                ("failing", "Failing"),
                ("stale", "Stale"),
                ("long_running", "LongRunning"),
                ("suspended", "Suspended"),
                ("ready", "Ready"),
            ):
                values[metric].add_metric(key, is_true(st, condition))
            thresholds["missed_run_grace_seconds"].add_metric(
                key, models.effective_grace_seconds(spec)
            )
            if spec.success_deadline_seconds is not None:
                thresholds["success_deadline_seconds"].add_metric(
                    key, spec.success_deadline_seconds
                )
            thresholds["max_consecutive_failures"].add_metric(
                key, models.effective_max_consecutive_failures(spec)
            )
            if spec.max_run_duration_seconds is not None:
                thresholds["max_run_duration_seconds"].add_metric(
                    key, spec.max_run_duration_seconds
                )
            runs.add_metric([*key, "succeeded"], st.succeeded)
            runs.add_metric([*key, "failed"], st.failed)
            missed.add_metric(key, st.missed_runs)

        yield info
        yield from times.values()
        yield oldest_active
        yield from values.values()
        yield from thresholds.values()
        yield runs
        yield missed
