"""What Jobs say about runs: their slot, start, finish and result (pure, and
free of pydantic at run time: the kubectl plugin carries this module).
How runs are recorded once is core/recording.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cronwarden.api.models import LastRun

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# Set by `kubectl cronwarden trigger` on the Jobs it creates: the requesting user.
TRIGGERED_BY_ANNOTATION = "cronwarden.io/triggered-by"


@dataclass(frozen=True)
class Run:
    """What one Job says about one run."""

    job: str
    scheduled: datetime | None
    start: datetime | None
    finished: datetime | None
    result: Literal["Running", "Succeeded", "Failed"]
    reason: str | None = None
    message: str | None = None
    created: datetime | None = None
    triggered_by: str | None = None  # set for a manual run: who asked for it, if known
    uid: str = ""
    # Pods the Job controller counts for the Job (active, ready, terminating, finished,
    # and those it has not counted yet); None until it has written its counts.
    pods: int | None = None
    suspended: bool = False  # the Job's spec.suspend (its Suspended condition)

    @property
    def manual(self) -> bool:
        """Started by hand (kubectl create job --from, kubectl cronwarden trigger), not by
        the CronJob controller, which always sets the scheduled-timestamp annotation."""
        return self.scheduled is None

    @property
    def since(self) -> datetime | None:
        """When the run began: the Job's startTime, or, while the Job controller has
        not started it (pending), its creationTimestamp."""
        return self.start if self.start is not None else self.created

    @property
    def order(self) -> tuple[datetime, str]:
        assert self.finished is not None
        return (self.finished, self.job)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def pod_count(status: dict[str, Any]) -> int | None:
    """The pods the Job controller counts for a Job, or None while it has not written
    its counts (status.ready is always written from its first sync on)."""
    if "ready" not in status:
        return None
    counted = sum(
        int(status.get(field) or 0)
        for field in ("active", "terminating", "succeeded", "failed")  # ready is in active
    )
    uncounted = status.get("uncountedTerminatedPods") or {}
    return counted + len(uncounted.get("succeeded") or []) + len(uncounted.get("failed") or [])


def run_of(job: dict[str, Any]) -> Run:
    meta = job.get("metadata", {})
    status = job.get("status") or {}
    annotations = meta.get("annotations") or {}
    scheduled = parse_time(annotations.get(SCHEDULED_TIMESTAMP_ANNOTATION))
    start = parse_time(status.get("startTime"))
    created = parse_time(meta.get("creationTimestamp"))
    who = annotations.get(TRIGGERED_BY_ANNOTATION) if scheduled is None else None
    job_facts: dict[str, Any] = {
        "created": created,
        "triggered_by": who,
        "uid": str(meta.get("uid") or ""),
        "pods": pod_count(status),
    }
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            finished = parse_time(status.get("completionTime") or cond.get("lastTransitionTime"))
            return Run(meta["name"], scheduled, start, finished, "Succeeded", **job_facts)
        if cond.get("type") == "Failed":
            return Run(
                meta["name"],
                scheduled,
                start,
                parse_time(cond.get("lastTransitionTime")),
                "Failed",
                cond.get("reason"),
                cond.get("message"),
                **job_facts,
            )
        if cond.get("type") == "Suspended":
            job_facts["suspended"] = True
    return Run(meta["name"], scheduled, start, None, "Running", **job_facts)


def scheduled_from_name(job: str) -> datetime | None:
    """The slot of a Job the CronJob controller made: it names them
    <cronjob>-<scheduled time in minutes since the epoch>."""
    suffix = job.rsplit("-", 1)[-1]
    if not suffix.isdigit() or len(suffix) != 8:  # minutes: 8 digits from 2001 to 2160
        return None
    return datetime.fromtimestamp(int(suffix) * 60, UTC)


def describe(run: Run) -> str:
    took = ""
    if run.start is not None and run.finished is not None:
        took = f" after {int((run.finished - run.start).total_seconds())}s"
    if run.result == "Succeeded":
        return f"Job {run.job} succeeded{took}"
    detail = ": ".join(p for p in (run.reason, run.message) if p)
    return f"Job {run.job} failed{took}" + (f": {detail}" if detail else "")


def describe_last(run: LastRun) -> str:
    what = {"Succeeded": "succeeded", "Failed": "failed"}.get(run.result, "ended, result unknown")
    return f"Job {run.job} {what}" + (f" ({run.reason})" if run.reason else "")
