"""Scenario `hand-edits`: people editing what the operator owns, at random. Each
repetition is one burst of edits at random moments over about 20 s: managed-by
labels stripped from CronJobs, CronJobs edited by hand (their schedule or their
suspend flag changed), CronJobs deleted, and Jobs deleted (running or finished).
The operator must put every CronJob back (label, schedule, suspend; recreated
when deleted) without a second CronJob for any task, and record the runs whose
Jobs were deleted as finished or unknown, never lost, never twice; and no false
or missed alert may follow."""

from __future__ import annotations

import time
from collections.abc import Callable

from kubernetes import client

from harness.chaosrun import ChaosRun
from harness.freeze import deletable, delete
from harness.setup import log

MANAGED_BY = "app.kubernetes.io/managed-by"


def strip_label(run: ChaosRun, name: str) -> str:
    patch = {"metadata": {"labels": {MANAGED_BY: None}}}
    client.BatchV1Api(run.api).patch_namespaced_cron_job(name, run.ns, patch)
    return f"stripped {MANAGED_BY} from CronJob {name}"


def edit_schedule(run: ChaosRun, name: str) -> str:
    schedule = run.rng.choice(["*/7 * * * *", "0 0 1 1 *", "30 * * * *"])
    client.BatchV1Api(run.api).patch_namespaced_cron_job(
        name, run.ns, {"spec": {"schedule": schedule}}
    )
    return f"set CronJob {name}'s schedule to {schedule!r}"


def suspend(run: ChaosRun, name: str) -> str:
    client.BatchV1Api(run.api).patch_namespaced_cron_job(name, run.ns, {"spec": {"suspend": True}})
    return f"suspended CronJob {name}"


def delete_cronjob(run: ChaosRun, name: str) -> str:
    delete(run, "cronjob", [name])
    return f"deleted CronJob {name}"


EDITS: dict[str, Callable[[ChaosRun, str], str]] = {
    "strip-label": strip_label,
    "edit-schedule": edit_schedule,
    "suspend": suspend,
    "delete-cronjob": delete_cronjob,
}


def hand_edits(run: ChaosRun, times: int) -> None:
    count = 6 if run.small else 20
    for i in range(times):
        run.wait_until(run.random_moment())
        with run.fault(f"edits-{i + 1}"):
            jobs, cronjobs, _ = deletable(run)
            # Every kind at least once, the rest at random; one edit per CronJob.
            kinds = [*EDITS, "delete-job"]
            kinds += [run.rng.choice(kinds) for _ in range(count - len(kinds))]
            targets = run.rng.sample(cronjobs, min(len(cronjobs), len(kinds)))
            done: list[str] = []
            start = time.time()
            offsets = sorted(run.rng.uniform(0, 20) for _ in kinds)
            for kind, target, offset in zip(kinds, targets, offsets, strict=False):
                run.wait_until(start + offset)
                try:
                    if kind == "delete-job":
                        victim = run.rng.choice(jobs) if jobs else None
                        if victim is None:
                            continue
                        jobs.remove(victim)
                        delete(run, "job", [victim])
                        done.append(f"deleted Job {victim}")
                    else:
                        done.append(EDITS[kind](run, target))
                except client.ApiException as err:
                    done.append(f"{kind} {target}: {err.status} {err.reason}")
            for line in done:
                log(f"hand edit: {line}")
            run.notes += done
        run.settle()
