"""Ownership on the real API server: cronwarden never adopts a CronJob, counts only
Jobs that its CronJob controls (by uid), and compares in the stored form."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.support import Cluster, Operator, condition_of, wait_for
from tests.e2e.test_scheduledtask import nightly

# January 1st: no scheduled run starts during a test; runs are started by hand.
NEVER_SOON = "0 0 1 1 *"


def quiet(name: str, **spec: Any) -> dict[str, Any]:
    return nightly(name, schedule=NEVER_SOON, **spec)


def ready_reason(task: dict[str, Any]) -> str | None:
    cond = condition_of(task, "Ready")
    return cond["reason"] if cond else None


def settle(operator: Operator, cluster: Cluster, name: str, rounds: int = 2) -> None:
    """Wait until the operator has reconciled the task `rounds` more times (the tests'
    resync is 5 s), so that what it saw by now is in the status."""
    start = operator.reconciles(cluster.namespace, name)
    wait_for(
        lambda: operator.reconciles(cluster.namespace, name) >= start + rounds,
        timeout=30,
        what=f"{rounds} more reconciles of {name}",
    )


def job_done(cluster: Cluster, name: str) -> bool:
    job = cluster.get("job", name)
    return job is not None and any(
        c["type"] == "Complete" and c["status"] == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def test_existing_cronjob_is_never_taken_over(cluster: Cluster) -> None:
    ns = cluster.namespace
    cluster.kubectl(
        "-n", ns, "create", "cronjob", "victim", "--image=busybox", f"--schedule={NEVER_SOON}"
    )
    before = cluster.get("cronjob", "victim")
    assert before is not None
    cluster.apply(quiet("victim"))

    task = cluster.wait_task(
        "victim",
        lambda t: ready_reason(t) == "CronJobNotOwned",
        timeout=30,
        what="Ready=False CronJobNotOwned",
    )
    message = condition_of(task, "Ready")["message"]  # type: ignore[index]
    assert "kubectl-create" in message, message
    assert "CronJobNotOwned" in cluster.event_reasons("victim")
    after = cluster.get("cronjob", "victim")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert not after["metadata"].get("ownerReferences")
    assert len(after["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]) == 1

    # When the other CronJob goes away, the task creates its own.
    cluster.kubectl("-n", ns, "delete", "cronjob", "victim")
    cluster.wait_ready("victim")
    owned = cluster.get("cronjob", "victim")
    assert owned is not None
    refs = owned["metadata"]["ownerReferences"]
    assert [r["uid"] for r in refs] == [task["metadata"]["uid"]]


def test_only_jobs_of_the_tasks_cronjob_count(cluster: Cluster, operator: Operator) -> None:
    """A Job made by hand with the task's labels is not a run; a Job created with
    `kubectl create job --from=cronjob/NAME` is (kubectl makes the CronJob its owner)."""
    ns = cluster.namespace
    cluster.apply(quiet("audited"))
    cluster.wait_ready("audited")
    cronjob = cluster.get("cronjob", "audited")
    assert cronjob is not None

    template = cronjob["spec"]["jobTemplate"]
    forged = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "forged", "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }
    cluster.apply(forged)
    wait_for(lambda: job_done(cluster, "forged"), timeout=60, what="the forged Job to complete")
    settle(operator, cluster, "audited")
    status = cluster.task("audited")["status"]
    assert status.get("succeeded", 0) == 0, status
    assert "lastRun" not in status or status["lastRun"] is None

    cluster.kubectl("-n", ns, "create", "job", "by-hand", "--from=cronjob/audited")
    task = cluster.wait_task(
        "audited",
        lambda t: (t["status"].get("lastRun") or {}).get("job") == "by-hand",
        timeout=60,
        what="the manual run to be recorded",
    )
    assert task["status"]["succeeded"] == 1
    assert task["status"]["lastSuccessfulTime"]


def test_recreated_task_does_not_inherit_the_old_jobs(cluster: Cluster, operator: Operator) -> None:
    ns = cluster.namespace
    cluster.apply(quiet("phoenix"))
    first = cluster.wait_ready("phoenix")
    cluster.kubectl("-n", ns, "create", "job", "old-run", "--from=cronjob/phoenix")
    cluster.wait_task(
        "phoenix",
        lambda t: t["status"].get("succeeded") == 1,
        timeout=60,
        what="the run of the first task",
    )
    # Keep the old CronJob and its Job around: the Job still carries the task's labels.
    cluster.kubectl("-n", ns, "delete", "scheduledtask", "phoenix", "--cascade=orphan")
    cluster.apply(quiet("phoenix"))
    second = cluster.wait_task(
        "phoenix",
        lambda t: ready_reason(t) == "CronJobNotOwned",
        timeout=30,
        what="the orphaned CronJob to be refused",
    )
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    cluster.kubectl("-n", ns, "delete", "cronjob", "phoenix", "--cascade=orphan")
    cluster.wait_ready("phoenix")
    settle(operator, cluster, "phoenix")
    status = cluster.task("phoenix")["status"]
    assert cluster.get("job", "old-run") is not None, "the old Job should still exist"
    assert status.get("succeeded", 0) == 0, status
    assert not status.get("lastSuccessfulTime"), status


def test_normalised_template_is_applied_once_and_hand_edits_are_restored(
    cluster: Cluster, operator: Operator
) -> None:
    """The API server stores 1.5Gi as 1536Mi, a cpu of 1 as "1", and drops `args: []`:
    the CronJob is still in sync after its first apply."""
    ns = cluster.namespace
    task = quiet("normalised")
    container = task["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["args"] = []
    container["resources"] = {"requests": {"cpu": 1, "memory": "1.5Gi"}}
    cluster.apply(task)
    cluster.wait_ready("normalised")
    cronjob = cluster.get("cronjob", "normalised")
    assert cronjob is not None
    stored = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert stored["resources"]["requests"]["memory"] != "1.5Gi"  # really normalised

    settle(operator, cluster, "normalised", rounds=3)
    again = cluster.get("cronjob", "normalised")
    assert again is not None
    assert again["metadata"]["resourceVersion"] == cronjob["metadata"]["resourceVersion"]
    assert "DriftCorrected" not in cluster.event_reasons("normalised")
    assert operator.log().count(f"applied CronJob {ns}/normalised") == 1

    # A real edit by hand is restored, and said so.
    patch = {"spec": {"schedule": "*/7 * * * *"}}
    cluster.kubectl("-n", ns, "patch", "cronjob", "normalised", "-p", json.dumps(patch))
    wait_for(
        lambda: (
            (cj := cluster.get("cronjob", "normalised")) and cj["spec"]["schedule"] == NEVER_SOON
        ),
        timeout=30,
        what="the schedule to be restored",
    )
    wait_for(
        lambda: "DriftCorrected" in cluster.event_reasons("normalised"),
        timeout=30,
        what="a DriftCorrected Event",
    )
