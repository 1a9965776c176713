"""The operator as its own user: the chart's least-privilege RBAC in a chaos namespace
and a ServiceAccount token per replica, so that the API server tells its requests
apart from the harness's and the recorder's (which use the admin kubeconfig, whose
system:masters group APF exempts).

hack/cluster.sh audits the ServiceAccounts of the namespaces that use this
(chaos-throttling, chaos-leader-election): the audit log then names the replica
behind every request (harness/audit.py).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.setup import ROOT, STATE_DIR, BenchError, kubectl

HELM = STATE_DIR / "bin" / "helm"
CHART = ROOT / "helm" / "cronwarden"
RELEASE = "cw"
KINDS = ("ServiceAccount", "Role", "RoleBinding")


@dataclass
class Accounts:
    kubeconfigs: dict[str, Path]  # replica -> kubeconfig with its ServiceAccount's token
    users: dict[str, str]  # API user name -> replica
    election: list[str]  # the chart's --leader-election arguments

    def user(self, replica: str) -> str:
        return next(u for u, r in self.users.items() if r == replica)


def render_rbac(namespace: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The chart's ServiceAccount, Roles and RoleBindings for a release in `namespace`
    that watches only it, with high availability (the Lease's Role); and the
    --leader-election arguments of its Deployment."""
    args = [str(HELM), "template", RELEASE, str(CHART), "--namespace", namespace]
    for value in (
        "watch.allNamespaces=false",
        f"watch.namespaces={{{namespace}}}",
        "highAvailability.enabled=true",
        "replicaCount=2",
    ):
        args += ["--set", value]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise BenchError(f"helm template failed: {proc.stderr.strip()[-1000:]}")
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    rbac = [d for d in docs if d["kind"] in KINDS]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    election = [a for a in container["args"] if a.startswith("--leader-election")]
    return rbac, election


def operator_users(kc: Path, namespace: str, replicas: list[str], out_dir: Path) -> Accounts:
    """One ServiceAccount per replica (the chart's, then copies bound by the same
    RoleBindings) and a kubeconfig with its token for each."""
    rbac, election = render_rbac(namespace)
    [account] = [d for d in rbac if d["kind"] == "ServiceAccount"]
    base = account["metadata"]["name"]
    names = {r: base if i == 0 else f"{base}-{i + 1}" for i, r in enumerate(replicas)}
    extra = [
        {**account, "metadata": {**account["metadata"], "name": n}}
        for n in names.values()
        if n != base
    ]
    for binding in (d for d in rbac if d["kind"] == "RoleBinding"):
        binding["subjects"] = [
            {"kind": "ServiceAccount", "name": n, "namespace": namespace} for n in names.values()
        ]
    doc = {"apiVersion": "v1", "kind": "List", "items": rbac + extra}
    kubectl(kc, "apply", "-f", "-", input=json.dumps(doc))
    admin = yaml.safe_load(kc.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    configs: dict[str, Path] = {}
    for replica, name in names.items():
        token = kubectl(kc, "-n", namespace, "create", "token", name, "--duration=12h").strip()
        path = out_dir / f"{namespace}-{replica}.kubeconfig"
        path.touch(mode=0o600)
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "local", "cluster": cluster["cluster"]}],
                    "users": [{"name": name, "user": {"token": token}}],
                    "contexts": [{"name": name, "context": {"cluster": "local", "user": name}}],
                    "current-context": name,
                }
            )
        )
        configs[replica] = path
    users = {f"system:serviceaccount:{namespace}:{n}": r for r, n in names.items()}
    return Accounts(configs, users, election)
