"""Every stop pages someone, end to end with real servers (tests/e2e/paging.py):

- a ScheduledTask that cannot run (an unknown time zone, new or after an edit)
  pages CronwardenTaskNotReady to its owner after the rule's 10 minutes; a
  suspended one does not page; fixing the zone resolves the page;
- two operator replicas with leader election, whose leader is frozen (SIGSTOP)
  and whose standby has lost its RBAC for the Lease, page
  CronwardenOperatorNoLeader after the rule's 2 minutes; the leader thawing
  resolves it;
- an operator killed (SIGKILL) and started again twice on the same scrape target,
  as a crash-looping pod is, pages CronwardenOperatorRestarting;
- a run whose pods Pod Security `enforce=restricted` refuses (a privileged
  container) pages CronwardenTaskPodsNotAdmitted to the task's owner within 2
  minutes of its Job's creation, and CronwardenTaskBlocked does not page too.

The rules' `for:` durations are the shipped ones, as in test_alerting.py (only
scrape, evaluation and Alertmanager intervals are short), so the NotReady test
takes about 11 minutes.
"""

from __future__ import annotations

import functools
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.alerting import OPERATOR_NAMESPACE, render_chart
from tests.e2e.paging import paging, target
from tests.e2e.support import (
    STATE_DIR,
    Cluster,
    Kubectl,
    Operator,
    condition_of,
    free_port,
    launch_operator,
    stop_operator,
    wait_for,
    watching,
)
from tests.e2e.test_alerting import PAGE_SLACK, RUNBOOKS
from tests.e2e.test_detection import parse_time
from tests.e2e.test_helm import token_kubeconfig
from tests.e2e.test_not_admitted import REFUSED, pod_security, privileged
from tests.e2e.test_scheduledtask import every_minute

NOT_READY = "CronwardenTaskNotReady"
NOT_ADMITTED = "CronwardenTaskPodsNotAdmitted"
# From the cause (the refused run's Job is created) to the page, at most (issue 16).
NOT_ADMITTED_LIMIT = 120
NO_LEADER = "CronwardenOperatorNoLeader"
RESTARTING = "CronwardenOperatorRestarting"
UNKNOWN_ZONE = "Mars/Olympus_Mons"


@pytest.fixture
def own_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace outside the shared operators' e2e-gw*-*."""
    name = f"cw-stops-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "cronwarden.io/e2e-test=true")

    def has_default_sa() -> bool:
        return kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0

    wait_for(has_default_sa, timeout=30, what=f"the default ServiceAccount in {name}")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def task(name: str, owner: str, **spec: Any) -> dict[str, Any]:
    """A per-minute task without successDeadlineSeconds (unset by default), so that
    only NotReady can page for a task that never runs."""
    manifest = every_minute(name, owner=owner, runbookURL=f"{RUNBOOKS}/{name}", **spec)
    manifest["spec"].pop("successDeadlineSeconds", None)
    return manifest


def not_ready(cluster: Cluster, name: str, reason: str) -> dict[str, Any] | None:
    ready = condition_of(cluster.task(name), "Ready")
    return ready if ready and (ready["status"], ready["reason"]) == ("False", reason) else None


