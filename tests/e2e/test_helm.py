"""The Helm chart against the real API server (RBAC and Pod Security admission on).

- The rendered manifests pass a server-side dry run (the API server's own
  schemas and admission for the pinned Kubernetes version).
- `helm install` creates the objects and the pod runs on a kwok node.
- The operator, run here with a token of the chart's ServiceAccount, reconciles
  a task end to end (the RBAC is enough), and the permissions the API server
  lists for that ServiceAccount equal tests/e2e/testdata/rbac-*.txt (it is not
  more than needed), in both namespace modes and with high availability.
- Two operators with the high-availability arguments elect one leader through
  the chart's Lease, and the other takes over when the leader stops.
- The pod template is admitted under the `restricted` Pod Security Standard.
- The operator, with the Deployment's arguments expanded as the kubelet does,
  answers the probes on the pod IP and `kubectl port-forward`'s connections on
  localhost; with operator.bindAddress=$(POD_IP), on the pod IP only. (The pods of
  this cluster are kwok's: no container runs, so a real `kubectl port-forward`
  into the operator's pod cannot be shown here.)

Every test works in namespaces of its own named cw-helm-*, which the session's
operator (watching e2e-gw*-*) does not watch, and in releases named per test,
so cluster-scoped objects (ClusterRole, ClusterRoleBinding, the admission policy
and its binding) never clash. The shared ScheduledTask CRD is never installed by
these releases (crds.install=false; the CRD template is proven with a server-side
dry run instead), and their admission policy is bound to no namespace, so that it
never refuses another test's tasks (what it enforces: tests/e2e/test_admission.py).
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.support import (
    BIN,
    ROOT,
    Cluster,
    Kubectl,
    Operator,
    condition_of,
    free_port,
    launch_operator,
    load_example,
    stop_operator,
    wait_for,
    worker_id,
)
from tests.e2e.test_scheduledtask import monitoring

CHART = ROOT / "helm" / "cronwarden"
TESTDATA = Path(__file__).parent / "testdata"
FIELD_MANAGER = "cronwarden-chart-test"
# Helm keeps a release revision in a Secret; the API server refuses objects over 1 MiB.
SECRET_LIMIT = 1024 * 1024
# The first slot of an every-minute task is at most 60 s away.
RUN_TIMEOUT = 100
# How long a freshly started operator may take to bring a task to Ready (it
# starts from discovery alone with exact namespace names; this is a deadline).
START_TIMEOUT = 150

Manifest = list[dict[str, Any]]


class Helm:
    """The helm built from the pinned module, bound to one kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "helm"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=240,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc


def set_args(values: dict[str, Any]) -> list[str]:
    """--set-json arguments for a flat {dotted.key: value} mapping."""
    args: list[str] = []
    for key, value in values.items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


@dataclass
class Release:
    helm: Helm
    name: str
    namespace: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def fullname(self) -> str:
        return f"{self.name}-cronwarden"

    def manifest(self) -> Manifest:
        out = self.helm("get", "manifest", self.name, "-n", self.namespace).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def operator_args(self) -> list[str]:
        [deployment] = [d for d in self.manifest() if d["kind"] == "Deployment"]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        args: list[str] = container["args"]
        return args


@pytest.fixture(scope="session")
def helm(kubeconfig: Path) -> Helm:
    return Helm(kubeconfig)


@pytest.fixture
def make_namespace(api: ApiClient) -> Iterator[Callable[..., str]]:
    """Namespaces of one test, named cw-helm-*, deleted afterwards."""
    core = client.CoreV1Api(api)
    created: list[str] = []

    def make(labels: dict[str, str] | None = None) -> str:
        name = f"cw-helm-{worker_id()}-{uuid.uuid4().hex[:6]}"
        meta = client.V1ObjectMeta(
            name=name, labels={"cronwarden.io/e2e-test": "true", **(labels or {})}
        )
        core.create_namespace(client.V1Namespace(metadata=meta))
        created.append(name)
        wait_for(
            lambda: any(
                sa.metadata is not None and sa.metadata.name == "default"
                for sa in core.list_namespaced_service_account(name).items
            ),
            timeout=30,
            what=f"the default ServiceAccount in {name}",
        )
        return name

    yield make
    for name in created:
        core.delete_namespace(name, propagation_policy="Background")


