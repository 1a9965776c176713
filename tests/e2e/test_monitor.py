"""Monitor mode on the real control plane: a ScheduledTask that references a CronJob
made with plain kubectl reports its runs, never writes it, and goes Late when the
CronJob controller stops."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.e2e.support import Cluster, Operator, condition_of
from tests.e2e.test_detection import sample
from tests.e2e.test_scheduledtask import FAIL_LABEL, RUN_TIMEOUT, monitoring

GRACE = 10


def failing_cronjob(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": {FAIL_LABEL: "true"}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "main", "image": "busybox:1.37"}],
                        },
                    },
                }
            },
        },
    }


def ready_reason(task: dict[str, Any]) -> str | None:
    return (condition_of(task, "Ready") or {}).get("reason")


def test_a_cronjob_made_with_kubectl_is_monitored_never_written(
    cluster: Cluster, operator: Operator
) -> None:
    ns = cluster.namespace
    # The task first: the CronJob does not exist yet.
    cluster.apply(monitoring("watch-good", "vendor-good"))
    missing = cluster.wait_task(
        "watch-good",
        lambda t: ready_reason(t) == "CronJobNotFound",
        timeout=30,
        what="Ready=False CronJobNotFound",
    )
    assert (condition_of(missing, "Stalled") or {}).get("status") == "True"

    cluster.kubectl(
        "-n", ns, "create", "cronjob", "vendor-good", "--image=busybox:1.37", "--schedule=* * * * *"
    )
    cluster.apply(failing_cronjob("vendor-bad"))
    cluster.apply(monitoring("watch-bad", "vendor-bad"))
    before = cluster.get("cronjob", "vendor-good")
    assert before is not None

    good = cluster.wait_task(
        "watch-good",
        lambda t: t["status"].get("succeeded", 0) >= 1,
        timeout=RUN_TIMEOUT + 20,
        what="a successful run of the monitored CronJob",
    )
    assert ready_reason(good) == "Reconciled"
    assert good["status"]["lastSuccessfulTime"]
    bad = cluster.wait_task(
        "watch-bad",
        lambda t: (condition_of(t, "Failing") or {}).get("status") == "True",
        timeout=RUN_TIMEOUT + 20,
        what="the monitored failing CronJob to be Failing",
    )
    assert bad["status"]["failed"] >= 1
    assert "RunFailed" in cluster.event_reasons("watch-bad")

    # Never written: no owner, no label, no field manager of ours.
    after = json.loads(
        cluster.kubectl(
            "-n", ns, "get", "cronjob", "vendor-good", "-o", "json", "--show-managed-fields"
        ).stdout
    )
    assert not after["metadata"].get("ownerReferences")
    assert "cronwarden.io/task" not in (after["metadata"].get("labels") or {})
    assert all(m["manager"] != "cronwarden" for m in after["metadata"]["managedFields"])
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    metrics = operator.metrics()
    assert sample(metrics, "cronwarden_task_runs_total", ns, "watch-good", result="succeeded")


def manual_job(cronjob: dict[str, Any], name: str) -> dict[str, Any]:
    """A Job of `cronjob` (controlled by it, as `kubectl create job --from` makes one)
    whose status the test writes: spec.managedBy keeps the Job controller away."""
    meta = cronjob["metadata"]
    owner = {"apiVersion": "batch/v1", "kind": "CronJob", "controller": True}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "ownerReferences": [{**owner, "name": meta["name"], "uid": meta["uid"]}],
        },
        "spec": {
            **cronjob["spec"]["jobTemplate"]["spec"],
            "managedBy": "e2e.cronwarden.io/status-writer",
        },
    }


def fail_and_delete(cluster: Cluster, job: str) -> None:
    """Write a failure into the Job's status, then delete the Job at once."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    failed = {"status": "True", "reason": "BackoffLimitExceeded", "message": "failed by the test"}
    conditions = [
        {"type": t, **failed, "lastProbeTime": now, "lastTransitionTime": now}
        for t in ("FailureTarget", "Failed")
    ]
    status = {"status": {"startTime": now, "failed": 1, "conditions": conditions}}
    ns = cluster.namespace
    cluster.kubectl(
        "-n", ns, "patch", "job", job, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip
    cluster.kubectl("-n", ns, "delete", "job", job, "--wait=false")


def test_runs_whose_jobs_are_deleted_as_they_finish_are_counted(cluster: Cluster) -> None:
    """A monitored CronJob's Jobs that fail and are deleted within a second (a TTL of
    0, a policy engine, a person cleaning up) are counted: the namespace's watch sees
    them finish. A periodic read (every 15 s on the previous main) sees neither, and
    nothing else records a failure (the CronJob keeps only lastSuccessfulTime)."""
    ns = cluster.namespace
    cluster.kubectl(
        "-n", ns, "create", "cronjob", "vendor-rare", "--image=busybox:1.37",
        "--schedule=0 0 1 1 *",
    )  # fmt: skip
    cluster.apply(monitoring("watch-rare", "vendor-rare", maxConsecutiveFailures=5))
    cluster.wait_task(
        "watch-rare",
        lambda t: ready_reason(t) == "Reconciled",
        timeout=30,
        what="Ready, Reconciled",
    )
    cronjob = cluster.get("cronjob", "vendor-rare")
    assert cronjob is not None
    runs = ["vendor-rare-manual-1", "vendor-rare-manual-2"]
    for name in runs:
        cluster.apply(manual_job(cronjob, name))
        fail_and_delete(cluster, name)
    task = cluster.wait_task(
        "watch-rare",
        lambda t: (t.get("status") or {}).get("failed") == len(runs),
        timeout=30,
        what="both failed runs counted",
    )
    assert task["status"]["lastRun"]["job"] == runs[-1]
    assert task["status"]["lastRun"]["result"] == "Failed"
    assert task["status"]["consecutiveFailures"] == len(runs)
    assert not task["status"].get("active")
    assert "RunFailed" in cluster.event_reasons("watch-rare")
