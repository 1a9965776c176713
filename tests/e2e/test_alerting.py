"""The page, end to end, with real servers.

The operator runs against the local control plane; Prometheus scrapes it with the
scrape config the Prometheus Operator generates from the chart's ServiceMonitor
and evaluates the chart's alert rules (see tests/e2e/alerting.py); Alertmanager
routes on `owner` to a webhook receiver inside the test. Stopping
kube-controller-manager makes per-minute tasks miss a run: the receiver must get
CronwardenTaskMissedRun for each of them, with the task's namespace, name, owner
and runbook, and then a resolved notification once the controller manager is
back.

A second Prometheus scrapes the same operator with the ServiceMonitor as the
chart had it before `honorLabels: true`. It shows why the chart needs that: the
task's `namespace` label becomes `exported_namespace` and `namespace` is the
operator's, so with two tasks named `nightly` in two namespaces the rule either
fails with duplicate series (rules that join as is) or, with the shipped rules
(which aggregate by namespace and name), pages under the operator's namespace
with the two tasks merged into one alert for one of the two owners.
"""

from __future__ import annotations

import copy
import functools
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.alerting import (
    OPERATOR_NAMESPACE,
    Alertmanager,
    Prometheus,
    Received,
    WebhookReceiver,
    alertmanager_config,
    discovered_labels,
    duration_seconds,
    one,
    prometheus_config,
    render_chart,
    scrape_config,
)
from tests.e2e.support import (
    STATE_DIR,
    Cluster,
    Kubectl,
    Operator,
    condition_of,
    launch_operator,
    stop_operator,
    wait_for,
    watching,
)
from tests.e2e.test_detection import component, parse_time
from tests.e2e.test_scheduledtask import RUN_TIMEOUT, every_minute, hung

MISSED = "CronwardenTaskMissedRun"
BLOCKED = "CronwardenTaskBlocked"
GRACE = 10
# Scrape and evaluate every few seconds instead of every 30 s; the rules' `for:`
# durations are the shipped ones.
SCRAPE_INTERVAL, SCRAPE_TIMEOUT, EVALUATION_INTERVAL = "2s", "1s", "1s"
GROUP_WAIT, GROUP_INTERVAL = "1s", "2s"
# From the time the rule fires to the webhook: a scrape, an evaluation, group_wait
# and the operator's own detection (about a second), with room for a busy machine.
PAGE_SLACK = 30
FIXED, OLD = "monitoring/fixed-chart", "monitoring/old-chart"
OWNERS = ["team-a", "team-b"]
RUNBOOKS = "https://runbooks.example.com"


@dataclass(frozen=True)
class Task:
    namespace: str
    name: str
    owner: str
    runbook: str
    suspend: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def manifest(self) -> dict[str, Any]:
        return every_minute(
            self.name,
            owner=self.owner,
            runbookURL=self.runbook,
            missedRunGraceSeconds=GRACE,
            suspend=self.suspend,
        )


@pytest.fixture
def alert_namespaces(kubectl: Kubectl) -> Iterator[tuple[str, str, str]]:
    """A prefix and two fresh namespaces `<prefix>-a` and `<prefix>-b`, outside the
    session operator's e2e-gw*-* so that only this test's operator reconciles them."""
    prefix = f"cw-alert-{uuid.uuid4().hex[:8]}"
    names = (f"{prefix}-a", f"{prefix}-b")
    for name in names:
        kubectl("create", "namespace", name)
        kubectl("label", "namespace", name, "cronwarden.io/e2e-test=true")

    def has_default_sa(name: str) -> bool:
        return kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0

    for name in names:
        wait_for(
            functools.partial(has_default_sa, name),
            timeout=30,
            what=f"the default ServiceAccount in {name}",
        )
    yield prefix, *names
    for name in names:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