# A namespaceSelector that no namespace matches: the release's admission policy is
# installed but applies nowhere (the cluster is shared with concurrent tests).
NO_NAMESPACE = {"matchLabels": {"cronwarden.io/e2e-admission": "none"}}


@pytest.fixture
def install(helm: Helm, make_namespace: Callable[..., str]) -> Iterator[Callable[..., Release]]:
    """`helm install` of the chart with crds.install=false (the shared CRD is left
    alone), the admission policy bound to no namespace, and no ClusterRoles
    aggregated into the built-in view/edit/admin roles (they would change what every
    user bound to those roles may do while the test runs; test_admission.py installs
    them on its own terms); every release is uninstalled afterwards, before its
    namespaces go."""
    releases: list[Release] = []

    def install_(namespace: str, values: dict[str, Any] | None = None) -> Release:
        release = Release(helm, f"cw-{uuid.uuid4().hex[:8]}", namespace, values or {})
        releases.append(release)
        helm(
            "install",
            release.name,
            str(CHART),
            "--namespace",
            namespace,
            "--set",
            "crds.install=false",
            "--set",
            "rbac.aggregateClusterRoles=false",
            *set_args({"admissionPolicy.namespaceSelector": NO_NAMESPACE}),
            *set_args(release.values),
            "--wait",
            "--timeout",
            "120s",
        )
        return release

    yield install_
    for release in releases:
        helm("uninstall", release.name, "-n", release.namespace, "--wait", check=False)


# What `helm template` is told a cluster with the Prometheus Operator serves: without it
# the chart refuses to render a ServiceMonitor or PrometheusRule.
PROMETHEUS_OPERATOR = (
    "--api-versions=monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions=monitoring.coreos.com/v1/PrometheusRule",
)


def render(helm: Helm, namespace: str, values: dict[str, Any]) -> Manifest:
    """`helm template` as for a cluster with the Prometheus Operator's kinds (the dry
    run below leaves out the kinds this cluster does not serve)."""
    out = helm(
        "template",
        "cw",
        str(CHART),
        "--namespace",
        namespace,
        *PROMETHEUS_OPERATOR,
        *set_args(values),
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


# Tokens, kubeconfigs and permissions


def token_kubeconfig(kubectl: Kubectl, namespace: str, service_account: str, path: Path) -> Kubectl:
    """A kubeconfig that authenticates as the ServiceAccount with a bound token,
    as the operator does in its pod (kopf's kubeconfig login has no impersonation)."""
    token = kubectl(
        "-n", namespace, "create", "token", service_account, "--duration=2h"
    ).stdout.strip()
    admin = yaml.safe_load(kubectl.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": cluster["cluster"]}],
                "users": [{"name": service_account, "user": {"token": token}}],
                "contexts": [
                    {"name": "sa", "context": {"cluster": "local", "user": service_account}}
                ],
                "current-context": "sa",
            }
        )
    )
    path.chmod(0o600)
    return Kubectl(path)


