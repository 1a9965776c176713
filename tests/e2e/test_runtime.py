"""The watch-fed runtime against the real control plane: runs whose Jobs vanish at
once are still recorded, downtime loses no success, and of two replicas exactly
one writes and exports task metrics. Each test runs operators of its own in a
namespace that the shared operator does not watch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.support import (
    Cluster,
    Kubectl,
    Operator,
    launch_operator,
    stop_operator,
    wait_for,
    watching,
)
from tests.e2e.test_ownership import NEVER_SOON
from tests.e2e.test_scheduledtask import RUN_TIMEOUT, every_minute, nightly


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC) if value else None


@pytest.mark.long(300)
def test_runs_are_recorded_even_when_jobs_vanish_and_across_downtime(
    kubectl: Kubectl, solo_namespace: str, kubeconfig: Path, crd: str
) -> None:
    ns = solo_namespace
    cluster = Cluster(kubectl, ns)
    no_history = every_minute("no-history", successfulJobsHistoryLimit=0)
    ttl_zero = every_minute("ttl-zero")
    ttl_zero["spec"]["jobTemplate"]["spec"]["ttlSecondsAfterFinished"] = 0
    names = ("no-history", "ttl-zero")

    first = launch_operator(watching(ns), kubeconfig, f"{ns}-first")
    try:
        for task in (no_history, ttl_zero):
            cluster.apply(task)
        # The Jobs are deleted the moment they finish: only the watch sees them.
        for name in names:
            cluster.wait_task(
                name,
                lambda t: t.get("status", {}).get("succeeded", 0) >= 1,
                timeout=RUN_TIMEOUT,
                what="the first run recorded although its Job is gone",
            )
    finally:
        stop_operator(first)
    before = {name: cluster.task(name)["status"] for name in names}

    # While the operator is down, at least two more runs succeed and vanish.
    def cronjob_success(name: str) -> datetime | None:
        cronjob = cluster.get("cronjob", name)
        return when(((cronjob or {}).get("status") or {}).get("lastSuccessfulTime"))

    for name in names:
        recorded = when(before[name]["lastSuccessfulTime"])
        assert recorded is not None
        wait_for(
            lambda n=name, r=recorded: (s := cronjob_success(n)) and s >= r + timedelta(seconds=90),
            timeout=200,
            what=f"two more successful runs of {name} while the operator is down",
        )
    evidence = {name: cronjob_success(name) for name in names}

    second = launch_operator(watching(ns), kubeconfig, f"{ns}-second")
    try:
        for name in names:
            floor = evidence[name]
            assert floor is not None
            status = cluster.wait_task(
                name,
                lambda t, f=floor: (
                    (w := when(t["status"].get("lastSuccessfulTime"))) is not None and w >= f
                ),
                timeout=30,
                what="lastSuccessfulTime caught up with the CronJob's",
            )["status"]
            assert status["succeeded"] >= before[name]["succeeded"]  # counters never go back
            late = next(c for c in status["conditions"] if c["type"] == "Late")
            assert late["status"] == "False", late
        # With the operator running again, the next vanishing run is counted.
        for name in names:
            counted = cluster.task(name)["status"]["succeeded"]
            cluster.wait_task(
                name,
                lambda t, c=counted: t["status"]["succeeded"] > c,
                timeout=RUN_TIMEOUT,
                what="the next run counted",
            )
    finally:
        stop_operator(second)


def task_series(operator: Operator, namespace: str) -> int:
    count = 0
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if sample.name.startswith("cronwarden_task_") and (
                sample.labels.get("namespace") == namespace
            ):
                count += 1
    return count


def active_flag(operator: Operator) -> float:
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if sample.name == "cronwarden_operator_active":
                return float(sample.value)
    raise AssertionError("cronwarden_operator_active is not exported")


def test_two_replicas_one_writer_and_a_takeover(
    kubectl: Kubectl, solo_namespace: str, kubeconfig: Path, crd: str
) -> None:
    ns = solo_namespace
    cluster = Cluster(kubectl, ns)
    election = ["--leader-election", f"--leader-election-namespace={ns}"]
    replicas = {
        pod: launch_operator(
            [*watching(ns), *election], kubeconfig, f"{ns}-{pod}", env={"POD_NAME": pod}
        )
        for pod in ("r1", "r2")
    }
    try:

        def holder() -> str | None:
            lease = cluster.get("lease", "cronwarden")
            return ((lease or {}).get("spec") or {}).get("holderIdentity")

        leader_id = wait_for(holder, timeout=30, what="a replica to hold the Lease")
        leader = leader_id.split("_")[0]
        standby = "r2" if leader == "r1" else "r1"

        cluster.apply(nightly("shared", schedule=NEVER_SOON))
        cluster.wait_ready("shared")
        cluster.kubectl("-n", ns, "create", "job", "run-1", "--from=cronjob/shared")
        cluster.wait_task(
            "shared",
            lambda t: t["status"].get("succeeded") == 1,
            timeout=60,
            what="the first manual run recorded",
        )
        wait_for(
            lambda: task_series(replicas[leader], ns) > 0,
            timeout=30,
            what="the leader to export the task",
        )
        assert task_series(replicas[standby], ns) == 0
        assert active_flag(replicas[leader]) == 1
        assert active_flag(replicas[standby]) == 0
        assert run_event(cluster, "shared") == (leader, 1)
        assert "became the leader" not in replicas[standby].log()

        # The leader dies without a word (kill -9): the standby takes over.
        dead = replicas[leader]
        dead.process.kill()
        dead.process.wait(timeout=30)
        dead.stopped = True
        wait_for(
            lambda: (h := holder()) is not None and h.startswith(standby + "_"),
            timeout=40,
            what="the standby to take the Lease over",
        )
        cluster.kubectl("-n", ns, "create", "job", "run-2", "--from=cronjob/shared")
        cluster.wait_task(
            "shared",
            lambda t: t["status"].get("succeeded") == 2,
            timeout=60,
            what="the second manual run recorded by the new leader",
        )
        wait_for(
            lambda: task_series(replicas[standby], ns) > 0,
            timeout=30,
            what="the new leader to export the task",
        )
        # One RunSucceeded object for both runs (aggregated), last written by the new leader.
        wait_for(
            lambda: run_event(cluster, "shared") == (standby, 2),
            timeout=30,
            what="the new leader to update the RunSucceeded Event",
        )
        shown = ("-n", ns, "get", "st", "shared", "-o", "json", "--show-managed-fields")
        task = json.loads(cluster.kubectl(*shown).stdout)
        managers = {
            (m["manager"], m["operation"], m.get("subresource"))
            for m in task["metadata"]["managedFields"]
        }
        assert ("cronwarden", "Update", "status") in managers, managers
        assert not any(m[2] == "status" and m[0] != "cronwarden" for m in managers), managers
    finally:
        for op in replicas.values():
            if op.stopped:
                op.process.poll()
            stop_operator(op)


def run_event(cluster: Cluster, name: str) -> tuple[str, int] | None:
    """Who last wrote the task's RunSucceeded Event (reportingInstance, the replica's
    POD_NAME), and its count; None when there is no such Event."""
    events = [e for e in cluster.events(name) if e["reason"] == "RunSucceeded"]
    assert len(events) <= 1, f"RunSucceeded is not aggregated: {len(events)} objects"
    if not events:
        return None
    return events[0].get("reportingInstance", ""), int(events[0].get("count", 1))
