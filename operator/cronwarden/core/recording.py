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

A Job can also be created, finish and be deleted while the operator is not
watching, never seen at all. The CronJob's lastSuccessfulTime, later than
everything the watermark covered before this reconcile, and in a second in which
no Job in view succeeded, still proves one success (a later run recorded in the
same reconcile does not account for it): it is counted once,
and the watermark moves to it with `unseenSuccess`, so that no later reconcile or
restart counts it again, and a Job that does show up later having succeeded in
that second (a watch that lagged behind the CronJob's) is that run, not another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from cronwarden.api.models import LastRun, Watermark
from cronwarden.core.runs import Run, scheduled_from_name


def watermark_of(previous: Watermark | None, last_run: LastRun | None) -> Watermark | None:
    """The recorded watermark, or one read from lastRun for status written before it
    (or before a vanished run's success from the CronJob moved the watermark too)."""
    done = last_run.completion_time if last_run is not None else None
    if last_run is None or done is None:
        return previous
    if previous is None or done > previous.completion_time:
        return Watermark(completion_time=done, jobs=[last_run.job])
    return previous


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


def claim(mark: Watermark | None, fresh: list[Run]) -> tuple[Run | None, list[Run]]:
    """Of the runs not yet recorded, the one that the watermark's unseen success
    already counted (the first to have succeeded within its second), and the rest."""
    if mark is None or not mark.unseen_success:
        return None, fresh
    for i, run in enumerate(fresh):
        if run.result == "Succeeded" and run.finished == mark.completion_time:
            return run, fresh[:i] + fresh[i + 1 :]
    return None, fresh


def named(mark: Watermark, run: Run) -> Watermark:
    """The watermark once its unseen success is known to be `run`."""
    return Watermark(completion_time=mark.completion_time, jobs=sorted({*mark.jobs, run.job}))


def evidence(
    mark: Watermark | None, cron_success: datetime | None, runs: list[Run]
) -> datetime | None:
    """The CronJob's lastSuccessfulTime when it proves a success that no Job in view
    accounts for: later than the watermark *before* this reconcile (runs recorded in
    this one may be later still: the CronJob's status can lag behind the Jobs), and
    no Job in view succeeded in that second. None otherwise."""
    if cron_success is None or (mark is not None and cron_success <= mark.completion_time):
        return None
    if any(r.result == "Succeeded" and r.finished == cron_success for r in runs):
        return None
    return cron_success


def unseen_success(proof: datetime | None, runs: list[Run], not_before: datetime) -> bool:
    """Whether the CronJob's evidence (above) is a run never seen at all: later than
    `not_before` (the task's creation: a referenced CronJob's older successes are not
    the task's). Not while a Job that could be that run is still running in this view,
    which may lag behind the CronJob's status: its finish will be recorded instead."""
    if proof is None or proof <= not_before:
        return False
    return not any(
        r.result == "Running" and (r.created is None or r.created <= proof) for r in runs
    )


def past(mark: Watermark | None, at: datetime, job: str | None = None) -> Watermark:
    """The watermark once a run that finished at `at` is counted as well: the run of
    vanished Job `job`, or (None) a success never seen. A watermark already past that
    second covers it as it is."""
    if mark is not None and mark.completion_time > at:
        return mark
    if mark is not None and mark.completion_time == at:
        jobs = sorted({*mark.jobs, job}) if job else mark.jobs
        return Watermark(
            completion_time=at, jobs=jobs, unseen_success=mark.unseen_success or job is None
        )
    return Watermark(completion_time=at, jobs=[job] if job else [], unseen_success=job is None)


def advance(mark: Watermark | None, recorded: list[Run]) -> Watermark | None:
    """The watermark once `recorded` (oldest first, all new) are counted."""
    if not recorded:
        return mark
    last = recorded[-1].finished
    assert last is not None
    same = [r.job for r in recorded if r.finished == last]
    if mark is not None and mark.completion_time == last:
        same = [*mark.jobs, *same]
        if mark.unseen_success:  # still unnamed: no run in `recorded` succeeded then
            return Watermark(completion_time=last, jobs=sorted(set(same)), unseen_success=True)
    return Watermark(completion_time=last, jobs=sorted(set(same)))


def vanished(gone: list[str], proof: datetime | None) -> list[LastRun]:
    """Runs whose Jobs were active and disappeared unseen. The CronJob's evidence
    (above), when not before the run's slot, accounts for one of them (the newest);
    the rest are Unknown."""
    out: list[LastRun] = []
    for job in sorted(gone, key=lambda j: (scheduled_from_name(j) is None, j), reverse=True):
        scheduled = scheduled_from_name(job)
        trigger: Literal["Scheduled", "Manual"] = "Scheduled" if scheduled else "Manual"
        if proof is not None and (scheduled is None or proof >= scheduled):
            out.append(
                LastRun(
                    job=job,
                    scheduled_time=scheduled,
                    completion_time=proof,
                    result="Succeeded",
                    reason="CronJobLastSuccess",
                    trigger=trigger,
                )
            )
            proof = None
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


def describe_unseen(cron_success: datetime) -> str:
    return (
        "a run that cronwarden did not see (its Job was created and deleted while it was "
        f"not watching) succeeded at {cron_success:%Y-%m-%dT%H:%M:%SZ}, as the CronJob's "
        "lastSuccessfulTime records: counted once"
    )


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
