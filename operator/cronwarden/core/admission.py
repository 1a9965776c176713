"""Runs whose pods are never admitted. Pure functions of their inputs, `now` included
(docs/detection.md#runs-whose-pods-are-never-admitted).

The API server can refuse a Job's pods while it accepted the Job: PodSecurity in
`enforce` mode (it only warns about a Job's or CronJob's template), a ResourceQuota,
a LimitRange, an admission webhook. The Job then exists and is active, the Job
controller retries with a back-off and posts a `FailedCreate` Warning Event on the
Job for each refused pod, and no pod exists. Under Forbid the run holds every later
slot back; under Allow each slot adds such a Job.

A run is *not admitted* while it is active, not suspended, the Job controller
counts no pod for it (status.active, ready, succeeded, failed and terminating all
0, uncountedTerminatedPods empty; a Job whose counts the controller has not written
yet is not judged), and either a FailedCreate Event names its Job (known at once),
or its Job was created more than missedRunGraceSeconds ago.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cronwarden.core.conditions import Blockage
from cronwarden.core.runs import Run

# The refusal quoted in the condition is cut to this many characters (an Event's
# message is at most 1024).
MAX_QUOTED = 1000
# Jobs named in the message when several runs have no pod.
NAMED = 3


@dataclass(frozen=True)
class Unadmitted:
    """An active run without a pod, and the API server's refusal if one was seen."""

    run: Run
    refusal: str | None


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def podless(run: Run) -> bool:
    """Active, not suspended, and the Job controller counts no pod for it."""
    return run.result == "Running" and run.pods == 0 and not run.suspended


def not_admitted(
    runs: list[Run], refusals: Mapping[str, str], now: datetime, grace: timedelta
) -> list[Unadmitted]:
    """The runs whose pods are refused (a FailedCreate Event names the Job) or that
    have had no pod for longer than `grace` since their Job was created; oldest first."""
    out = []
    for run in runs:
        if not podless(run):
            continue
        refusal = refusals.get(run.uid) if run.uid else None
        overdue = run.created is not None and now - run.created > grace
        if refusal is not None or overdue:
            out.append(Unadmitted(run, refusal))
    return sorted(out, key=lambda u: (u.run.since or now, u.run.job))


def deadlines(runs: list[Run], refusals: Mapping[str, str], grace: timedelta) -> list[datetime]:
    """When each podless run without a known refusal has been without a pod for the
    grace (the wake-up timer: the status changes then without any watch event)."""
    return [
        run.created + grace
        for run in runs
        if podless(run) and run.created is not None and not refusals.get(run.uid or "")
    ]


def quote(message: str) -> str:
    text = " ".join(message.split())
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 3] + "..."


def blockage(unadmitted: list[Unadmitted], now: datetime, grace: timedelta) -> Blockage:
    """Blocked, reason PodsNotAdmitted: names the newest such run, quoting the API
    server's refusal (the newest refused run's, when any run's refusal is known)."""
    refused = [u for u in unadmitted if u.refusal is not None]
    shown = (refused or unadmitted)[-1]
    run = shown.run
    slot = f" (the run for {stamp(run.scheduled)})" if run.scheduled is not None else ""
    if shown.refusal is not None:
        refusal = quote(shown.refusal)
        what = f"Job {run.job}{slot} has no pod: the API server refuses its pods: {refusal}"
    else:
        waited = int((now - run.created).total_seconds()) if run.created is not None else 0
        what = (
            f"Job {run.job}{slot} has had no pod for {waited}s since it was created, longer "
            f"than the {int(grace.total_seconds())}s grace, and no FailedCreate Event on it "
            "says why (kubectl describe job shows the Job controller's Events)"
        )
    others = [u.run.job for u in unadmitted if u is not shown]
    if others:
        names = ", ".join(others[-NAMED:]) + (", ..." if len(others) > NAMED else "")
        what += f"; {len(others)} more run(s) without a pod: {names}"
    return Blockage("PodsNotAdmitted", what)
