"""Where to connect and as whom, decided as kubectl decides it, with the standard
library and PyYAML only (the plugin runs without the kubernetes client, which needs
pydantic).

--kubeconfig, else $KUBECONFIG (files merged: the first file that names an entry wins),
else ~/.kube/config, else the pod's service account. --context picks a context, else
current-context; its namespace is the default one. Supported: server,
certificate-authority(-data), insecure-skip-tls-verify, tls-server-name; client
certificates, token, tokenFile, username/password and exec credential plugins.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cronwarden.plugin.errors import ClusterError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass
class Login:
    server: str
    namespace: str = "default"
    ca_file: str | None = None
    ca_data: str | None = None  # PEM
    insecure: bool = False
    tls_server_name: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    cert_file: str | None = None
    key_file: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # Authorization


def paths(given: str | None) -> list[Path] | None:
    """The kubeconfig files kubectl would read, or None for in-cluster credentials."""
    if given:
        return [Path(given).expanduser()]
    if os.environ.get("KUBECONFIG"):
        return [Path(p).expanduser() for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
    default = Path.home() / ".kube" / "config"
    if default.exists() or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return [default]
    return None


def load(given: str | None, context: str | None) -> Login:
    files = paths(given)
    if files is None:
        return in_cluster()
    existing = [f for f in files if f.exists()]
    if not existing:
        where = os.pathsep.join(str(f) for f in files)
        raise ClusterError(
            f"no kubeconfig at {where}: give --kubeconfig, set KUBECONFIG, "
            "or run in a pod with a service account"
        )
    merged: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {
        "clusters": {},
        "users": {},
        "contexts": {},
    }
    current = None
    for f in existing:
        try:
            doc = yaml.safe_load(f.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ClusterError(f"cannot read the kubeconfig {f}: {err}") from None
        current = current or doc.get("current-context")
        for kind in merged:
            for entry in doc.get(kind) or []:
                merged[kind].setdefault(str(entry.get("name")), (entry, f.parent))
    name = context or current
    if not name:
        raise ClusterError("the kubeconfig has no current-context: give --context")
    if name not in merged["contexts"]:
        raise ClusterError(f'context "{name}" does not exist in the kubeconfig')
    ctx = merged["contexts"][name][0].get("context") or {}
    cluster_name, user_name = str(ctx.get("cluster")), str(ctx.get("user"))
    if cluster_name not in merged["clusters"]:
        raise ClusterError(f'cluster "{cluster_name}" of context "{name}" does not exist')
    cluster, cluster_dir = merged["clusters"][cluster_name]
    user, user_dir = merged["users"].get(user_name, ({}, cluster_dir))
    return login(cluster.get("cluster") or {}, cluster_dir, user.get("user") or {}, user_dir, ctx)


def login(
    cluster: dict[str, Any],
    cluster_dir: Path,
    user: dict[str, Any],
    user_dir: Path,
    ctx: dict[str, Any],
) -> Login:
    def path(value: str | None, base: Path) -> str | None:
        return str(base / Path(value).expanduser()) if value else None

    def data(value: str | None) -> bytes | None:
        return base64.b64decode(value) if value else None

    if not cluster.get("server"):
        raise ClusterError("the kubeconfig's cluster has no server")
    ca_data = data(cluster.get("certificate-authority-data"))
    out = Login(
        server=str(cluster["server"]).rstrip("/"),
        namespace=str(ctx.get("namespace") or "default"),
        ca_file=path(cluster.get("certificate-authority"), cluster_dir),
        ca_data=ca_data.decode() if ca_data else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
        cert_pem=data(user.get("client-certificate-data")),
        key_pem=data(user.get("client-key-data")),
        cert_file=path(user.get("client-certificate"), user_dir),
        key_file=path(user.get("client-key"), user_dir),
    )
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(str(path(user["tokenFile"], user_dir))).read_text().strip()
    if user.get("exec"):
        status = exec_credential(user["exec"], out.server)
        token = status.get("token") or token
        if status.get("clientCertificateData"):
            out.cert_pem = str(status["clientCertificateData"]).encode()
            out.key_pem = str(status.get("clientKeyData") or "").encode()
    if user.get("auth-provider"):
        raise ClusterError(
            "the kubeconfig's user has an auth-provider, which kubectl itself no longer "
            "supports: use an exec credential plugin"
        )
    if token:
        out.headers["Authorization"] = f"Bearer {token}"
    elif user.get("username"):
        basic = f"{user['username']}:{user.get('password', '')}".encode()
        out.headers["Authorization"] = "Basic " + base64.b64encode(basic).decode()
    return out


def exec_credential(spec: dict[str, Any], server: str) -> dict[str, Any]:
    """Run the kubeconfig's exec credential plugin (client.authentication.k8s.io)."""
    api = spec.get("apiVersion") or "client.authentication.k8s.io/v1"
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []}}
    request = {"apiVersion": api, "kind": "ExecCredential", "spec": {"interactive": False}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(request)
    argv = [str(spec["command"]), *[str(a) for a in spec.get("args") or []]]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ClusterError(
            f"the kubeconfig's exec credential plugin {argv[0]} failed: {err}"
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        raise ClusterError(
            f"the kubeconfig's exec credential plugin {argv[0]} exited {done.returncode}: {last}"
        )
    try:
        return dict(json.loads(done.stdout).get("status") or {})
    except ValueError:
        raise ClusterError(f"{argv[0]} printed no ExecCredential for {server}") from None


def in_cluster() -> Login:
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT")
    try:
        token = (SERVICE_ACCOUNT / "token").read_text().strip()
        namespace = (SERVICE_ACCOUNT / "namespace").read_text().strip() or "default"
    except OSError as err:
        raise ClusterError(f"cannot read the pod's service account: {err}") from None
    server = f"https://{'[' + host + ']' if ':' in host else host}:{port or 443}"
    return Login(
        server=server,
        namespace=namespace,
        ca_file=str(SERVICE_ACCOUNT / "ca.crt"),
        headers={"Authorization": f"Bearer {token}"},
    )
