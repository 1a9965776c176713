"""The watch cache stays true to the cluster (issue 15), on the real control plane:
a label edit does not hide a CronJob, two runs finishing within one second are
both counted, and a wake-up is not lost to a slow lease renewal."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import controlplane
from tests.e2e.support import (
    Cluster,
    Kubectl,
    Operator,
    condition_of,
    launch_operator,
    stop_operator,
    wait_for,
    watching,
)
from tests.e2e.test_scheduledtask import RUN_TIMEOUT, every_minute, hung

MANAGED_BY = "app.kubernetes.io/managed-by"


def yearly(name: str, **kwargs: Any) -> dict[str, Any]:
    """A task whose schedule does not fire during a test: runs are started by hand."""
    task = every_minute(name, **kwargs)
    task["spec"]["schedule"] = "0 0 1 1 *"
    return task


def test_a_stripped_label_does_not_hide_the_cronjob_or_its_runs(cluster: Cluster) -> None:
    """The label-filtered watch reports a CronJob whose managed-by label is removed as
    DELETED. The operator restores the label, and the runs of that CronJob are still
    counted afterwards: a failing manual run raises Failing."""
    ns, kubectl = cluster.namespace, cluster.kubectl
    cluster.apply(yearly("relabelled", fail=True))
    cluster.wait_ready("relabelled")
    kubectl("-n", ns, "label", "cronjob", "relabelled", f"{MANAGED_BY}-")
    wait_for(
        lambda: (
            (
                ((cluster.get("cronjob", "relabelled") or {}).get("metadata") or {}).get(
                    "labels", {}
                )
            ).get(MANAGED_BY)
            == "cronwarden"
        ),
        timeout=30,
        what="the operator to restore the managed-by label",
    )
    kubectl("-n", ns, "create", "job", "relabelled-manual-1", "--from=cronjob/relabelled")
    task = cluster.wait_task(
        "relabelled",
        lambda t: (t.get("status") or {}).get("failed") == 1,
        timeout=60,
        what="the failed manual run to be counted",
    )
    assert task["status"]["lastRun"]["job"] == "relabelled-manual-1"
    failing = condition_of(task, "Failing")
    assert failing is not None
    assert failing["status"] == "True"
    ready = condition_of(task, "Ready")
    assert ready is not None
    assert ready["status"] == "True"


def foreign_job(cronjob: dict[str, Any], name: str) -> dict[str, Any]:
    """A Job of `cronjob` (controlled by it, labelled as its Jobs are) whose status the
    test writes: spec.managedBy keeps the Job controller away from it."""
    template = cronjob["spec"]["jobTemplate"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": cronjob["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": cronjob["metadata"]["name"],
                    "uid": cronjob["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {**template["spec"], "managedBy": "e2e.cronwarden.io/status-writer"},
    }


def finish(cluster: Cluster, job: str, started: str, finished: str) -> None:
    """Write a successful finish at `finished` (RFC 3339, whole seconds) into a Job's status."""
    status = {
        "status": {
            "startTime": started,
            "completionTime": finished,
            "succeeded": 1,
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods",
                    "lastProbeTime": finished,
                    "lastTransitionTime": finished,
                }
                for t in ("SuccessCriteriaMet", "Complete")
            ],
        }
    }
    cluster.kubectl(
        "-n",
        cluster.namespace,
        "patch",
        "job",
        job,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


def test_two_runs_finishing_in_one_second_are_both_counted(
    cluster: Cluster, operator: Operator
) -> None:
    """Runs are ordered by (finish second, Job name). A run named after another that
    finished within the same second, and recorded first, must not hide it."""
    cluster.apply(yearly("twins"))
    cluster.wait_ready("twins")
    cronjob = cluster.get("cronjob", "twins")
    assert cronjob is not None
    late_name, early_name = "twins-manual-z", "twins-manual-a"
    for name in (late_name, early_name):
        cluster.apply(foreign_job(cronjob, name))
    second = datetime.now(UTC).replace(microsecond=0)
    started = (second - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    finished = second.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The run that sorts last is recorded first ...
    finish(cluster, late_name, started, finished)
    cluster.wait_task(
        "twins",
        lambda t: ((t.get("status") or {}).get("lastRun") or {}).get("job") == late_name,
        timeout=30,
        what=f"{late_name} to be recorded",
    )
    # ... then the one that finished within the same second.
    finish(cluster, early_name, started, finished)
    task = cluster.wait_task(
        "twins",
        lambda t: (t.get("status") or {}).get("succeeded") == 2,
        timeout=30,
        what="both runs to be counted",
    )
    assert task["status"]["watermark"]["jobs"] == [early_name, late_name]
    # And never twice: a later reconcile (forced by a label edit) counts nothing more.
    seen = operator.reconciles(cluster.namespace, "twins")
    cluster.kubectl("-n", cluster.namespace, "label", "st", "twins", "touched=1")
    wait_for(
        lambda: operator.reconciles(cluster.namespace, "twins") > seen,
        timeout=30,
        what="another reconcile of the task",
    )
    assert cluster.task("twins")["status"]["succeeded"] == 2


# The audit period of the operators these tests start: a relist is corrected within it.
AUDIT_SECONDS = 10


def served(kubectl: Kubectl) -> bool:
    return kubectl("get", "--raw", "/readyz", check=False).returncode == 0


def series(operator: Operator, namespace: str, name: str) -> bool:
    """Whether the operator exports any cronwarden_task_* series of the task."""
    needle = f'namespace="{namespace}",name="{name}"'
    return any(
        line.startswith("cronwarden_task_") and needle in line
        for line in operator.metrics().splitlines()
    )


@pytest.mark.disruptive
def test_what_vanished_during_a_relist_is_deleted_from_the_cache(
    kubectl: Kubectl, solo_namespace: str, kubeconfig: Path, crd: str
) -> None:
    """While the operator is frozen, an active Job, a CronJob and a task are deleted,
    and etcd's history is compacted under a restarted API server: the resumed watches
    get 410 Gone and list again, and a listing sends no DELETED for what vanished.
    Within the audit period the operator still sees all three deletions: the run is
    resolved (Unknown) and leaves status.active, the CronJob is recreated, and the
    task's metric series are gone."""
    ns = solo_namespace
    cluster = Cluster(kubectl, ns)
    op = launch_operator(
        [*watching(ns), f"--audit-seconds={AUDIT_SECONDS}"], kubeconfig, f"{ns}-relist"
    )
    try:
        cluster.apply(hung("stuck"))
        cluster.apply(yearly("rebuilt"))
        cluster.apply(yearly("removed"))
        stuck = cluster.wait_task(
            "stuck",
            lambda t: bool((t.get("status") or {}).get("active")),
            timeout=RUN_TIMEOUT,
            what="a run that hangs",
        )
        [job] = stuck["status"]["active"]
        old_uid = cluster.wait_ready("rebuilt")["status"] and cluster.get("cronjob", "rebuilt")
        assert old_uid is not None
        cluster.wait_ready("removed")
        wait_for(lambda: series(op, ns, "removed"), timeout=30, what="the task's series")

        op.process.send_signal(signal.SIGSTOP)
        try:
            # The restart first: the watch connections it closes cannot carry the
            # deletions to the frozen operator (its socket buffers would, otherwise).
            controlplane.restart("kube-apiserver")
            wait_for(lambda: served(kubectl), timeout=60, what="the API server to serve")
            kubectl("-n", ns, "delete", "job", job, "--wait=true")
            kubectl("-n", ns, "delete", "cronjob", "rebuilt", "--wait=true")
            kubectl("-n", ns, "delete", "st", "removed", "--wait=true")
            # The operator's resourceVersions are now compacted away: 410 Gone.
            controlplane.compact_etcd()
        finally:
            op.process.send_signal(signal.SIGCONT)
        wait_for(
            lambda: f"watch of jobs in {ns} expired" in op.log(),  # runtime/reflector.py
            timeout=60,
            what="the Job watch to get 410 Gone and list again",
        )

        timeout = AUDIT_SECONDS + 40
        task = cluster.wait_task(
            "stuck",
            lambda t: ((t.get("status") or {}).get("lastRun") or {}).get("job") == job,
            timeout=timeout,
            what=f"the run of the deleted Job {job} to be resolved",
        )
        assert job not in task["status"]["active"]
        assert task["status"]["lastRun"]["result"] == "Unknown"
        assert task["status"]["lastRun"]["reason"] == "JobVanished"
        assert task["status"]["unknown"] == 1
        wait_for(
            lambda: "RunUnknown" in cluster.event_reasons("stuck"),
            timeout=30,
            what="a RunUnknown Event",
        )
        wait_for(
            lambda: (
                (cj := cluster.get("cronjob", "rebuilt"))
                and cj["metadata"]["uid"] != old_uid["metadata"]["uid"]
            ),
            timeout=timeout,
            what="the deleted CronJob to be recreated",
        )
        wait_for(
            lambda: not series(op, ns, "removed"),
            timeout=timeout,
            what="the deleted task's series to go",
        )
        assert series(op, ns, "stuck")
        corrections = [
            line
            for line in op.metrics().splitlines()
            if line.startswith("cronwarden_cache_corrections_total")
        ]
        assert any('kind="deleted"' in line for line in corrections), corrections
    finally:
        stop_operator(op)


@pytest.mark.disruptive
def test_a_wake_up_is_not_lost_while_the_lease_renewal_is_slow(
    kubectl: Kubectl, solo_namespace: str, kubeconfig: Path, crd: str
) -> None:
    """The API server stalls (SIGSTOP) long enough that the leader's last renewal is
    older than its renew deadline, and a time-driven wake-up (a missed slot's grace
    running out) falls in that window: the fence refuses the status write. The leader
    never lost the Lease, so the key must come back once renewal works again, not at
    the next resync (300 s here)."""
    ns = solo_namespace
    cluster = Cluster(kubectl, ns)
    grace = 20
    args = [
        *watching(ns),
        "--leader-election",
        f"--leader-election-namespace={ns}",
        "--resync-seconds=300",
        "--audit-seconds=300",
    ]
    op = launch_operator(args, kubeconfig, f"{ns}-lease", env={"POD_NAME": "slow"})
    controlplane.stop_component("kube-controller-manager")  # so the slot is missed
    try:
        cluster.apply(every_minute("waiting", missedRunGraceSeconds=grace))
        cluster.wait_ready("waiting")
        # The stall starts 12 s before the slot's grace ends (past the 10 s renew
        # deadline when the wake-up fires) and lasts 16 s.
        now = datetime.now(UTC)
        slot = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
        if slot + timedelta(seconds=grace - 12) < now + timedelta(seconds=5):
            slot += timedelta(minutes=1)
        freeze_at = slot + timedelta(seconds=grace - 12)
        wait_for(
            lambda: datetime.now(UTC) >= freeze_at,
            timeout=130,
            interval=0.2,
            what="the moment to stall the API server",
        )
        pid = controlplane.running("kube-apiserver")
        assert pid is not None
        controlplane.kill(pid, signal.SIGSTOP)
        try:
            resume_at = freeze_at + timedelta(seconds=16)
            wait_for(
                lambda: datetime.now(UTC) >= resume_at,
                timeout=30,
                interval=0.2,
                what="the end of the stall",
            )
        finally:
            controlplane.kill(pid, signal.SIGCONT)
        task = cluster.wait_task(
            "waiting",
            lambda t: (condition_of(t, "Late") or {}).get("status") == "True",
            timeout=40,
            what="Late, once the lease is renewed (not at the next resync)",
        )
        assert task["status"]["lastMissedTime"] == slot.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert "waits for the lease renewal" in op.log()
    finally:
        controlplane.start_component("kube-controller-manager")
        stop_operator(op)


@pytest.mark.disruptive
def test_a_namespace_created_during_a_relist_is_followed(
    kubectl: Kubectl, kubeconfig: Path, crd: str
) -> None:
    """An operator that watches a namespace pattern picks up a namespace created while
    its watches list again (the API server restarted under it)."""
    tag = f"e2e-glob-{datetime.now(UTC):%H%M%S}"
    op = launch_operator(watching(f"{tag}-*"), kubeconfig, tag)
    created: list[str] = []
    try:
        controlplane.restart("kube-apiserver")
        wait_for(lambda: served(kubectl), timeout=60, what="the API server to serve")
        for i in range(3):
            ns = f"{tag}-{i}"
            kubectl("create", "namespace", ns)
            created.append(ns)
            wait_for(
                lambda ns=ns: (
                    kubectl("-n", ns, "get", "serviceaccount", "default", check=False).returncode
                    == 0
                ),
                timeout=60,
                what=f"the default ServiceAccount in {ns}",
            )
            Cluster(kubectl, ns).apply(yearly("found"))
        for ns in created:
            Cluster(kubectl, ns).wait_ready("found", timeout=AUDIT_SECONDS + 60)
            assert Cluster(kubectl, ns).get("cronjob", "found") is not None
    finally:
        stop_operator(op)
        for ns in created:
            kubectl("delete", "namespace", ns, "--wait=false", check=False)
