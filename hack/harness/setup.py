"""The cluster, its namespaces and components, the CRD, and the operator as a process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("STATE_DIR", ROOT / ".state"))
KUBECTL = STATE_DIR / "bin" / "kubectl"
OUT_DIR = STATE_DIR / "bench"  # beside the cluster it measures
GROUP, VERSION, PLURAL = "cronwarden.io", "v1alpha1", "scheduledtasks"
# The name in log lines: the entry point sets it (bench, soak, chaos).
TOOL = "bench"


class BenchError(Exception):
    """A harness step failed (the name is kept from hack/bench.py, its first user)."""


def log(msg: str) -> None:
    print(f"[{TOOL} {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def kubectl(kc: Path, *args: str, input: str | None = None, timeout: float = 120) -> str:
    try:
        proc = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(kc), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=max(timeout, 1),
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"kubectl {' '.join(args[:3])} timed out after {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise BenchError(f"kubectl {' '.join(args[:3])} failed: {proc.stderr.strip()[-1500:]}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    """`cronwarden run` from ROOT's checkout as a local process, watching `namespaces`,
    with free local ports; the constructor returns once /healthz answers."""

    def __init__(
        self,
        root: Path,
        kc: Path,
        log_path: Path,
        resync: int,
        audit: int | None = None,
        namespaces: Sequence[str] = ("bench-tasks", "bench-latency"),
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        append_log: bool = False,
    ) -> None:
        python = ROOT / ".venv" / "bin" / "python"
        extra_env = env
        env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
        env["PYTHONPATH"] = str(root / "operator")
        env.update(extra_env or {})
        where = subprocess.run(
            [str(python), "-c", "import cronwarden; print(cronwarden.__file__)"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if not where.stdout.startswith(str(root / "operator")):
            raise BenchError(
                f"cronwarden is not imported from {root}/operator: "
                f"{where.stdout.strip() or where.stderr.strip()}"
            )
        port, self.metrics_port = free_port(), free_port()
        self.log_path = log_path
        flags = "".join(f"--namespace {ns} " for ns in namespaces)
        flags += f"--resync-seconds {resync} "
        help_text = subprocess.run(
            [str(python), "-m", "cronwarden", "run", "--help"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        # Operators before the audit have no --audit-seconds.
        self.audits = "--audit-seconds" in help_text
        if audit is not None and self.audits:
            flags += f"--audit-seconds {audit} "
        flags += (
            f"--metrics-port {self.metrics_port} --liveness-port {port} --bind-address 127.0.0.1"
        )
        cmd = [str(python), "-m", "cronwarden", "run", "--kubeconfig", str(kc), *flags.split()]
        cmd += extra_args
        with open(log_path, "a" if append_log else "w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        health = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"the operator exited ({self.proc.returncode}); see {log_path}")
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as r:
                if r.status == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"the operator's /healthz did not answer in 90s; see {log_path}")
            time.sleep(0.5)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_summary(self) -> dict[str, Any]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        bad = [ln for ln in lines if "ERROR" in ln or "Traceback" in ln or "WARNING" in ln]
        return {
            "lines": len(lines),
            "errors": sum("ERROR" in ln for ln in lines),
            "warnings": sum("WARNING" in ln for ln in lines),
            "tracebacks": sum("Traceback" in ln for ln in lines),
            "examples": bad[:5],
        }


# --- cluster ------------------------------------------------------------------------------


def cluster_ready(kc: Path) -> bool:
    cmd = [str(KUBECTL), "--kubeconfig", str(kc), "get", "--raw", "/readyz"]
    return kc.exists() and subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0


def wait_gone(kc: Path, kind: str, names: tuple[str, ...], timeout: float, *ns: str) -> list[str]:
    """Wait until none of the objects exist; returns those that still do."""
    deadline = time.monotonic() + timeout
    while True:
        out = kubectl(kc, *ns, "get", kind, "-o", "name", "--ignore-not-found", *names)
        left = [line.split("/")[-1] for line in out.split()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(2)


def prepare_namespaces(kc: Path, namespaces: tuple[str, ...]) -> None:
    """Create the namespaces afresh: those left from an earlier run are deleted first."""
    existing = set(kubectl(kc, "get", "namespaces", "-o", "name").split())
    stale = tuple(ns for ns in namespaces if f"namespace/{ns}" in existing)
    if stale:
        log(f"deleting namespaces left from an earlier run: {', '.join(stale)}")
        kubectl(kc, "delete", "namespace", "--wait=false", *stale)
        if left := wait_gone(kc, "namespace", stale, 600):
            raise BenchError(f"namespaces {left} are still terminating after 600s")
    for ns in namespaces:
        kubectl(kc, "create", "namespace", ns)


def apply_crd(kc: Path, root: Path) -> None:
    kubectl(kc, "apply", "--server-side", "--force-conflicts", "-f", str(root / "crds"))
    crd = f"crd/{PLURAL}.{GROUP}"
    for cond in ("create", "condition=Established"):
        kubectl(kc, "wait", f"--for={cond}", crd, "--timeout=60s", timeout=90)


def cleanup(
    kc: Path, started_cluster: bool, r: dict[str, Any], namespaces: tuple[str, ...]
) -> None:
    """Stop the cluster if the harness started it, else delete the harness's namespaces;
    failures are added to r["errors"]."""
    try:
        if started_cluster:
            subprocess.run([str(ROOT / "hack" / "cluster.sh"), "down"], check=True, timeout=300)
            return
        if cluster_ready(kc):
            log(f"deleting the namespaces {', '.join(namespaces)} (waiting up to 300s)")
            kubectl(kc, "delete", "namespace", "--wait=false", "--ignore-not-found", *namespaces)
            if left := wait_gone(kc, "namespace", namespaces, 300):
                r["errors"].append(f"namespaces still terminating after 300s: {left}")
    except (BenchError, subprocess.SubprocessError, OSError) as err:
        r["errors"].append(f"cleanup: {err}")


def ensure_cluster(kc: Path, given: bool) -> bool:
    """Make sure a cluster answers with `kc`; start the local one (hack/cluster.sh up)
    unless the kubeconfig was given. Returns whether it was started here."""
    if cluster_ready(kc):
        return False
    if given:
        raise BenchError(f"no cluster answers with {kc}")
    log("starting the cluster with hack/cluster.sh up")
    subprocess.run([str(ROOT / "hack" / "cluster.sh"), "up"], check=True, timeout=600)
    return True


def cluster_sh(*args: str, timeout: float = 120) -> str:
    """hack/cluster.sh ARGS; a failure (for example start-component finding its port
    taken by another local cluster) raises BenchError with the script's own words."""
    try:
        proc = subprocess.run(
            [str(ROOT / "hack" / "cluster.sh"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(
            f"hack/cluster.sh {' '.join(args)} did not finish in {timeout:.0f}s"
        ) from None
    if proc.returncode != 0:
        raise BenchError(
            f"hack/cluster.sh {' '.join(args)} failed ({proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-1500:]}"
        )
    return proc.stdout


def stop_component(name: str) -> None:
    """Stop a control plane component on purpose (the supervisor leaves it down)."""
    cluster_sh("stop-component", name)


def start_component(name: str) -> None:
    cluster_sh("start-component", name)
