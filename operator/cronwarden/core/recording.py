"""How finished runs are recorded once, and what becomes of runs whose Jobs
vanished before they were seen to finish.

`status.watermark` says how far runs are recorded: the completion time of the
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

from datetime import datetime
from typing import Literal

from cronwarden.api.models import LastRun, Watermark
from cronwarden.core.runs import Run, scheduled_from_name


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
