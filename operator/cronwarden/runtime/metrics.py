"""Prometheus metrics, defined in one place and derived from task status.

Per-task gauges and counters are derived from the latest status of each task, so
a restarted operator exports the same values as soon as it has reconciled each
task once, and a deleted task's series vanish with it. Timestamps rather than
ages; thresholds as metrics so one generic alert rule covers every task
(helm/cronwarden/files/prometheus-rules.yaml). The two histograms observe runs
as they are recorded.

Cost: a task's lines of text are rendered when its status changes, not at every
scrape, and a scrape only joins them; a reconcile that changes nothing (most of
them: a Job event that moves no field of the status) names the version of what it
rendered from, and the lines are kept. With 10,000 tasks that is the difference
between seconds and tens of milliseconds per scrape (`make bench`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

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
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Snapshot:
    spec: models.ScheduledTaskSpec
    status: ScheduledTaskStatus
    created: datetime | None
    oldest_active: datetime | None
    not_admitted: int = 0


# A family's samples for one task: (extra label values, value); none means absent.
Samples = Callable[[Snapshot], Iterable[tuple[tuple[str, ...], float]]]


@dataclass(frozen=True)
class Family:
    name: str
    kind: Literal["gauge", "counter"]
    doc: str
    samples: Samples
    extra: tuple[str, ...] = ()


def cap(value: str) -> str:
    return value if len(value) <= MAX_LABEL_LENGTH else value[: MAX_LABEL_LENGTH - 3] + "..."


def is_true(status: ScheduledTaskStatus, type_: str) -> float:
    return float(any(c.type == type_ and c.status == "True" for c in status.conditions))


def ready_reason(status: ScheduledTaskStatus) -> list[str]:
    return [c.reason for c in status.conditions if c.type == "Ready" and c.reason][:1]


def one(value: float | None) -> list[tuple[tuple[str, ...], float]]:
    return [((), value)] if value is not None else []


def timestamp(get: Callable[[Snapshot], datetime | None]) -> Samples:
    return lambda s: one(t.timestamp() if (t := get(s)) is not None else None)


def condition(type_: str) -> Samples:
    return lambda s: one(is_true(s.status, type_))


FAMILIES = [
    Family(
        "info",
        "gauge",
        "Always 1: the schedule, time zone, owner and runbook of a task, for joins.",
        lambda s: [
            (
                (
                    cap(s.spec.schedule or ""),
                    models.effective_time_zone(s.spec),
                    cap(s.spec.owner or ""),
                    cap(s.spec.runbook_url or ""),
                ),
                1.0,
            )
        ],
        ("schedule", "time_zone", "owner", "runbook_url"),
    ),
    Family(
        "created_timestamp_seconds",
        "gauge",
        "When the task was created (Unix time).",
        timestamp(lambda s: s.created),
    ),
    Family(
        "last_schedule_timestamp_seconds",
        "gauge",
        "When the CronJob last started a Job.",
        timestamp(lambda s: s.status.last_schedule_time),
    ),
    Family(
        "last_success_timestamp_seconds",
        "gauge",
        "When the last successful run finished.",
        timestamp(lambda s: s.status.last_successful_time),
    ),
    Family(
        "last_failure_timestamp_seconds",
        "gauge",
        "When the last failed run failed.",
        timestamp(lambda s: s.status.last_failure_time),
    ),
    Family(
        "next_schedule_timestamp_seconds",
        "gauge",
        "The next slot; absent while suspended.",
        timestamp(lambda s: s.status.next_schedule_time),
    ),
    Family(
        "last_missed_timestamp_seconds",
        "gauge",
        "The most recent missed slot.",
        timestamp(lambda s: s.status.last_missed_time),
    ),
    Family(
        "oldest_active_run_start_timestamp_seconds",
        "gauge",
        "Start of the longest-running active Job (its creation while it is pending); "
        "absent when none runs.",
        timestamp(lambda s: s.oldest_active),
    ),
    Family(
        "consecutive_failures",
        "gauge",
        "Failed runs since the last successful one.",
        lambda s: one(s.status.consecutive_failures),
    ),
    Family(
        "active_jobs", "gauge", "Jobs of the task running now.", lambda s: one(len(s.status.active))
    ),
    Family(
        "late",
        "gauge",
        "1 when a due run did not start within the grace period.",
        condition("Late"),
    ),
    Family(
        "blocked",
        "gauge",
        "1 when an earlier run keeps the task's slots from running, or a run's pods are refused.",
        condition("Blocked"),
    ),
    Family(
        "runs_not_admitted",
        "gauge",
        "Active runs whose Job has no pod because the API server refuses its pods "
        "(FailedCreate), or that had none for longer than the grace; 0 while suspended.",
        lambda s: one(s.not_admitted),
    ),
    Family(
        "failing", "gauge", "1 when consecutive failures reached the limit.", condition("Failing")
    ),
    Family(
        "stale", "gauge", "1 when no run succeeded within the success deadline.", condition("Stale")
    ),
    Family(
        "long_running",
        "gauge",
        "1 when a run exceeds its duration limit.",
        condition("LongRunning"),
    ),
    Family("suspended", "gauge", "1 when the task is suspended.", condition("Suspended")),
    Family("ready", "gauge", "1 when the CronJob is in sync with the spec.", condition("Ready")),
    Family(
        "ready_reason",
        "gauge",
        "Always 1: the reason of the Ready condition (Reconciled, UnknownTimeZone, ...), "
        "for the NotReady alert's text; the free-text message is not a label.",
        lambda s: [((cap(reason),), 1.0) for reason in ready_reason(s.status)],
        ("reason",),
    ),
    Family(
        "missed_run_grace_seconds",
        "gauge",
        "How late a run may start before it is missed.",
        lambda s: one(models.effective_grace_seconds(s.spec)),
    ),
    Family(
        "success_deadline_seconds",
        "gauge",
        "Longest acceptable time since the last success.",
        lambda s: one(s.spec.success_deadline_seconds),
    ),
    Family(
        "max_consecutive_failures",
        "gauge",
        "Failed runs in a row before the task is Failing.",
        lambda s: one(models.effective_max_consecutive_failures(s.spec)),
    ),
    Family(
        "max_run_duration_seconds",
        "gauge",
        "Longest acceptable duration of one run.",
        lambda s: one(s.spec.max_run_duration_seconds),
    ),
    Family(
        "blocked_after_skipped_runs",
        "gauge",
        "Schedule intervals one run may hold slots back (Forbid), or runs in a row Replace "
        "may stop, before the task is Blocked.",
        lambda s: one(models.effective_blocked_after_skipped_runs(s.spec)),
    ),
    Family(
        "runs_total",
        "counter",
        "Finished runs by result (unknown: the Job vanished before it was seen to finish).",
        lambda s: [
            (("succeeded",), s.status.succeeded),
            (("failed",), s.status.failed),
            (("unknown",), s.status.unknown),
        ],
        ("result",),
    ),
    Family(
        "missed_runs_total",
        "counter",
        "Scheduled runs that did not start.",
        lambda s: one(s.status.missed_runs),
    ),
    Family(
        "skipped_runs_total",
        "counter",
        "Runs that did not happen because of an earlier run: due slots held back while a "
        'run was active (reason="forbid"), runs stopped before they finished '
        '(reason="replace").',
        lambda s: [
            (("forbid",), s.status.skipped_runs.forbid),
            (("replace",), s.status.skipped_runs.replace),
        ],
        ("reason",),
    ),
]


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(namespace: str, name: str, snap: Snapshot) -> list[str]:
    """The task's exposition lines, one string per family (empty when absent)."""
    base = f'namespace="{escape(namespace)}",name="{escape(name)}"'
    out = []
    for family in FAMILIES:
        lines = []
        for extra, value in family.samples(snap):
            labels = base + "".join(
                f',{k}="{escape(v)}"' for k, v in zip(family.extra, extra, strict=True)
            )
            lines.append(f"{PREFIX}{family.name}{{{labels}}} {float(value)!r}\n")
        out.append("".join(lines))
    return out