def rules_review(as_user: Kubectl, namespace: str) -> set[str]:
    """What the API server says this user may do in `namespace` (cluster-wide
    grants included), one `resource.group/subresource[name] verb` line each."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    # --validate=false: client-side validation would need to list CRDs.
    out = as_user(
        "create", "--validate=false", "-o", "json", "-f", "-", input=json.dumps(review)
    ).stdout
    status = json.loads(out)["status"]
    assert not status.get("incomplete"), status.get("evaluationError")
    lines: set[str] = set()
    for rule in status["resourceRules"]:
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                base, _, sub = resource.partition("/")
                name = base + (f".{group}" if group else "") + (f"/{sub}" if sub else "")
                for resource_name in rule.get("resourceNames") or [""]:
                    suffix = f"[{resource_name}]" if resource_name else ""
                    lines |= {f"{name}{suffix} {verb}" for verb in rule["verbs"]}
    for rule in status.get("nonResourceRules") or []:
        lines |= {f"{url} {verb}" for url in rule["nonResourceURLs"] for verb in rule["verbs"]}
    return lines


def expected_permissions(name: str, lease: str) -> tuple[set[str], set[str]]:
    """The lines of testdata/rbac-NAME.txt: those granted in each watched namespace
    (every namespace in all-namespaces mode), and those after "[release namespace]",
    granted in the release namespace only."""
    text = (TESTDATA / f"rbac-{name}.txt").read_text()
    watched: set[str] = set()
    release: set[str] = set()
    section = watched
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line == "[release namespace]":
            section = release
        elif line:
            section.add(line.replace("{lease}", lease))
    return watched, release


@dataclass
class Permissions:
    """The chart ServiceAccount's permissions minus what every authenticated user
    (here: a ServiceAccount without bindings in the same namespace) already has."""

    chart: Kubectl
    nobody: Kubectl

    def extra(self, namespace: str) -> set[str]:
        baseline = rules_review(self.nobody, namespace)
        granted = rules_review(self.chart, namespace)
        assert baseline <= granted
        return granted - baseline


def permissions_of(kubectl: Kubectl, release: Release, tmp_path: Path) -> Permissions:
    kubectl("-n", release.namespace, "create", "serviceaccount", "nobody")
    return Permissions(
        chart=token_kubeconfig(kubectl, release.namespace, release.fullname, tmp_path / "sa"),
        nobody=token_kubeconfig(kubectl, release.namespace, "nobody", tmp_path / "nobody"),
    )


# The operator, out of cluster, as the chart's ServiceAccount


@pytest.fixture
def run_operator() -> Iterator[Callable[..., Operator]]:
    """Start `cronwarden run` with the chart's arguments and a token kubeconfig;
    stopped and checked afterwards."""
    started: list[Operator] = []

    def run(
        args: list[str], kubeconfig: Path, name: str, env: dict[str, str] | None = None
    ) -> Operator:
        op = launch_operator(args, kubeconfig, f"helm-{name}", env)
        started.append(op)
        return op

    yield run
    for op in started:
        stop_operator(op)


def nightly_task(name: str) -> dict[str, Any]:
    task = load_example("heartbeat")
    task["metadata"]["name"] = name
    return task


def every_minute_task(name: str) -> dict[str, Any]:
    task = nightly_task(name)
    task["spec"]["schedule"] = "* * * * *"
    return task


# Tests

# What a --all-namespaces operator lists and watches across the cluster (kopf).
CLUSTER_WIDE_WATCHES = (
    "/apis/cronwarden.io/v1alpha1/scheduledtasks",
    "/apis/batch/v1/cronjobs",
    "/apis/batch/v1/jobs",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
)

# The admission policy is on in each (a dry run creates nothing, so it refuses no
# other test's tasks).
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "all-namespaces-ha-monitoring": {
        "highAvailability.enabled": True,
        "replicaCount": 2,
        "podDisruptionBudget.enabled": True,
        "metrics.serviceMonitor.enabled": True,
        "metrics.prometheusRule.enabled": True,
        "metrics.grafanaDashboard.enabled": True,
        "metrics.networkPolicy.enabled": True,
        "tenancy.allowTasksInOperatorNamespace": True,
        "tenancy.allowTasksInKubeSystem": True,
    },
    "namespaces-ha": {
        "watch.allNamespaces": False,
        "highAvailability.enabled": True,
        "replicaCount": 2,
        "crds.keep": False,
        "tenancy.allowTasksInKubeSystem": True,
        "admissionPolicy.namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["dev"]}
            ]
        },
        "metrics.networkPolicy.enabled": True,
        "metrics.networkPolicy.from": [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
            {"ipBlock": {"cidr": "10.0.0.0/8"}},
        ],
    },
}


@pytest.mark.parametrize("values_name", list(VALUE_SETS))
def test_rendered_manifests_pass_a_server_side_dry_run(
    helm: Helm,
    kubectl: Kubectl,
    make_namespace: Callable[..., str],
    values_name: str,
) -> None:
    release_ns = make_namespace()
    values = dict(VALUE_SETS[values_name])
    if values.get("watch.allNamespaces") is False:
        values["watch.namespaces"] = [make_namespace(), make_namespace()]
    manifest = render(helm, release_ns, values)
    assert {
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    } <= {d["kind"] for d in manifest}

    # ServiceMonitor and PrometheusRule are validated by the API server only where
    # the Prometheus Operator CRDs are installed; the unit tests check their content.
    served = kubectl("api-resources", "--api-group=monitoring.coreos.com", "-o", "name").stdout
    unserved = {
        kind
        for kind, plural in (
            ("ServiceMonitor", "servicemonitors"),
            ("PrometheusRule", "prometheusrules"),
        )
        if plural not in served
    }
    checked = [d for d in manifest if d["kind"] not in unserved]

    proc = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        f"--field-manager={FIELD_MANAGER}",
        "-f",
        "-",
        input="\n---\n".join(yaml.safe_dump(d) for d in checked),
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == len(checked), proc.stdout
    assert all(line.endswith("(server dry run)") for line in lines), proc.stdout
    assert "Warning" not in proc.stderr, proc.stderr


def test_install_creates_the_objects_and_the_pod_runs_on_a_kwok_node(
    helm: Helm,
    kubectl: Kubectl,
    make_namespace: Callable[..., str],
    install: Callable[..., Release],
) -> None:
    ns = make_namespace()
    release = install(ns)
    name = release.fullname
    kinds = {(d["kind"], d["metadata"]["name"]) for d in release.manifest()}
    assert kinds == {
        ("ServiceAccount", name),
        ("ClusterRole", name),
        ("ClusterRoleBinding", name),
        ("Service", f"{name}-metrics"),
        ("Deployment", name),
        ("ValidatingAdmissionPolicy", name),
        ("ValidatingAdmissionPolicyBinding", name),
    }
    for kind, obj in sorted(kinds):
        kubectl("-n", ns, "get", kind, obj)

    cluster = Cluster(kubectl, ns)
    [pod] = cluster.list("pods", f"app.kubernetes.io/instance={release.name}")
    assert pod["status"]["phase"] == "Running"
    node = json.loads(kubectl("get", "node", pod["spec"]["nodeName"], "-o", "json").stdout)
    assert "kwok.x-k8s.io/node" in node["metadata"].get("annotations", {})
    endpoints = kubectl("-n", ns, "get", "endpointslices", "-o", "json").stdout
    assert pod["status"]["podIP"] in endpoints

    # The release as Helm stores it (base64 of gzipped JSON, in a Secret), and the same
    # release with the ~400 KB CRD in its manifest, as crds.install=true stores it.
    [secret] = cluster.list("secrets", f"name={release.name},owner=helm")
    stored = base64.b64decode(secret["data"]["release"])
    assert len(stored) < SECRET_LIMIT / 4, len(stored)
    record = json.loads(gzip.decompress(base64.b64decode(stored)))
    crd = helm("template", "x", str(CHART), "--show-only", "templates/crds.yaml").stdout
    record["manifest"] += "\n---\n" + crd
    with_crd = base64.b64encode(gzip.compress(json.dumps(record).encode()))
    assert len(with_crd) < SECRET_LIMIT / 2, len(with_crd)

    helm("uninstall", release.name, "-n", ns, "--wait")
    for kind in (
        "clusterrole",
        "clusterrolebinding",
        "validatingadmissionpolicy",
        "validatingadmissionpolicybinding",
    ):
        assert "NotFound" in kubectl("get", kind, name, check=False).stderr
    left = kubectl("-n", ns, "get", "deployment,service,serviceaccount", "-o", "name").stdout
    assert name not in left, left


def test_upgrade_between_namespace_modes_swaps_the_rbac(
    helm: Helm,
    kubectl: Kubectl,
    make_namespace: Callable[..., str],
    install: Callable[..., Release],
) -> None:
    ns, watched = make_namespace(), make_namespace()
    release = install(ns)
    helm(
        "upgrade",
        release.name,
        str(CHART),
        "-n",
        ns,
        "--reuse-values",
        *set_args({"watch.allNamespaces": False, "watch.namespaces": [watched]}),
        "--wait",
    )
    assert "NotFound" in kubectl("get", "clusterrole", release.fullname, check=False).stderr
    kubectl("-n", watched, "get", "role,rolebinding", release.fullname)
    args = release.operator_args()
    assert f"--namespace={watched}" in args
    assert "--all-namespaces" not in args


@pytest.mark.parametrize("ha", [False, True], ids=["standalone", "ha"])
@pytest.mark.parametrize("mode", ["all-namespaces", "namespaces"])
def test_service_account_permissions_are_exactly_the_checked_in_list(
    kubectl: Kubectl,
    make_namespace: Callable[..., str],
    install: Callable[..., Release],
    tmp_path: Path,
    mode: str,
    ha: bool,
) -> None:
    release_ns, watched, other = (
        make_namespace(),
        [make_namespace(), make_namespace()],
        make_namespace(),
    )
    values: dict[str, Any] = {}
    if mode == "namespaces":
        values |= {"watch.allNamespaces": False, "watch.namespaces": watched}
    if ha:
        values |= {"highAvailability.enabled": True, "replicaCount": 2}
    release = install(release_ns, values)
    perms = permissions_of(kubectl, release, tmp_path)
    expected, lease = expected_permissions(mode + ("-ha" if ha else ""), release.fullname)
    # The Lease rules are granted with high availability only, and never cluster-wide.
    assert bool(lease) == ha

    for ns in watched:
        assert perms.extra(ns) == expected, ns
    if mode == "all-namespaces":
        assert perms.extra(other) == expected
        assert perms.extra(release_ns) == expected | lease
    else:
        # Nothing outside the watched namespaces, not even where the operator runs,
        # except its own Lease with high availability.
        assert perms.extra(other) == set()
        assert perms.extra(release_ns) == lease


@pytest.mark.parametrize("mode", ["all-namespaces", "namespaces"])
def test_operator_as_the_chart_service_account_reconciles_end_to_end(
    kubectl: Kubectl,
    make_namespace: Callable[..., str],
    install: Callable[..., Release],
    run_operator: Callable[..., Operator],
    tmp_path: Path,
    mode: str,
) -> None:
    release_ns, watched, other = (
        make_namespace(),
        [make_namespace(), make_namespace()],
        make_namespace(),
    )
    values: dict[str, Any] = {}
    if mode == "namespaces":
        values = {"watch.allNamespaces": False, "watch.namespaces": watched}
    release = install(release_ns, values)
    as_sa = token_kubeconfig(kubectl, release_ns, release.fullname, tmp_path / "sa")
    args = release.operator_args()
    allowed: tuple[str, ...] = ("/api/v1/namespaces",)
    if mode == "all-namespaces":
        # A cluster-wide operator here would also reconcile the other tests' tasks,
        # so it watches this test's namespaces, with the ClusterRole's token. What
        # --all-namespaces adds (cluster-wide lists and watches) is checked below.
        assert args[0] == "--all-namespaces"
        args = [f"--namespace={ns}" for ns in watched] + args[1:]
        for path in CLUSTER_WIDE_WATCHES:
            as_sa("get", "--raw", f"{path}?limit=1")
            as_sa("get", "--raw", f"{path}?watch=true&timeoutSeconds=1")
    else:
        assert args[:2] == [f"--namespace={ns}" for ns in watched]
        # kopf's CRD watch is not granted in this mode (nothing cluster-wide).
        allowed += ("customresourcedefinitions",)
    op = run_operator(args, as_sa.kubeconfig, release.name)

    clusters = [Cluster(kubectl, ns) for ns in watched]
    for cluster in clusters:
        cluster.apply(every_minute_task("heartbeat"))
    # Monitor mode lists and watches the namespace's CronJobs and Jobs unlabelled.
    kubectl("-n", watched[0], "create", "cronjob", "vendor", "--image=busybox:1.37",
            "--schedule=0 0 1 1 *")  # fmt: skip
    clusters[0].apply(monitoring("watch-vendor", "vendor"))
    for cluster in clusters:
        task = cluster.wait_ready("heartbeat", timeout=START_TIMEOUT)
        cronjob = cluster.get("cronjob", "heartbeat")
        assert cronjob is not None
        assert cronjob["metadata"]["ownerReferences"][0]["uid"] == task["metadata"]["uid"]
    for cluster in clusters:
        done = cluster.wait_task(
            "heartbeat",
            lambda t: t.get("status", {}).get("succeeded", 0) >= 1,
            timeout=RUN_TIMEOUT,
            what="a successful run recorded",
        )
        assert condition_of(done, "Ready")["status"] == "True"  # type: ignore[index]
        wait_for(
            lambda c=cluster: "RunSucceeded" in c.event_reasons("heartbeat"),  # type: ignore[misc]
            timeout=30,
            what="a RunSucceeded Event posted by the operator",
        )

    if mode == "namespaces":
        # A task outside the watched namespaces is neither visible nor reconciled.
        outside = Cluster(kubectl, other)
        outside.apply(nightly_task("elsewhere"))
        denied = as_sa("-n", other, "get", "scheduledtask", "elsewhere", check=False)
        assert "Forbidden" in denied.stderr
        assert "status" not in outside.task("elsewhere")
        assert outside.get("cronjob", "elsewhere") is None

    monitored = clusters[0].wait_ready("watch-vendor")
    assert (condition_of(monitored, "Ready") or {}).get("reason") == "Reconciled"
    assert "could not post event" not in op.log()
    assert not op.forbidden(allowed), op.forbidden(allowed)


# The pod's IP as the kubelet would see it: a loopback address other than
# 127.0.0.1 (where `kubectl port-forward` connects inside the pod), so that both are
# visible on one machine (Linux routes all of 127.0.0.0/8 to the loopback interface).
POD_IP = "127.0.0.2"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize(
    ("values", "on_localhost"),
    [({}, True), ({"operator.bindAddress": "$(POD_IP)"}, False)],
    ids=["default", "pod-ip-only"],
)
def test_operator_answers_the_probes_on_the_pod_ip_and_port_forward_on_localhost(
    helm: Helm,
    kubeconfig: Path,
    make_namespace: Callable[..., str],
    tmp_path: Path,
    values: dict[str, Any],
    on_localhost: bool,
) -> None:
    """The Deployment's arguments with $(VAR) expanded from its env, as the kubelet
    does, then the kubelet's httpGet probes (to the pod IP) and a port-forward's
    connection (to localhost in the pod): answered by default, refused with the pod
    IP as the bind address."""
    release_ns, watched = make_namespace(), make_namespace()
    [deployment] = [d for d in render(helm, release_ns, values) if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    pod_env = {"POD_IP": POD_IP, "POD_NAME": "probe-test", "POD_NAMESPACE": release_ns}

    def expand(arg: str) -> str:
        # Every reference must be to a variable of the container, or it stays literal.
        for name in re.findall(r"\$\((\w+)\)", arg):
            assert name in env, f"{arg} refers to {name}, which the container does not define"
            arg = arg.replace(f"$({name})", pod_env[name])
        return arg

    ports = {"liveness": free_port(), "metrics": free_port()}
    args = [expand(a) for a in container["args"]]
    assert f"--bind-address={'0.0.0.0' if on_localhost else POD_IP}" in args
    # This test's namespace instead of all of them, and free ports.
    own = ("--all-namespaces", "--liveness-port", "--metrics-port")
    args = [a for a in args if not a.startswith(own)]
    args += [
        f"--namespace={watched}",
        f"--kubeconfig={kubeconfig}",
        f"--liveness-port={ports['liveness']}",
        f"--metrics-port={ports['metrics']}",
    ]
    environment = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    environment |= pod_env
    log_path = tmp_path / "operator.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cronwarden", "run", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        probe = f"http://{POD_IP}:{ports['liveness']}/healthz"

        def live() -> bool:
            assert proc.poll() is None, f"the operator exited: {log_path.read_text()}"
            return answers(probe)

        wait_for(live, timeout=60, what=f"the liveness probe at {probe}")
        assert answers(f"http://{POD_IP}:{ports['metrics']}/metrics")
        # Where `kubectl port-forward` connects: the operator, or nothing at all.
        if on_localhost:
            assert answers(f"http://127.0.0.1:{ports['metrics']}/metrics")
            assert answers(f"http://127.0.0.1:{ports['liveness']}/healthz")
        else:
            for port in ports.values():
                assert not listening("127.0.0.1", port), f"something listens on localhost:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in log_path.read_text()


def test_pod_template_is_admitted_under_the_restricted_pod_security_standard(
    kubectl: Kubectl,
    make_namespace: Callable[..., str],
    install: Callable[..., Release],
) -> None:
    restricted = {
        f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
    } | {"pod-security.kubernetes.io/enforce-version": "latest"}
    ns = make_namespace(restricted)
    release = install(ns, {"watch.allNamespaces": False, "watch.namespaces": [ns]})

    # The Deployment's ReplicaSet created the pod: admission let it in.
    [pod] = Cluster(kubectl, ns).list("pods", f"app.kubernetes.io/instance={release.name}")
    assert pod["status"]["phase"] == "Running"

    [deployment] = [d for d in release.manifest() if d["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    as_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "admission-check", "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }
    ok = kubectl("-n", ns, "create", "--dry-run=server", "-f", "-", input=json.dumps(as_pod))
    assert "Warning" not in ok.stderr, ok.stderr

    # The control: the same pod without its security contexts is refused.
    loose = copy.deepcopy(as_pod)
    del loose["spec"]["securityContext"]
    del loose["spec"]["containers"][0]["securityContext"]
    refused = kubectl(
        "-n", ns, "create", "--dry-run=server", "-f", "-", input=json.dumps(loose), check=False
    )
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr


# Leader election


def lease_holder(kubectl: Kubectl, namespace: str, name: str) -> str:
    """The Lease's spec.holderIdentity ("" while it is missing or released)."""
    lease = Cluster(kubectl, namespace).get("lease", name) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def exports_tasks_of(op: Operator, namespace: str) -> bool:
    """Whether the operator exports task series for tasks in `namespace`."""
    return any(
        s.labels.get("namespace") == namespace
        for family in text_string_to_metric_families(op.metrics())
        if family.name.startswith("cronwarden_task_")
        for s in family.samples
    )


