"""What the API server says about a task's pods, passed on, on the real control plane:

- a run whose pods Pod Security `enforce=restricted` refuses makes the task Blocked
  (reason PodsNotAdmitted) at once, quoting the refusal, with a Warning Event and
  the metric; it clears once a run's pods are admitted;
- the `Warning` headers of the CronJob's apply (Pod Security `warn=restricted`)
  become a Warning Event on the task and a line of `kubectl cronwarden why`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.support import Cluster, Kubectl, Operator, condition_of, wait_for
from tests.e2e.test_detection import parse_time, sample
from tests.e2e.test_plugin import plugin
from tests.e2e.test_scheduledtask import RUN_TIMEOUT, every_minute

# What Pod Security says about a privileged container, enforced and as a warning.
REFUSED = 'is forbidden: violates PodSecurity "restricted:latest": '
WARNED = 'would violate PodSecurity "restricted:latest": '
PRIVILEGED = 'privileged (container "beat" must not set securityContext.privileged=true)'
# From the Job's creation to the condition, at most (the issue: within 2 minutes).
DETECTION_LIMIT = 120


def privileged(name: str, **spec: Any) -> dict[str, Any]:
    """A per-minute task whose container asks to be privileged: refused under
    `restricted`, admitted (with a warning at most) elsewhere."""
    task = every_minute(name, **spec)
    [container] = task["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    container["securityContext"] = {"privileged": True}
    return task


def pod_security(kubectl: Kubectl, namespace: str, mode: str, level: str | None) -> None:
    """Set (or, with None, remove) the namespace's Pod Security `mode` label."""
    label = f"pod-security.kubernetes.io/{mode}"
    kubectl(
        "label", "namespace", namespace, "--overwrite", f"{label}={level}" if level else f"{label}-"
    )


def blocked(task: dict[str, Any]) -> dict[str, Any] | None:
    cond = condition_of(task, "Blocked")
    return cond if cond and cond["status"] == "True" else None


def test_refused_pods_make_the_task_blocked_quoting_the_refusal(
    cluster: Cluster, kubectl: Kubectl, operator: Operator
) -> None:
    ns = cluster.namespace
    pod_security(kubectl, ns, "enforce", "restricted")
    cluster.apply(privileged("refused"))
    selector = "cronwarden.io/task=refused"
    [job] = wait_for(
        lambda: cluster.list("jobs", selector), timeout=RUN_TIMEOUT, what="the first run's Job"
    )
    created = parse_time(job["metadata"]["creationTimestamp"])

    task = cluster.wait_task(
        "refused",
        lambda t: (blocked(t) or {}).get("reason") == "PodsNotAdmitted",
        timeout=DETECTION_LIMIT,
        what="Blocked, reason PodsNotAdmitted",
    )
    seen = datetime.now(UTC)
    cond = blocked(task)
    assert cond is not None
    since = parse_time(cond["lastTransitionTime"])
    print(
        f"PodsNotAdmitted: condition {(since - created).total_seconds():.0f}s after the Job's "
        f"creation (seen by the test {(seen - created).total_seconds():.1f}s after)"
    )
    assert (since - created).total_seconds() <= DETECTION_LIMIT
    name = job["metadata"]["name"]
    assert cond["message"].startswith(f"Job {name} (the run for "), cond
    assert "has no pod: the API server refuses its pods: Error creating: pods " in cond["message"]
    assert REFUSED in cond["message"], cond
    assert PRIVILEGED in cond["message"], cond
    assert not cluster.list("pods", f"job-name={name}")

    events = wait_for(
        lambda: [e for e in cluster.events("refused") if e["reason"] == "PodsNotAdmitted"],
        timeout=30,
        what="a PodsNotAdmitted Warning Event",
    )
    assert [(e["type"], e.get("count", 1)) for e in events] == [("Warning", 1)]
    assert REFUSED in events[0]["message"]
    assert sample(operator.metrics(), "cronwarden_task_runs_not_admitted", ns, "refused") == 1
    assert sample(operator.metrics(), "cronwarden_task_blocked", ns, "refused") == 1

    # The namespace admits the pods again: the Job controller's next attempt creates
    # one (it retries with a back-off of up to a minute), and Blocked clears.
    pod_security(kubectl, ns, "enforce", None)
    cluster.wait_task(
        "refused",
        lambda t: blocked(t) is None,
        timeout=RUN_TIMEOUT + 30,
        what="Blocked to clear once a run's pod exists",
    )
    assert sample(operator.metrics(), "cronwarden_task_runs_not_admitted", ns, "refused") == 0
    assert [
        e.get("count", 1) for e in cluster.events("refused") if e["reason"] == "PodsNotAdmitted"
    ] == [1]


def test_api_server_warnings_on_the_cronjob_become_an_event_and_a_why_line(
    cluster: Cluster, kubectl: Kubectl, kubeconfig: Path
) -> None:
    ns = cluster.namespace
    pod_security(kubectl, ns, "warn", "restricted")
    cluster.apply(privileged("warned", schedule="0 0 1 1 *"))
    task = cluster.wait_ready("warned")
    [text] = task["status"]["applyWarnings"]
    assert text.startswith(WARNED), text
    assert PRIVILEGED in text, text

    def warning_events() -> list[dict[str, Any]]:
        return [e for e in cluster.events("warned") if e["reason"] == "CronJobWarning"]

    [event] = wait_for(warning_events, timeout=30, what="a CronJobWarning Event")
    assert event["type"] == "Warning"
    assert event["message"] == f"the API server warned when the CronJob was applied: {text}"

    why = plugin("why", "warned", "-n", ns, kubeconfig=kubeconfig)
    assert why.returncode == 0, why.stderr
    assert f"API server warning on the CronJob's last apply: {text}\n" in why.stdout

    # The same warning on the next apply (an edit of the template) is not posted again.
    edited = privileged("warned", schedule="0 0 1 1 *", description="edited")
    cluster.apply(edited)
    cluster.wait_ready("warned", generation=2)
    assert [e.get("count", 1) for e in warning_events()] == [1]


def test_a_resource_quota_that_refuses_a_manual_runs_pods_blocks_the_task(
    cluster: Cluster, kubectl: Kubectl
) -> None:
    """A ResourceQuota of no pods refuses a run started by hand: the same condition,
    quoting the quota's refusal; deleting the quota lets the Job controller's next
    attempt create the pod, and the condition clears."""
    ns = cluster.namespace
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "no-pods"},
            "spec": {"hard": {"pods": "0"}},
        }
    )
    cluster.apply(every_minute("quota", schedule="0 0 1 1 *"))
    cluster.wait_ready("quota")
    kubectl("-n", ns, "create", "job", "quota-now", "--from=cronjob/quota")
    task = cluster.wait_task(
        "quota",
        lambda t: (blocked(t) or {}).get("reason") == "PodsNotAdmitted",
        timeout=60,
        what="Blocked, reason PodsNotAdmitted, for the manual run",
    )
    cond = blocked(task)
    assert cond is not None
    assert cond["message"].startswith(
        "Job quota-now has no pod: the API server refuses its pods: "
    ), cond
    assert "is forbidden: exceeded quota: no-pods, requested: pods=1" in cond["message"], cond

    kubectl("-n", ns, "delete", "resourcequota", "no-pods")
    cluster.wait_task(
        "quota",
        lambda t: blocked(t) is None and t["status"].get("succeeded", 0) >= 1,
        timeout=RUN_TIMEOUT,
        what="the manual run to get its pod and succeed",
    )