@pytest.mark.long(620)
def test_a_task_that_cannot_run_pages_its_owner_until_it_is_fixed(
    kubectl: Kubectl,
    kubeconfig: Path,
    crd: str,
    own_namespace: str,
    record_property: pytest.RecordProperty,
) -> None:
    ns = own_namespace
    cluster = Cluster(kubectl, ns)
    operator = launch_operator(watching(ns), kubeconfig, ns)
    workdir = STATE_DIR / "logs" / f"alerting-{ns}"
    try:
        with paging({"cw-cronwarden-0": target(operator.metrics_url)}, workdir, "stops") as stack:
            hold = stack.hold(NOT_READY)
            assert hold == 600, "the shipped for: of CronwardenTaskNotReady"
            # A task that worked until an edit set an unknown zone: its CronJob stays.
            cluster.apply(task("edited", "team-a"))
            cluster.wait_ready("edited", timeout=60)
            cause: dict[str, float] = {}
            cause["edited"] = time.time()
            cluster.apply(task("edited", "team-a", timeZone=UNKNOWN_ZONE))
            # A new task with a typo in its zone, and a suspended one.
            cause["typo"] = time.time()
            cluster.apply(task("typo", "team-b", timeZone=UNKNOWN_ZONE))
            cluster.apply(task("paused", "team-b", timeZone=UNKNOWN_ZONE, suspend=True))

            for name in ("edited", "typo", "paused"):
                wait_for(
                    functools.partial(not_ready, cluster, name, "UnknownTimeZone"),
                    timeout=30,
                    what=f"{name}: Ready=False, UnknownTimeZone",
                )
            edited = not_ready(cluster, "edited", "UnknownTimeZone")
            assert edited is not None
            keeps = "CronJob edited keeps running on the spec it was last applied with"
            assert keeps in edited["message"], edited
            cronjob = cluster.get("cronjob", "edited")
            assert cronjob is not None
            assert cronjob["spec"]["timeZone"] == "Etc/UTC", "the last good CronJob is kept"
            typo = not_ready(cluster, "typo", "UnknownTimeZone")
            assert typo is not None
            assert "keeps running" not in typo["message"]
            assert cluster.get("cronjob", "typo") is None

            # The rule is pending, not firing, well before its 10 minutes.
            def pending() -> set[str]:
                rule = stack.prometheus.alerting_rule(NOT_READY)
                return {a["labels"]["name"] for a in rule["alerts"] if a["state"] == "pending"}

            wait_for(
                lambda: pending() == {"edited", "typo"},
                timeout=60,
                what=f"{NOT_READY} pending for edited and typo",
            )
            assert time.time() - cause["edited"] < hold / 2
            assert not stack.pages(NOT_READY)

            expected = {(ns, "edited"), (ns, "typo")}
            fired = wait_for(
                lambda: p if set(p := stack.pages(NOT_READY)) == expected else None,
                timeout=hold + PAGE_SLACK + 60,
                what=f"{NOT_READY} for {sorted(expected)} at the webhook",
            )
            for name, owner in (("edited", "team-a"), ("typo", "team-b")):
                page = fired[(ns, name)]
                latency = page.arrived - cause[name]
                print(f"{NOT_READY} {ns}/{name}: webhook {latency:.1f}s after the apply")
                record_property(f"not_ready_page_latency_seconds {name}", round(latency, 1))
                assert hold <= latency <= hold + PAGE_SLACK
                assert page.path == f"/{owner}", "routed on owner to the task's team"
                assert {
                    "alertname": NOT_READY,
                    "namespace": ns,
                    "name": name,
                    "owner": owner,
                    "runbook_url": f"{RUNBOOKS}/{name}",
                    "schedule": "* * * * *",
                    "severity": "warning",
                }.items() <= page.labels.items(), page.labels
                description = page.annotations["description"]
                assert "(reason UnknownTimeZone)" in description, description
                assert f"Owner: {owner}." in description, description
                assert f"kubectl cronwarden why {name} -n {ns}" in description, description

            # Fixed: Ready again, and the owner gets the resolution.
            fixed = time.time()
            cluster.apply(task("typo", "team-b", timeZone="Europe/Berlin"))
            cluster.wait_ready("typo", generation=2, timeout=30)
            resolved = wait_for(
                lambda: stack.pages(NOT_READY, "resolved").get((ns, "typo")),
                timeout=PAGE_SLACK,
                what=f"the resolved {NOT_READY} for typo",
            )
            assert resolved.path == "/team-b"
            print(f"resolved {ns}/typo: {resolved.arrived - fixed:.1f}s after the fix")

            # Nothing else paged: not the suspended task, no other alert.
            unexpected = [
                r
                for r in stack.receiver.received()
                if r.labels.get("alertname") != NOT_READY
                or (r.labels.get("namespace"), r.labels.get("name")) not in expected
            ]
            assert not unexpected, unexpected
    finally:
        stop_operator(operator)