def rendered_monitoring() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The chart's ServiceMonitor, metrics Service, Deployment and PrometheusRule,
    with a short scrape interval (chart values, as a user would set them)."""
    manifest = render_chart(
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        f"metrics.serviceMonitor.interval={SCRAPE_INTERVAL}",
        f"metrics.serviceMonitor.scrapeTimeout={SCRAPE_TIMEOUT}",
    )
    return (
        one(manifest, "ServiceMonitor"),
        one(manifest, "Service"),
        one(manifest, "Deployment"),
        one(manifest, "PrometheusRule"),
    )


def as_before_the_fix(monitor: dict[str, Any]) -> dict[str, Any]:
    """The ServiceMonitor as the chart rendered it before honorLabels: true."""
    old = copy.deepcopy(monitor)
    for endpoint in old["spec"]["endpoints"]:
        del endpoint["honorLabels"]
    return old


@dataclass
class Stack:
    """An operator watching two namespaces, scraped by two Prometheus servers
    (the chart's ServiceMonitor, and the same before honorLabels: true), both
    sending to one Alertmanager that routes on `owner` to a webhook receiver."""

    namespaces: tuple[str, str]
    clusters: dict[str, Cluster]
    operator: Operator
    target: str
    discovered: dict[str, str]
    service: dict[str, Any]
    rules: dict[str, Any]
    receiver: WebhookReceiver
    fixed: Prometheus
    old: Prometheus

    def rule(self, alert: str) -> dict[str, Any]:
        rules: list[dict[str, Any]] = [
            r for g in self.rules["groups"] for r in g["rules"] if r.get("alert") == alert
        ]
        assert len(rules) == 1, f"{len(rules)} rules for {alert}"
        return rules[0]


@pytest.fixture
def stack(
    kubectl: Kubectl,
    kubeconfig: Path,
    crd: str,
    alert_namespaces: tuple[str, str, str],
    tmp_path: Path,
) -> Iterator[Stack]:
    prefix, ns_a, ns_b = alert_namespaces
    monitor, service, deployment, prometheus_rule = rendered_monitoring()
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    workdir = STATE_DIR / "logs" / f"alerting-{prefix}"
    workdir.mkdir(parents=True, exist_ok=True)
    rule_file = workdir / "rules.yaml"
    # What the Prometheus Operator mounts for a PrometheusRule: its spec.
    rule_file.write_text(yaml.safe_dump(prometheus_rule["spec"], sort_keys=False))

    with ExitStack() as cleanup:
        operator = launch_operator(watching(f"{prefix}-*"), kubeconfig, prefix)
        cleanup.callback(stop_operator, operator)
        target = operator.metrics_url.removeprefix("http://").removesuffix("/metrics")
        discovered = discovered_labels(service, deployment)

        receiver = WebhookReceiver()
        cleanup.callback(receiver.close)
        alertmanager = Alertmanager(
            alertmanager_config(
                receiver, OWNERS, group_wait=GROUP_WAIT, group_interval=GROUP_INTERVAL
            ),
            tmp_path / "alertmanager",
        )
        cleanup.callback(alertmanager.stop)

        def start_prometheus(name: str, monitor: dict[str, Any]) -> Prometheus:
            config = prometheus_config(
                scrape_config(monitor, 0, target, discovered),
                rule_file,
                alertmanager,
                external_labels={"prometheus": name},
                evaluation_interval=EVALUATION_INTERVAL,
            )
            server = Prometheus(name, config, workdir / name.replace("/", "-"))
            cleanup.callback(server.stop)
            return server

        yield Stack(
            namespaces=(ns_a, ns_b),
            clusters={ns: Cluster(kubectl, ns) for ns in (ns_a, ns_b)},
            operator=operator,
            target=target,
            discovered=discovered,
            service=service,
            rules=prometheus_rule["spec"],
            receiver=receiver,
            fixed=start_prometheus(FIXED, monitor),
            old=start_prometheus(OLD, as_before_the_fix(monitor)),
        )


def pages(
    received: list[Received], prometheus: str, status: str, alert: str = MISSED
) -> dict[tuple[str, str], Received]:
    """The first `alert` per (namespace, name) from one Prometheus, by status."""
    found: dict[tuple[str, str], Received] = {}
    for r in received:
        if (r.labels.get("alertname"), r.labels.get("prometheus"), r.status) == (
            alert,
            prometheus,
            status,
        ):
            found.setdefault((r.labels["namespace"], r.labels["name"]), r)
    return found


def series(prometheus: Prometheus, expr: str) -> list[dict[str, str]]:
    return [s["metric"] for s in prometheus.query(expr)]


@pytest.mark.disruptive
def test_missed_run_pages_the_owner_and_resolves(
    stack: Stack, record_property: pytest.RecordProperty
) -> None:
    started = time.monotonic()
    ns_a, ns_b = stack.namespaces
    clusters, receiver, fixed, old = stack.clusters, stack.receiver, stack.fixed, stack.old
    paging = [
        Task(ns_a, "nightly", "team-a", f"{RUNBOOKS}/a/nightly"),
        Task(ns_b, "nightly", "team-b", f"{RUNBOOKS}/b/nightly"),
        Task(ns_a, "report", "team-a", f"{RUNBOOKS}/a/report"),
    ]
    # Suspended: no run is due, so no page.
    paused = Task(ns_b, "paused", "team-b", f"{RUNBOOKS}/b/paused", suspend=True)
    hold = duration_seconds(stack.rule(MISSED).get("for", "0s"))

    for task in [*paging, paused]:
        clusters[task.namespace].apply(task.manifest())
    for task in [*paging, paused]:
        clusters[task.namespace].wait_ready(task.name, timeout=60)

    # 1. Healthy: every task has run; both Prometheus servers scrape the operator.
    last_run: dict[tuple[str, str], float] = {}
    for task in paging:
        status = clusters[task.namespace].wait_task(
            task.name,
            lambda t: t.get("status", {}).get("succeeded", 0) >= 1,
            timeout=RUN_TIMEOUT,
            what="a first successful run",
        )["status"]
        last_run[task.key] = parse_time(status["lastScheduleTime"]).timestamp()

    every_task = {t.key for t in [*paging, paused]}

    def exported(prometheus: Prometheus, namespace_label: str) -> bool:
        found = series(prometheus, 'cronwarden_task_info{job="cronwarden"}')
        return {(s.get(namespace_label, ""), s["name"]) for s in found} == every_task

    wait_for(lambda: exported(fixed, "namespace"), timeout=30, what="the fixed scrape")
    wait_for(lambda: exported(old, "exported_namespace"), timeout=30, what="the old scrape")

    # The target labels are those the Prometheus Operator sets for the chart's pod.
    [up] = series(fixed, 'up{job="cronwarden"} == 1')
    assert up == {
        "__name__": "up",
        "job": "cronwarden",
        "namespace": OPERATOR_NAMESPACE,
        "service": stack.service["metadata"]["name"],
        "pod": stack.discovered["__meta_kubernetes_pod_name"],
        "container": "operator",
        "endpoint": "metrics",
        "instance": stack.target,
    }
    # With honorLabels the task's namespace wins; without, it is renamed.
    for s in series(fixed, 'cronwarden_task_info{name="nightly"}'):
        assert s["namespace"] in (ns_a, ns_b), s
        assert "exported_namespace" not in s, s
    for s in series(old, 'cronwarden_task_info{name="nightly"}'):
        assert s["namespace"] == OPERATOR_NAMESPACE, s
        assert s["exported_namespace"] in (ns_a, ns_b), s
    for prometheus in (fixed, old):
        rule = prometheus.alerting_rule(MISSED)
        assert rule["health"] == "ok", (prometheus.name, rule)
        assert not rule["alerts"], (prometheus.name, rule)
    assert receiver.received() == []

    # 2. kube-controller-manager down: the next slot of every task is missed. The
    # slot after each CronJob's last scheduled one as the cluster has it once the
    # controller is stopped (the waits above can outlast a slot or two).
    stopped = time.time()
    component("stop-component", "kube-controller-manager")
    try:
        slot: dict[tuple[str, str], float] = {}
        for task in paging:
            cronjob = clusters[task.namespace].get("cronjob", task.name)
            assert cronjob is not None, f"{task.namespace}/{task.name}: no CronJob"
            scheduled = parse_time(cronjob["status"]["lastScheduleTime"]).timestamp()
            assert scheduled >= last_run[task.key], "the CronJob's schedule went back"
            slot[task.key] = scheduled + 60
        assert all(stopped < s for s in slot.values()), (
            f"a slot passed without a Job before kube-controller-manager stopped: "
            f"{stopped} vs {slot}"
        )
        expected = {t.key for t in paging}
        fired = wait_for(
            lambda: (
                p if set(p := pages(receiver.received(), FIXED, "firing")) == expected else None
            ),
            timeout=max(slot.values()) - time.time() + GRACE + hold + PAGE_SLACK + 30,
            what=f"{MISSED} for {sorted(expected)} at the webhook",
        )
        for task in paging:
            page = fired[task.key]
            latency = page.arrived - slot[task.key]
            print(
                f"{MISSED} {task.namespace}/{task.name}: webhook {latency:.1f}s after the "
                f"missed slot (grace {GRACE}s, for {hold:.0f}s)"
            )
            record_property(f"page_latency_seconds {task.namespace}/{task.name}", latency)
            assert GRACE + hold <= latency <= GRACE + hold + PAGE_SLACK
            assert page.path == f"/{task.owner}", "routed on owner to the task's team"
            assert {
                "alertname": MISSED,
                "namespace": task.namespace,
                "name": task.name,
                "owner": task.owner,
                "runbook_url": task.runbook,
                "schedule": "* * * * *",
                "severity": "warning",
            }.items() <= page.labels.items(), page.labels
            assert page.annotations["runbook_url"] == task.runbook
            assert f"{task.namespace}/{task.name}" in page.annotations["summary"]
            status = clusters[task.namespace].task(task.name)["status"]
            assert parse_time(status["lastMissedTime"]).timestamp() >= slot[task.key]
            assert parse_time(page.starts_at).timestamp() >= slot[task.key] + GRACE

        # The ServiceMonitor before the fix: every series names the operator's
        # namespace. Rules that join on (namespace, name) as is fail with duplicate
        # series; rules that aggregate by (namespace, name) first (as the shipped
        # ones do, for operator replicas) page under the operator's namespace, the
        # two `nightly` tasks merged into one alert with one of the two owners.
        names = {t.name for t in paging}

        def old_outcome() -> dict[tuple[str, str], Received] | str | None:
            rule = old.alerting_rule(MISSED)
            if rule["health"] == "err":
                return str(rule["lastError"])
            found = pages(receiver.received(), OLD, "firing")
            return found if len(found) >= len(names) else None

        outcome = wait_for(old_outcome, timeout=PAGE_SLACK, what="the old ServiceMonitor's pages")
        if isinstance(outcome, str):
            print(f"without honorLabels the rule fails: {outcome}")
            assert "duplicate series" in outcome
            assert not pages(receiver.received(), OLD, "firing")
        else:
            print(
                "without honorLabels: "
                + "; ".join(
                    f"{ns}/{name} owner={r.labels['owner']} to {r.path}"
                    for (ns, name), r in sorted(outcome.items())
                )
            )
            assert set(outcome) == {(OPERATOR_NAMESPACE, name) for name in names}
            # Three late tasks, two pages: one owner of a `nightly` is not paged for it.
            assert outcome[(OPERATOR_NAMESPACE, "nightly")].labels["owner"] in OWNERS
    finally:
        component("start-component", "kube-controller-manager")
    back = time.time()

    # 3. The controller manager is back: it starts the missed slot, Late clears,
    # and each alert resolves at its owner's webhook.
    resolved = wait_for(
        lambda: p if set(p := pages(receiver.received(), FIXED, "resolved")) == expected else None,
        timeout=RUN_TIMEOUT + PAGE_SLACK,
        what=f"resolved {MISSED} notifications",
    )
    for task in paging:
        assert resolved[task.key].path == f"/{task.owner}"
        late = condition_of(clusters[task.namespace].task(task.name), "Late")
        assert late is not None
        assert late["status"] == "False"
        print(
            f"resolved {task.namespace}/{task.name}: "
            f"{resolved[task.key].arrived - back:.1f}s after kube-controller-manager restarted"
        )

    # Nothing else paged: not the suspended task, no other alert.
    allowed = {(FIXED, key) for key in expected} | {
        (OLD, (OPERATOR_NAMESPACE, name)) for name in names
    }
    unexpected = [
        r
        for r in receiver.received()
        if r.labels.get("alertname") != MISSED
        or (r.labels.get("prometheus"), (r.labels["namespace"], r.labels["name"])) not in allowed
    ]
    assert not unexpected, unexpected
    elapsed = time.monotonic() - started
    print(f"alerting end to end: {elapsed:.0f}s")
    record_property("duration_seconds", round(elapsed))


@pytest.mark.long(150)
def test_a_hung_run_pages_blocked_and_resolves_when_it_ends(
    stack: Stack, record_property: pytest.RecordProperty
) -> None:
    """A run that never ends (its pod can never be scheduled) holds back the next slot
    under Forbid: CronwardenTaskBlocked reaches the owner; deleting the hung Job lets
    the next slot run, and the alert resolves."""
    ns = stack.namespaces[0]
    cluster = stack.clusters[ns]
    owner, runbook = "team-a", f"{RUNBOOKS}/a/wedged"
    cluster.apply(hung("wedged", owner=owner, runbookURL=runbook, missedRunGraceSeconds=GRACE))
    first = cluster.wait_task(
        "wedged",
        lambda t: bool(t.get("status", {}).get("active")),
        timeout=RUN_TIMEOUT,
        what="the first run to start and hang",
    )
    [job] = first["status"]["active"]
    hold = duration_seconds(stack.rule(BLOCKED).get("for", "0s"))
    key = (ns, "wedged")
    fired = wait_for(
        lambda: pages(stack.receiver.received(), FIXED, "firing", BLOCKED).get(key),
        timeout=60 + GRACE + hold + PAGE_SLACK + 30,
        what=f"{BLOCKED} at the owner's webhook",
    )
    assert fired.path == f"/{owner}"
    assert {
        "alertname": BLOCKED,
        "namespace": ns,
        "name": "wedged",
        "owner": owner,
        "runbook_url": runbook,
    }.items() <= fired.labels.items(), fired.labels
    blocked = condition_of(cluster.task("wedged"), "Blocked")
    assert blocked is not None
    assert blocked["status"] == "True"
    since = parse_time(blocked["lastTransitionTime"]).timestamp()
    print(f"{BLOCKED}: webhook {fired.arrived - since:.1f}s after Blocked=True (for {hold:.0f}s)")
    record_property("blocked_page_after_condition_seconds", round(fired.arrived - since, 1))

    cluster.kubectl("-n", ns, "delete", "job", job, "--wait=false")
    wait_for(
        lambda: pages(stack.receiver.received(), FIXED, "resolved", BLOCKED).get(key),
        timeout=RUN_TIMEOUT + PAGE_SLACK,
        what=f"the resolved {BLOCKED} notification",
    )