def test_two_replicas_elect_a_leader_with_the_lease_and_the_other_takes_over(
    kubectl: Kubectl,
    make_namespace: Callable[..., str],
    install: Callable[..., Release],
    run_operator: Callable[..., Operator],
    tmp_path: Path,
) -> None:
    release_ns, watched = make_namespace(), make_namespace()
    release = install(
        release_ns,
        {
            "watch.allNamespaces": False,
            "watch.namespaces": [watched],
            "highAvailability.enabled": True,
            "replicaCount": 2,
        },
    )
    lease = release.fullname
    as_sa = token_kubeconfig(kubectl, release_ns, release.fullname, tmp_path / "sa")
    args = release.operator_args()
    assert [a for a in args if a.startswith("--leader-election")] == [
        "--leader-election",
        f"--leader-election-namespace={release_ns}",
        f"--leader-election-id={lease}",
    ]
    # Two replicas as the Deployment runs them: the same arguments, each its POD_NAME.
    replicas = {
        pod: run_operator(args, as_sa.kubeconfig, f"{release.name}-{pod}", env={"POD_NAME": pod})
        for pod in ("r1", "r2")
    }

    def holding() -> str | None:
        """The replica whose identity is in the Lease (it starts with its pod name)."""
        holder = lease_holder(kubectl, release_ns, lease)
        return next((pod for pod in replicas if holder.startswith(pod)), None)

    # One of them creates the Lease and holds it.
    first = wait_for(
        holding, timeout=START_TIMEOUT, what=f"a replica to hold the Lease {release_ns}/{lease}"
    )
    second = next(pod for pod in replicas if pod != first)
    leader, standby = replicas[first], replicas[second]
    wait_for(
        lambda: "became the leader" in leader.log(), timeout=30, what=f"{first} to log leading"
    )

    # Only the leader reconciles and exports task metrics; the standby watches.
    cluster = Cluster(kubectl, watched)
    cluster.apply(nightly_task("first"))
    cluster.wait_ready("first", timeout=START_TIMEOUT)
    wait_for(
        lambda: exports_tasks_of(leader, watched), timeout=30, what="the leader's task metrics"
    )
    assert f"applied CronJob {watched}/first" in leader.log()
    assert f"applied CronJob {watched}/first" not in standby.log()
    assert "became the leader" not in standby.log()
    assert not exports_tasks_of(standby, watched)
    assert holding() == first

    # The leader stops as Kubernetes stops a pod (SIGTERM) and releases the Lease on
    # the way out, so the standby takes over on its next try (every 2 s) rather than
    # after the 15 s Lease has expired.
    leader.stop()
    stopped = time.monotonic()
    wait_for(lambda: holding() == second, timeout=30, what=f"{second} to take the Lease over")
    took = time.monotonic() - stopped
    assert took < 10, f"took {took:.1f}s: the Lease was not released on SIGTERM"
    wait_for(
        lambda: "became the leader" in standby.log(), timeout=10, what=f"{second} to log leading"
    )

    # The new leader reconciles what comes next: a new task and an edited one.
    cluster.apply(nightly_task("second"))
    edited = nightly_task("first")
    edited["spec"]["schedule"] = "15 3 * * *"
    cluster.apply(edited)
    cluster.wait_ready("second", timeout=60)
    cluster.wait_ready("first", generation=2, timeout=60)
    assert f"applied CronJob {watched}/second" in standby.log()
    cronjob = cluster.get("cronjob", "first")
    assert cronjob is not None
    assert cronjob["spec"]["schedule"] == "15 3 * * *"
    wait_for(
        lambda: exports_tasks_of(standby, watched), timeout=30, what="the new leader's task metrics"
    )

    # No request was refused (no 403 logged): the chart's Lease Role is enough.
    for pod, op in replicas.items():
        assert not op.forbidden(()), (pod, op.forbidden(()))