HEADERS = [f"# HELP {PREFIX}{f.name} {f.doc}\n# TYPE {PREFIX}{f.name} {f.kind}\n" for f in FAMILIES]


class TaskMetrics:
    def __init__(self, shards: int = 1) -> None:
        self.shards = shards
        self.shard = 0  # the shard this replica holds while active
        self.registry = CollectorRegistry()
        # process_start_time_seconds and friends: a restarting operator shows as a
        # start time that changes (CronwardenOperatorRestarting).
        ProcessCollector(registry=self.registry)
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, str], list[str]] = {}
        # What each task's lines were rendered from, when the caller named it (update).
        self._rendered: dict[tuple[str, str], object] = {}
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
        self.shard_active = Gauge(
            "cronwarden_operator_shard_active",
            "Per shard: 1 while this replica holds it and reconciles its tasks, else 0. "
            "Every replica exports every shard, so a shard whose max is 0 has no holder.",
            ["shard"],
            registry=self.registry,
        )
        self.set_active(False)
        self.over_limit = Gauge(
            "cronwarden_namespace_tasks_over_limit",
            "ScheduledTasks beyond --max-tasks-per-namespace in a namespace (not reconciled).",
            ["namespace"],
            registry=self.registry,
        )

        self.api_requests = Counter(
            "cronwarden_api_requests",
            "Requests this operator sent to the API server (not counting kopf's watches of "
            "tasks and Events; each watch of CronJobs or Jobs opened, managed or monitored, "
            "counts as verb WATCH), by verb, resource and HTTP code (0: no answer).",
            ["verb", "resource", "code"],
            registry=self.registry,
        )

        self.corrections = Counter(
            "cronwarden_cache_corrections",
            "Differences between the operator's watch cache and a full listing that the "
            "audit corrected, by resource and kind (added, updated, deleted). At rest 0; a "
            "steady count means a watch is losing events.",
            ["resource", "kind"],
            registry=self.registry,
        )
        self.last_audit = Gauge(
            "cronwarden_cache_last_audit_timestamp_seconds",
            "When the audit last compared the watch cache with a full listing.",
            registry=self.registry,
        )
        self.events_dropped = Counter(
            "cronwarden_events_dropped",
            "Events not posted because the queue of pending Events was full (oldest first).",
            registry=self.registry,
        )

    def count_correction(self, resource: str, kind: str, n: int) -> None:
        self.corrections.labels(resource, kind).inc(n)

    def set_audited(self, when: float | None) -> None:
        if when is not None:
            self.last_audit.set(when)

    def count_dropped_events(self, n: int) -> None:
        self.events_dropped.inc(n)

    def count_request(self, verb: str, resource: str, code: int) -> None:
        self.api_requests.labels(verb, resource, str(code)).inc()

    def set_over_limit(self, namespace: str, count: int) -> None:
        if count:
            self.over_limit.labels(namespace).set(count)
        else:
            with contextlib.suppress(KeyError):
                self.over_limit.remove(namespace)

    def set_active(self, active: bool) -> None:
        self.active.set(1 if active else 0)
        for shard in range(self.shards):
            self.shard_active.labels(str(shard)).set(1 if active and shard == self.shard else 0)

    def clear(self) -> None:
        """Forget every task: a standby replica exports no cronwarden_task_* series."""
        with self._lock:
            self._lines.clear()
            self._rendered.clear()
        self.run_duration.clear()
        self.start_delay.clear()
        self.over_limit.clear()

    def update(self, task: ScheduledTask, outcome: Outcome, version: object = None) -> None:
        """Export the task's status. `version`, when given, names everything the lines
        depend on (the caller's promise: the same version, the same lines): when the
        lines held were rendered from it, they are not rendered again."""
        key = (task.namespace, task.name)
        if version is None or self._rendered.get(key) != version or key not in self._lines:
            snap = Snapshot(
                task.spec,
                outcome.status,
                parse_time(task.metadata.get("creationTimestamp")),
                outcome.oldest_active,
                outcome.not_admitted,
            )
            lines = render(*key, snap)
            with self._lock:
                self._lines[key] = lines
                if version is None:
                    self._rendered.pop(key, None)
                else:
                    self._rendered[key] = version
        for run in outcome.recorded:
            if run.start is not None and run.finished is not None:
                self.run_duration.labels(*key).observe((run.finished - run.start).total_seconds())
            if run.start is not None and run.scheduled is not None:
                delay = max((run.start - run.scheduled).total_seconds(), 0.0)
                self.start_delay.labels(*key).observe(delay)

    def update_unparsable(self, body: dict[str, Any]) -> None:
        """A task whose spec does not parse (InvalidSpec that admission could not catch)
        has no status to render: export what pages it, its info, ready 0 with reason
        InvalidSpec, and whether it is suspended, read leniently from the raw spec."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        raw = body.get("spec")
        spec: dict[str, Any] = raw if isinstance(raw, dict) else {}

        def text(field: str) -> str:
            value = spec.get(field)
            return cap(value) if isinstance(value, str) else ""

        base = f'namespace="{escape(key[0])}",name="{escape(key[1])}"'
        zone = text("timeZone") or models.DEFAULT_TIME_ZONE
        known = {
            "info": f'{base},schedule="{escape(text("schedule"))}",time_zone="{escape(zone)}",'
            f'owner="{escape(text("owner"))}",runbook_url="{escape(text("runbookURL"))}"}} 1.0',
            "ready": f"{base}}} 0.0",
            "ready_reason": f'{base},reason="InvalidSpec"}} 1.0',
            "suspended": f"{base}}} {1.0 if spec.get('suspend') is True else 0.0}",
        }
        lines = [
            f"{PREFIX}{f.name}{{{known[f.name]}\n" if f.name in known else "" for f in FAMILIES
        ]
        with self._lock:
            self._lines[key] = lines
            self._rendered.pop(key, None)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            known = self._lines.pop((namespace, name), None)
            self._rendered.pop((namespace, name), None)
        if known is not None:
            for histogram in (self.run_duration, self.start_delay):
                with contextlib.suppress(KeyError):
                    histogram.remove(namespace, name)

    def exposition(self) -> bytes:
        """The whole /metrics page: the registry's metrics, then the task families."""
        with self._lock:
            tasks = [self._lines[k] for k in sorted(self._lines)]
        parts = [generate_latest(self.registry).decode()]
        for i, header in enumerate(HEADERS):
            parts.append(header)
            parts.extend(lines[i] for lines in tasks)
        return "".join(parts).encode()


def serve(metrics: TaskMetrics, address: str, port: int) -> ThreadingHTTPServer:
    """Serve GET /metrics from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "only /metrics is served here")
                return
            body = metrics.exposition()
            try:
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the scraper gave up (its scrape timeout): not our error

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per scrape would drown the operator's log

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
