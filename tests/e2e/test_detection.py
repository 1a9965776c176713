"""Missed runs, failing tasks and the metrics endpoint, on the real control plane."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.support import (
    BIN,
    ROOT,
    Cluster,
    Operator,
    condition_of,
    launch_operator,
    stop_operator,
    wait_for,
    watching,
)
from tests.e2e.test_scheduledtask import RUN_TIMEOUT, every_minute, hung, monitoring

GRACE = 10


def sample(metrics: str, name: str, namespace: str, task: str, **labels: str) -> float | None:
    """The value of one series in a Prometheus text exposition, or None."""
    want = {"namespace": namespace, "name": task, **labels}
    for family in text_string_to_metric_families(metrics):
        for s in family.samples:
            if s.name == name and want.items() <= s.labels.items():
                return float(s.value)
    return None


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def component(action: str, name: str) -> None:
    subprocess.run([str(ROOT / "hack/cluster.sh"), action, name], check=True)


@pytest.mark.disruptive
def test_missed_runs_while_the_controller_manager_is_down(
    cluster: Cluster, operator: Operator, record_property: pytest.RecordProperty
) -> None:
    """One outage of kube-controller-manager for three tasks: a managed one whose slot
    is missed (Late), one whose run hangs (Blocked), and one that monitors a CronJob
    made with kubectl (Late from the CronJob it watches, never writing it)."""
    ns = cluster.namespace
    cluster.apply(every_minute("pulse", missedRunGraceSeconds=GRACE))
    # A second task whose run hangs (its pod can never be scheduled): when the
    # controller manager dies, its run is in flight and it must go Blocked.
    cluster.apply(hung("stuck", missedRunGraceSeconds=GRACE))
    cluster.kubectl(
        "-n", ns, "create", "cronjob", "vendor-tick", "--image=busybox:1.37", "--schedule=* * * * *"
    )
    cluster.apply(monitoring("watch-tick", "vendor-tick", missedRunGraceSeconds=GRACE))
    for name in ("pulse", "watch-tick"):
        cluster.wait_task(
            name,
            lambda t: (
                (t.get("status") or {}).get("succeeded", 0) >= 1 and not t["status"].get("active")
            ),
            timeout=RUN_TIMEOUT + 20,
            what=f"{name}: a first successful run, and none in flight",
        )
    cluster.wait_task(
        "stuck",
        lambda t: bool(t.get("status", {}).get("active")),
        timeout=RUN_TIMEOUT,
        what="a run in flight",
    )

    component("stop-component", "kube-controller-manager")
    try:
        cluster.wait_task(
            "stuck",
            lambda t: (condition_of(t, "Blocked") or {}).get("status") == "True",
            timeout=2 * 60 + GRACE + 30,
            what="Blocked while kube-controller-manager is down with a run in flight",
        )
        late = cluster.wait_task(
            "pulse",
            lambda t: (condition_of(t, "Late") or {}).get("status") == "True",
            timeout=60 + GRACE + 30,
            what="Late while kube-controller-manager is down",
        )
        status = late["status"]
        assert status["missedRuns"] >= 1
        missed = parse_time(status["lastMissedTime"])
        assert missed > parse_time(status["lastScheduleTime"])
        # Detection latency: from the moment the slot became due to Late=True.
        flagged = parse_time(condition_of(late, "Late")["lastTransitionTime"])  # type: ignore[index]
        latency = (flagged - missed).total_seconds() - GRACE
        record_property("detection_latency_seconds", latency)
        print(f"detection latency: {latency:.0f}s after slot + grace")
        assert 0 <= latency <= 30
        wait_for(
            lambda: "MissedSchedule" in cluster.event_reasons("pulse"),
            timeout=30,
            what="a MissedSchedule Event",
        )
        metrics = operator.metrics()
        assert sample(metrics, "cronwarden_task_late", ns, "pulse") == 1
        assert (sample(metrics, "cronwarden_task_missed_runs_total", ns, "pulse") or 0) >= 1
        assert sample(metrics, "cronwarden_task_last_missed_timestamp_seconds", ns, "pulse") == (
            missed.timestamp()
        )
        monitored = cluster.wait_task(
            "watch-tick",
            lambda t: (condition_of(t, "Late") or {}).get("status") == "True",
            timeout=60 + GRACE + 30,
            what="the monitoring task Late while kube-controller-manager is down",
        )
        assert monitored["status"]["missedRuns"] >= 1
    finally:
        component("start-component", "kube-controller-manager")

    # The controller starts the missed slot (within startingDeadlineSeconds) or the next.
    recovered = cluster.wait_task(
        "pulse",
        lambda t: (condition_of(t, "Late") or {}).get("status") == "False",
        timeout=RUN_TIMEOUT,
        what="Late to clear after the next run",
    )
    assert parse_time(recovered["status"]["lastScheduleTime"]) >= missed
    assert sample(operator.metrics(), "cronwarden_task_late", ns, "pulse") == 0
    wait_for(
        lambda: (condition_of(cluster.task("watch-tick"), "Late") or {}).get("status") == "False",
        timeout=RUN_TIMEOUT + 30,
        what="the monitoring task's Late to clear after the controller is back",
    )


def test_failing_task_and_its_metrics(cluster: Cluster, operator: Operator) -> None:
    ns = cluster.namespace
    cluster.apply(every_minute("flaky", fail=True, maxConsecutiveFailures=1, owner="team-x"))
    failing = cluster.wait_task(
        "flaky",
        lambda t: (condition_of(t, "Failing") or {}).get("status") == "True",
        timeout=RUN_TIMEOUT,
        what="Failing",
    )
    assert failing["status"]["consecutiveFailures"] >= 1

    def scraped() -> str | None:
        text = operator.metrics()
        return text if sample(text, "cronwarden_task_failing", ns, "flaky") == 1 else None

    metrics = wait_for(scraped, timeout=30, what="cronwarden_task_failing 1")
    assert (sample(metrics, "cronwarden_task_consecutive_failures", ns, "flaky") or 0) >= 1
    assert sample(metrics, "cronwarden_task_runs_total", ns, "flaky") is not None
    assert (sample(metrics, "cronwarden_task_runs_total", ns, "flaky", result="failed") or 0) >= 1
    info = sample(
        metrics, "cronwarden_task_info", ns, "flaky", schedule="* * * * *", owner="team-x"
    )
    assert info == 1
    assert sample(metrics, "cronwarden_task_max_consecutive_failures", ns, "flaky") == 1

    # The exposition passes promtool's linter.
    check = subprocess.run(
        [str(BIN / "promtool"), "check", "metrics"], input=metrics, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr

    # A deleted task's series disappear.
    cluster.kubectl("-n", ns, "delete", "scheduledtask", "flaky")
    wait_for(
        lambda: f'namespace="{ns}",name="flaky"' not in operator.metrics(),
        timeout=30,
        what="the deleted task's series to disappear",
    )


@pytest.mark.long(60)
def test_metrics_are_recomputed_after_a_restart(
    cluster: Cluster, operator: Operator, kubeconfig: Path
) -> None:
    """Status is the source: a new operator process, which never saw the Job
    events, exports the same counters and timestamps once it has reconciled."""
    ns = cluster.namespace
    cluster.apply(every_minute("steady-beat", suspend=False))
    done = cluster.wait_task(
        "steady-beat",
        lambda t: t.get("status", {}).get("succeeded", 0) >= 1,
        timeout=RUN_TIMEOUT,
        what="a successful run",
    )
    # Stop new runs so that the counters stay put while we compare.
    cluster.kubectl(
        "-n", ns, "patch", "st", "steady-beat", "--type=merge", "-p", '{"spec": {"suspend": true}}'
    )
    status = cluster.wait_task(
        "steady-beat",
        lambda t: t["status"].get("observedGeneration") == 2 and not t["status"].get("active"),
        timeout=60,
        what="suspended with no active run",
    )["status"]

    fresh = launch_operator(watching(ns), kubeconfig, f"{ns}-restarted")
    try:

        def exported() -> str | None:
            text = fresh.metrics()
            return text if sample(text, "cronwarden_task_suspended", ns, "steady-beat") else None

        metrics = wait_for(exported, timeout=30, what="the new operator to export the task")
        assert sample(
            metrics, "cronwarden_task_runs_total", ns, "steady-beat", result="succeeded"
        ) == float(status["succeeded"])
        assert (
            sample(metrics, "cronwarden_task_last_success_timestamp_seconds", ns, "steady-beat")
            == parse_time(status["lastSuccessfulTime"]).timestamp()
        )
        assert done["status"]["succeeded"] <= status["succeeded"]
    finally:
        stop_operator(fresh)