# What the chart tells its users


def test_install_notes_task_is_admitted_under_restricted_and_becomes_ready(
    cluster: Cluster, operator: Operator
) -> None:
    """The ScheduledTask of the install notes (chart users have no examples/), applied
    as the notes say, in a namespace that enforces the `restricted` Pod Security
    Standard; its pods would be admitted there, and so would nightly-backup's."""
    from tests.chart.test_chart import notes_example, render_notes

    ns = cluster.namespace
    cluster.kubectl(
        "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )  # fmt: skip
    _, task = notes_example(render_notes())
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=yaml.safe_dump(task))
    cluster.wait_ready(task["metadata"]["name"])

    for name, obj in (("notes", task), ("nightly-backup", load_example("nightly-backup"))):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"admission-{name}"},
            "spec": obj["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        }
        pod["spec"].setdefault("restartPolicy", "Never")
        ok = cluster.kubectl(
            "-n", ns, "create", "--dry-run=server", "-f", "-", input=json.dumps(pod)
        )
        assert "Warning" not in ok.stderr, (name, ok.stderr)


def test_helm_test_script_passes_against_a_running_operator(operator: Operator) -> None:
    """The `helm test` pod's script, run here against the session's operator."""
    from tests.chart.test_chart import render_tests

    [pod] = render_tests()
    script = pod["spec"]["containers"][0]["command"][2]
    proc = subprocess.run(
        [sys.executable, "-c", script, operator.metrics_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
