"""ScheduledTasks reconciled into CronJobs by a running operator, on the real
control plane: the CronJob controller starts real Jobs whose pods kwok runs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from cronwarden.core.builder import is_subset
from tests.e2e.support import ROOT, Cluster, Operator, condition_of, load_example, wait_for

EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.yaml"))
SELECTOR = "app.kubernetes.io/managed-by=cronwarden,cronwarden.io/task={}"
FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"
# The next minute slot is at most 60 s away; the controllers then take seconds.
RUN_TIMEOUT = 100

DEFAULTS = {
    "suspend": False,
    "concurrencyPolicy": "Forbid",
    "startingDeadlineSeconds": 300,
    "successfulJobsHistoryLimit": 3,
    "failedJobsHistoryLimit": 1,
}


def every_minute(name: str, *, fail: bool = False, **spec: Any) -> dict[str, Any]:
    task = load_example("heartbeat")
    task["metadata"]["name"] = name
    task["spec"].update(spec)
    if fail:
        pod = task["spec"]["jobTemplate"]["spec"]["template"]
        pod.setdefault("metadata", {})["labels"] = {FAIL_LABEL: "true"}
    return task


def monitoring(name: str, cronjob: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "cronwarden.io/v1alpha1",
        "kind": "ScheduledTask",
        "metadata": {"name": name},
        "spec": {"cronJobRef": {"name": cronjob}, "owner": "team-vendor", **spec},
    }


def hung(name: str, **spec: Any) -> dict[str, Any]:
    """A per-minute task whose pods never start: no node has the label it selects."""
    task = every_minute(name, **spec)
    pod = task["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["nodeSelector"] = {"cronwarden.io/no-such-node": "true"}
    return task


def nightly(name: str, **spec: Any) -> dict[str, Any]:
    task = every_minute(name, **spec)
    task["spec"]["schedule"] = spec.get("schedule", "30 2 * * *")
    return task


@pytest.mark.parametrize("server_side", [False, True], ids=["client-side", "server-side"])
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_applies_and_its_cronjob_matches_field_by_field(
    cluster: Cluster, example: str, server_side: bool
) -> None:
    task = load_example(example)
    name = task["metadata"]["name"]
    cluster.apply(task, server_side=server_side)
    applied = cluster.wait_ready(name)
    cronjob = cluster.get("cronjob", name)
    assert cronjob is not None

    spec, cj = task["spec"], cronjob["spec"]
    assert cj["schedule"] == spec["schedule"]
    # The CronJob always names its zone, so the operator and the controller agree.
    assert cj["timeZone"] == spec.get("timeZone", "Etc/UTC")
    for field, default in DEFAULTS.items():
        assert cj[field] == spec.get(field, default), field
    # The whole job template passes through (the API server adds defaults).
    assert is_subset(spec["jobTemplate"]["spec"], cj["jobTemplate"]["spec"])
    labels = {"app.kubernetes.io/managed-by": "cronwarden", "cronwarden.io/task": name}
    assert labels.items() <= cronjob["metadata"]["labels"].items()
    assert labels.items() <= cj["jobTemplate"]["metadata"]["labels"].items()
    assert labels.items() <= cj["jobTemplate"]["spec"]["template"]["metadata"]["labels"].items()
    [owner] = cronjob["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "ScheduledTask",
        applied["metadata"]["uid"],
        True,
    )
    assert applied["status"]["cronJobName"] == name
    assert ("nextScheduleTime" in applied["status"]) is not spec.get("suspend", False)


def test_completed_and_failed_runs_are_recorded_with_events(cluster: Cluster) -> None:
    cluster.apply(every_minute("works"))
    cluster.apply(every_minute("breaks", fail=True, maxConsecutiveFailures=1))

    works = cluster.wait_task(
        "works",
        lambda t: t.get("status", {}).get("succeeded", 0) >= 1,
        timeout=RUN_TIMEOUT,
        what="a successful run recorded",
    )
    status = works["status"]
    assert status["lastSuccessfulTime"] >= status["lastRun"]["startTime"]
    assert status["lastRun"]["result"] == "Succeeded"
    assert status["lastRun"]["job"].startswith("works-")
    assert status["lastScheduleTime"] == status["lastRun"]["scheduledTime"]
    assert status.get("consecutiveFailures", 0) == 0
    wait_for(
        lambda: "RunSucceeded" in cluster.event_reasons("works"),
        timeout=30,
        what="a RunSucceeded Event",
    )

    breaks = cluster.wait_task(
        "breaks",
        lambda t: t.get("status", {}).get("failed", 0) >= 1,
        timeout=RUN_TIMEOUT,
        what="a failed run recorded",
    )
    status = breaks["status"]
    assert status["consecutiveFailures"] >= 1
    assert status["lastFailureTime"] == status["lastRun"]["completionTime"]
    assert status["lastRun"]["result"] == "Failed"
    assert status["lastRun"]["reason"] == "BackoffLimitExceeded"
    assert "lastSuccessfulTime" not in status
    failing = condition_of(breaks, "Failing")
    assert failing is not None
    assert (failing["status"], failing["reason"]) == ("True", "ConsecutiveFailures")
    wait_for(
        lambda: "RunFailed" in cluster.event_reasons("breaks"),
        timeout=30,
        what="a RunFailed Event",
    )


def test_suspend_on_and_off(cluster: Cluster) -> None:
    task = nightly("pausable", suspend=True)
    cluster.apply(task)
    suspended = cluster.wait_ready("pausable")
    assert condition_of(suspended, "Suspended")["status"] == "True"  # type: ignore[index]
    assert "nextScheduleTime" not in suspended["status"]
    assert cluster.get("cronjob", "pausable")["spec"]["suspend"] is True  # type: ignore[index]

    task["spec"]["suspend"] = False
    cluster.apply(task)
    resumed = cluster.wait_ready("pausable", generation=2)
    assert condition_of(resumed, "Suspended")["status"] == "False"  # type: ignore[index]
    assert resumed["status"]["nextScheduleTime"].endswith("T02:30:00Z")
    assert cluster.get("cronjob", "pausable")["spec"]["suspend"] is False  # type: ignore[index]


def test_cronjob_edited_or_deleted_by_hand_is_restored(cluster: Cluster) -> None:
    cluster.apply(nightly("guarded"))
    cluster.wait_ready("guarded")
    kubectl, ns = cluster.kubectl, cluster.namespace

    kubectl(
        "-n",
        ns,
        "patch",
        "cronjob",
        "guarded",
        "--type=merge",
        "-p",
        '{"spec": {"schedule": "0 0 * * *", "suspend": true}}',
    )
    restored = wait_for(
        lambda: (
            (cj := cluster.get("cronjob", "guarded"))
            and cj["spec"]["schedule"] == "30 2 * * *"
            and cj
        ),
        timeout=30,
        what="the edited CronJob to be restored",
    )
    assert restored["spec"]["suspend"] is False
    assert "DriftCorrected" in cluster.event_reasons("guarded")

    old_uid = restored["metadata"]["uid"]
    kubectl("-n", ns, "delete", "cronjob", "guarded", "--wait=true")
    recreated = wait_for(
        lambda: (
            (cj := cluster.get("cronjob", "guarded")) and cj["metadata"]["uid"] != old_uid and cj
        ),
        timeout=30,
        what="the deleted CronJob to be recreated",
    )
    assert recreated["spec"]["schedule"] == "30 2 * * *"
    # Repeated Events are aggregated: the DriftCorrected Event now says what happened last.
    wait_for(
        lambda: any(
            "deleted" in e["message"] and e.get("count", 1) >= 2
            for e in cluster.events("guarded")
            if e["reason"] == "DriftCorrected"
        ),
        timeout=30,
        what="the DriftCorrected Event to report the deletion",
    )


def test_deleting_the_task_removes_its_cronjob_and_jobs(cluster: Cluster) -> None:
    cluster.apply(every_minute("doomed"))
    cluster.wait_ready("doomed")
    selector = SELECTOR.format("doomed")
    wait_for(lambda: cluster.list("jobs", selector), timeout=RUN_TIMEOUT, what="a Job to start")

    cluster.kubectl("-n", cluster.namespace, "delete", "scheduledtask", "doomed")
    wait_for(
        lambda: cluster.get("cronjob", "doomed") is None and not cluster.list("jobs", selector),
        timeout=60,
        what="garbage collection of the CronJob and its Jobs",
    )


@pytest.mark.parametrize("server_side", [False, True], ids=["client-side", "server-side"])
def test_applying_the_same_manifest_twice_writes_nothing(
    cluster: Cluster, operator: Operator, server_side: bool
) -> None:
    task = nightly("steady")
    cluster.apply(task, server_side=server_side)
    cluster.wait_ready("steady")
    before = (
        cluster.task("steady")["metadata"]["resourceVersion"],
        cluster.get("cronjob", "steady")["metadata"]["resourceVersion"],  # type: ignore[index]
    )
    out = cluster.apply(copy.deepcopy(task), server_side=server_side)
    assert "unchanged" in out or "serverside-applied" in out
    # Let the operator reconcile twice more (periodic resync), then compare.
    seen = operator.reconciles(cluster.namespace, "steady")
    wait_for(
        lambda: operator.reconciles(cluster.namespace, "steady") >= seen + 2,
        timeout=30,
        what="two more reconciles",
    )
    after = (
        cluster.task("steady")["metadata"]["resourceVersion"],
        cluster.get("cronjob", "steady")["metadata"]["resourceVersion"],  # type: ignore[index]
    )
    assert after == before


def test_kubectl_get_shows_the_columns(cluster: Cluster) -> None:
    cluster.apply(load_example("weekly-report"))
    cluster.wait_ready("weekly-report")
    out = cluster.kubectl("-n", cluster.namespace, "get", "st").stdout.splitlines()
    header = out[0].split()
    assert header == [
        "NAME",
        "SCHEDULE",
        "TZ",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "SUCCESS",
        "NEXT",
        "RUN",
        "LATE",
        "BLOCKED",
        "AGE",
    ]
    row = out[1]
    assert row.startswith("weekly-report")
    assert "0 8 * * MON" in row
    assert "Europe/Berlin" in row
    wide = cluster.kubectl("-n", cluster.namespace, "get", "st", "-o", "wide").stdout
    assert "READY" in wide.splitlines()[0]
    assert "True" in wide.splitlines()[1]


def test_examples_directory_is_what_the_tests_apply() -> None:
    assert len(EXAMPLES) >= 5
    for name in EXAMPLES:
        assert load_example(name)["metadata"]["name"] == name, Path(name)