def stop_all(operators: list[Operator]) -> None:
    """Stop every one, even when stopping an earlier one fails."""
    failures = []
    for op in operators:
        try:
            stop_operator(op)
        except AssertionError as err:
            failures.append(str(err))
    assert not failures, failures


def lease_holder(kubectl: Kubectl, namespace: str, lease: str) -> str:
    proc = kubectl(
        "-n", namespace, "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}", check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def test_no_active_replica_pages_no_leader(
    kubectl: Kubectl,
    kubeconfig: Path,
    crd: str,
    own_namespace: str,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    """Two replicas as the chart runs them with highAvailability (its arguments, its
    least-privilege RBAC for the standby). The leader is frozen after the standby
    lost its RBAC for the Lease: both are scraped, neither is active."""
    ns = own_namespace
    chart = render_chart(
        "watch.allNamespaces=false",
        f"watch.namespaces={{{ns}}}",
        "highAvailability.enabled=true",
        "replicaCount=2",
        namespace=ns,
    )
    [deployment] = [d for d in chart if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    election = [a for a in container["args"] if a.startswith("--leader-election")]
    lease = next(a.split("=", 1)[1] for a in election if a.startswith("--leader-election-id="))
    rbac = [d for d in chart if d["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    [account] = [d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount"]
    [lease_binding] = [
        d["metadata"]["name"]
        for d in rbac
        if d["kind"] == "RoleBinding" and d["roleRef"]["name"].endswith("-leader-election")
    ]
    for obj in rbac:
        Cluster(kubectl, ns).apply(obj)
    as_sa = token_kubeconfig(kubectl, ns, account, tmp_path / "sa")

    args = [*watching(ns), *election]
    replicas = {"leader": launch_operator(args, kubeconfig, f"{ns}-leader", {"POD_NAME": "leader"})}
    frozen = False
    try:
        wait_for(
            lambda: lease_holder(kubectl, ns, lease).startswith("leader_"),
            timeout=30,
            what="the first replica to hold the Lease",
        )
        replicas["standby"] = launch_operator(
            args, as_sa.kubeconfig, f"{ns}-standby", {"POD_NAME": "standby"}
        )
        targets = {f"cw-cronwarden-{pod}": target(op.metrics_url) for pod, op in replicas.items()}
        with paging(targets, STATE_DIR / "logs" / f"alerting-{ns}", "ha") as stack:
            hold = stack.hold(NO_LEADER)
            assert hold == 120, "the shipped for: of CronwardenOperatorNoLeader"

            def scraped(expr: str, value: float) -> bool:
                found = stack.prometheus.query(expr)
                return len(found) == 1 and float(found[0]["value"][1]) == value

            wait_for(
                lambda: (
                    scraped('count(up{job="cronwarden"} == 1)', 2)
                    and scraped('sum(cronwarden_operator_active{job="cronwarden"})', 1)
                ),
                timeout=30,
                what="both replicas up, one active",
            )

            # An evaluation between the two replicas' first scrapes (the standby's 0
            # alone) leaves the alert pending until the next one: wait for that.
            def quiet() -> bool:
                rule = stack.prometheus.alerting_rule(NO_LEADER)
                return bool(rule["health"] == "ok" and rule["alerts"] == [])

            wait_for(quiet, timeout=30, what=f"{NO_LEADER} neither pending nor firing")

            # The standby loses its RBAC for the Lease, then the leader freezes.
            kubectl("-n", ns, "delete", "rolebinding", lease_binding)
            can = as_sa("auth", "can-i", "update", f"leases/{lease}", "-n", ns, check=False)
            assert can.stdout.strip() == "no", can.stdout + can.stderr
            holder = lease_holder(kubectl, ns, lease)
            os.kill(replicas["leader"].process.pid, signal.SIGSTOP)
            frozen = True
            stopped = time.time()

            page = wait_for(
                lambda: stack.first(NO_LEADER),
                timeout=hold + PAGE_SLACK + 30,
                what=f"{NO_LEADER} at the webhook",
            )
            latency = page.arrived - stopped
            print(f"{NO_LEADER}: webhook {latency:.1f}s after the leader froze")
            record_property("no_leader_page_latency_seconds", round(latency, 1))
            assert hold <= latency <= hold + PAGE_SLACK
            assert page.path == "/default", "no owner: the operator's own receiver"
            assert {
                "alertname": NO_LEADER,
                "namespace": OPERATOR_NAMESPACE,
                "job": "cronwarden",
                "severity": "critical",
            }.items() <= page.labels.items(), page.labels
            # Nobody took the Lease over: the standby tried and was refused.
            assert lease_holder(kubectl, ns, lease) == holder
            assert replicas["standby"].forbidden(()), "the standby's refused Lease requests"
            assert "became the leader" not in replicas["standby"].log()

            # The leader thaws, renews the Lease it still holds, and is active again.
            os.kill(replicas["leader"].process.pid, signal.SIGCONT)
            frozen = False
            thawed = time.time()
            resolved = wait_for(
                lambda: stack.first(NO_LEADER, "resolved"),
                timeout=PAGE_SLACK + 30,
                what=f"the resolved {NO_LEADER}",
            )
            print(f"resolved {NO_LEADER}: {resolved.arrived - thawed:.1f}s after the thaw")
            unexpected = [
                r for r in stack.receiver.received() if r.labels.get("alertname") != NO_LEADER
            ]
            assert not unexpected, unexpected
    finally:
        if frozen:
            os.kill(replicas["leader"].process.pid, signal.SIGCONT)
        stop_all(list(replicas.values()))


def start_time(operator: Operator) -> float:
    """process_start_time_seconds as the operator exports it."""
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if sample.name == "process_start_time_seconds":
                return float(sample.value)
    raise AssertionError("process_start_time_seconds is not exported")


def test_a_crash_looping_operator_pages_restarting(
    kubeconfig: Path, crd: str, own_namespace: str, record_property: pytest.RecordProperty
) -> None:
    """A crash loop keeps the pod, and so the scrape target: the same metrics port
    here. `up` is 1 for most scrapes, so CronwardenOperatorDown cannot fire; the
    start time that changes does."""
    ns = own_namespace
    port = free_port()
    launches = [launch_operator(watching(ns), kubeconfig, f"{ns}-0", metrics_port=port)]
    try:
        with paging(
            {"cw-cronwarden-0": f"127.0.0.1:{port}"}, STATE_DIR / "logs" / f"alerting-{ns}", "loop"
        ) as stack:

            def scraped_start() -> float | None:
                found = stack.prometheus.query('process_start_time_seconds{job="cronwarden"}')
                return float(found[0]["value"][1]) if len(found) == 1 else None

            crashed = 0.0
            for restart in (1, 2):
                current = launches[-1]
                expected = start_time(current)
                wait_for(
                    lambda expected=expected: scraped_start() == expected,
                    timeout=30,
                    what=f"Prometheus to scrape process {restart}",
                )
                assert stack.first(RESTARTING) is None
                current.process.kill()
                current.process.wait(timeout=30)
                current.stopped = True
                crashed = time.time()
                launches.append(
                    launch_operator(watching(ns), kubeconfig, f"{ns}-{restart}", metrics_port=port)
                )
            # The second restart is seen at the first scrape of the third process.
            expected = start_time(launches[-1])
            page = wait_for(
                lambda: stack.first(RESTARTING), timeout=PAGE_SLACK, what=f"{RESTARTING}"
            )
            latency = page.arrived - crashed
            print(f"{RESTARTING}: webhook {latency:.1f}s after the second crash")
            record_property("restarting_page_latency_seconds", round(latency, 1))
            assert scraped_start() == expected
            assert page.path == "/default"
            assert {
                "alertname": RESTARTING,
                "namespace": OPERATOR_NAMESPACE,
                "job": "cronwarden",
                "severity": "critical",
            }.items() <= page.labels.items(), page.labels
            assert "restarted 2 times in the last 15 minutes" in page.annotations["description"]
            unexpected = [
                r for r in stack.receiver.received() if r.labels.get("alertname") != RESTARTING
            ]
            assert not unexpected, unexpected
    finally:
        stop_all(launches)


@pytest.mark.long(100)
def test_refused_pods_page_pods_not_admitted_within_two_minutes(
    kubectl: Kubectl,
    kubeconfig: Path,
    crd: str,
    own_namespace: str,
    record_property: pytest.RecordProperty,
) -> None:
    """Pod Security `enforce=restricted` refuses the pods of a task's first run: the
    Job exists, the Job controller posts FailedCreate, no pod exists. The owner gets
    CronwardenTaskPodsNotAdmitted: the operator's detection (the Event) plus the
    rule's `for: 1m`, well before the next slot would have told."""
    ns = own_namespace
    cluster = Cluster(kubectl, ns)
    pod_security(kubectl, ns, "enforce", "restricted")
    operator = launch_operator(watching(ns), kubeconfig, ns)
    try:
        with paging(
            {"cw-cronwarden-0": target(operator.metrics_url)},
            STATE_DIR / "logs" / f"alerting-{ns}",
            "admission",
        ) as stack:
            hold = stack.hold(NOT_ADMITTED)
            assert hold == 60, "the shipped for: of CronwardenTaskPodsNotAdmitted"
            manifest = privileged("refused", owner="team-a", runbookURL=f"{RUNBOOKS}/refused")
            manifest["spec"].pop("successDeadlineSeconds", None)
            cluster.apply(manifest)
            [job] = wait_for(
                lambda: cluster.list("jobs", "cronwarden.io/task=refused"),
                timeout=100,
                what="the first run's Job",
            )
            cause = parse_time(job["metadata"]["creationTimestamp"]).timestamp()

            page = wait_for(
                lambda: stack.pages(NOT_ADMITTED).get((ns, "refused")),
                timeout=NOT_ADMITTED_LIMIT + PAGE_SLACK,
                what=f"{NOT_ADMITTED} at the webhook",
            )
            latency = page.arrived - cause
            print(f"{NOT_ADMITTED} {ns}/refused: webhook {latency:.1f}s after the Job's creation")
            record_property("pods_not_admitted_page_latency_seconds", round(latency, 1))
            # The Job's creationTimestamp has whole seconds: up to 1 s early.
            assert hold - 1 <= latency <= NOT_ADMITTED_LIMIT
            assert page.path == "/team-a", "routed on owner to the task's team"
            assert {
                "alertname": NOT_ADMITTED,
                "namespace": ns,
                "name": "refused",
                "owner": "team-a",
                "runbook_url": f"{RUNBOOKS}/refused",
                "schedule": "* * * * *",
                "severity": "warning",
            }.items() <= page.labels.items(), page.labels
            description = page.annotations["description"]
            assert description.startswith("1 run(s) of " + f"{ns}/refused"), description
            assert f"kubectl cronwarden why refused -n {ns}" in description, description
            blocked = condition_of(cluster.task("refused"), "Blocked")
            assert blocked is not None
            assert (blocked["status"], blocked["reason"]) == ("True", "PodsNotAdmitted")
            assert REFUSED in blocked["message"]

            # One page, named after the cause: not CronwardenTaskBlocked as well.
            unexpected = [
                r for r in stack.receiver.received() if r.labels.get("alertname") != NOT_ADMITTED
            ]
            assert not unexpected, unexpected
    finally:
        stop_operator(operator)
