"""Runs the operator never saw (README "Reliability", D1), on the real control plane:
a Job created, finished and deleted while the operator was stopped leaves only the
CronJob's lastSuccessfulTime behind, and that success is counted, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.support import (
    Cluster,
    Kubectl,
    launch_operator,
    stop_operator,
    wait_for,
    watching,
)
from tests.e2e.test_cache import yearly
from tests.e2e.test_scheduledtask import RUN_TIMEOUT


def cron_success(cluster: Cluster, name: str) -> str | None:
    cronjob = cluster.get("cronjob", name) or {}
    value: Any = (cronjob.get("status") or {}).get("lastSuccessfulTime")
    return value


def test_a_run_created_and_deleted_while_the_operator_was_down_is_counted_once(
    kubectl: Kubectl, solo_namespace: str, kubeconfig: Path, crd: str
) -> None:
    ns = solo_namespace
    cluster = Cluster(kubectl, ns)
    op = launch_operator(watching(ns), kubeconfig, f"{ns}-before")
    try:
        cluster.apply(yearly("unseen"))
        cluster.wait_ready("unseen")
    finally:
        stop_operator(op)

    # While the operator is down: a manual run succeeds, and its Job is deleted.
    kubectl("-n", ns, "create", "job", "unseen-manual-1", "--from=cronjob/unseen")
    wait_for(
        lambda: cron_success(cluster, "unseen") is not None,
        timeout=RUN_TIMEOUT,
        what="the CronJob controller to record the manual run's success",
    )
    kubectl("-n", ns, "delete", "job", "unseen-manual-1", "--wait=true")
    proof = cron_success(cluster, "unseen")

    op = launch_operator(watching(ns), kubeconfig, f"{ns}-after")
    try:
        task = cluster.wait_task(
            "unseen",
            lambda t: (t.get("status") or {}).get("lastSuccessfulTime") == proof,
            timeout=30,
            what="the task to take the CronJob's lastSuccessfulTime",
        )
        status = task["status"]
        assert status["succeeded"] == 1, status
        assert status["watermark"]["completionTime"] == proof
        assert status["watermark"]["unseenSuccess"] is True
        wait_for(
            lambda: "RunSucceeded" in cluster.event_reasons("unseen"),
            timeout=30,
            what="a RunSucceeded Event",
        )
    finally:
        stop_operator(op)

    # Never twice: another operator reads the same status and counts nothing more.
    op = launch_operator(watching(ns), kubeconfig, f"{ns}-again")
    try:
        wait_for(
            lambda: op.reconciles(ns, "unseen") > 0, timeout=30, what="a reconcile of the task"
        )
        assert cluster.task("unseen")["status"]["succeeded"] == 1
    finally:
        stop_operator(op)
