"""What Jobs say about runs, and how finished runs are recorded once.

Run outcomes are recorded from Jobs before history limits or TTLs delete them.
`status.watermark` says how far they are recorded: the completion time of the
latest recorded run, and every Job recorded that finished within that second
(Kubernetes times have whole seconds, so two runs can share one). A Job that
finished later, or in that second but is not named, is new and counted once.
Because the watermark lives in status, a restarted operator recomputes the same
result from what is in the cluster. Older objects without a watermark fall back
to `status.lastRun`.

A Job that was active at the last reconcile and is gone without having been seen
to finish (deleted by hand, or while the operator was not watching) has *vanished*:
its run is taken from the CronJob's lastSuccessfulTime where that accounts for
it, and is otherwise recorded as Unknown; never dropped, never counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cronwarden.api.models import LastRun, Watermark

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


def run_of(job: dict[str, Any]) -> Run:
    meta = job.get("metadata", {})
    status = job.get("status") or {}
    annotations = meta.get("annotations") or {}
    scheduled = parse_time(annotations.get(SCHEDULED_TIMESTAMP_ANNOTATION))
    start = parse_time(status.get("startTime"))
    created = parse_time(meta.get("creationTimestamp"))
    who = annotations.get(TRIGGERED_BY_ANNOTATION) if scheduled is None else None
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            finished = parse_time(status.get("completionTime") or cond.get("lastTransitionTime"))
            return Run(
                meta["name"],
                scheduled,
                start,
                finished,
                "Succeeded",
                created=created,
                triggered_by=who,
            )
        if cond.get("type") == "Failed":
            return Run(
                meta["name"],
                scheduled,
                start,
                parse_time(cond.get("lastTransitionTime")),
                "Failed",
                cond.get("reason"),
                cond.get("message"),
                created,
                who,
            )
    return Run(meta["name"], scheduled, start, None, "Running", created=created, triggered_by=who)


def watermark_of(previous: Watermark | None, last_run: LastRun | None) -> Watermark | None:
    """The recorded watermark, or one read from lastRun for status written before it."""
    if previous is not None:
        return previous
    if last_run is not None and last_run.completion_time is not None:
        return Watermark(completion_time=last_run.completion_time, jobs=[last_run.job])
    return None


def covered(run: Run, mark: Watermark | None) -> bool:
    """Whether a finished run is already recorded."""
    if mark is None or run.finished is None:
        return False
    return run.finished < mark.completion_time or (
        run.finished == mark.completion_time and run.job in mark.jobs
    )


def new_runs(mark: Watermark | None, runs: list[Run]) -> list[Run]:
    """Finished runs not yet recorded, oldest first."""
    finished = sorted((r for r in runs if r.finished is not None), key=lambda r: r.order)
    return [r for r in finished if not covered(r, mark)]


def advance(mark: Watermark | None, recorded: list[Run]) -> Watermark | None:
    """The watermark once `recorded` (oldest first, all new) are counted."""
    if not recorded:
        return mark
    last = recorded[-1].finished
    assert last is not None
    same = [r.job for r in recorded if r.finished == last]
    if mark is not None and mark.completion_time == last:
        same = [*mark.jobs, *same]
    return Watermark(completion_time=last, jobs=sorted(set(same)))


def scheduled_from_name(job: str) -> datetime | None:
    """The slot of a Job the CronJob controller made: it names them
    <cronjob>-<scheduled time in minutes since the epoch>."""
    suffix = job.rsplit("-", 1)[-1]
    if not suffix.isdigit() or len(suffix) != 8:  # minutes: 8 digits from 2001 to 2160
        return None
    return datetime.fromtimestamp(int(suffix) * 60, UTC)


def vanished(
    gone: list[str], mark: Watermark | None, cron_success: datetime | None
) -> list[LastRun]:
    """Runs whose Jobs were active and disappeared unseen. The CronJob's
    lastSuccessfulTime, when later than every recorded run and not before the run's
    slot, accounts for one of them (the newest); the rest are Unknown."""
    out: list[LastRun] = []
    resolvable = cron_success is not None and (mark is None or cron_success > mark.completion_time)
    for job in sorted(gone, key=lambda j: (scheduled_from_name(j) is None, j), reverse=True):
        scheduled = scheduled_from_name(job)
        trigger: Literal["Scheduled", "Manual"] = "Scheduled" if scheduled else "Manual"
        if (
            resolvable
            and cron_success is not None
            and (scheduled is None or cron_success >= scheduled)
        ):
            resolvable = False
            out.append(
                LastRun(
                    job=job,
                    scheduled_time=scheduled,
                    completion_time=cron_success,
                    result="Succeeded",
                    reason="CronJobLastSuccess",
                    trigger=trigger,
                )
            )
        else:
            out.append(
                LastRun(
                    job=job,
                    scheduled_time=scheduled,
                    result="Unknown",
                    reason="JobVanished",
                    trigger=trigger,
                )
            )
    return list(reversed(out))


def describe(run: Run) -> str:
    took = ""
    if run.start is not None and run.finished is not None:
        took = f" after {int((run.finished - run.start).total_seconds())}s"
    if run.result == "Succeeded":
        return f"Job {run.job} succeeded{took}"
    detail = ": ".join(p for p in (run.reason, run.message) if p)
    return f"Job {run.job} failed{took}" + (f": {detail}" if detail else "")


def describe_vanished(run: LastRun) -> str:
    if run.result == "Succeeded":
        return (
            f"Job {run.job} disappeared before cronwarden saw it finish; the CronJob's "
            f"lastSuccessfulTime ({run.completion_time:%Y-%m-%dT%H:%M:%SZ}) records its success"
        )
    return (
        f"Job {run.job} disappeared before cronwarden saw it finish (deleted by hand, or "
        "while cronwarden was not watching) and nothing else records its result: counted "
        "as unknown. Its pods' logs may still tell (kubectl logs -l job-name=" + run.job + ")"
    )


def describe_last(run: LastRun) -> str:
    what = {"Succeeded": "succeeded", "Failed": "failed"}.get(run.result, "ended, result unknown")
    return f"Job {run.job} {what}" + (f" ({run.reason})" if run.reason else "")
