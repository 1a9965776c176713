"""Helpers for end-to-end tests on the local control plane."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("STATE_DIR", ROOT / ".state"))
BIN = STATE_DIR / "bin"

T = TypeVar("T")
# A refused request in a log line (not "403" inside a name such as cw-df4037).
FORBIDDEN = re.compile(r"(?<![\w-])403(?![\w-])|[Ff]orbidden")


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str = "condition",
) -> T:
    """Call `probe` until it returns something truthy, or fail after `timeout` seconds.

    Returns what the probe returned, so a test can wait for an object and use it.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Kubectl:
    """The kubectl built from the pinned release, bound to one kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc


@dataclass
class Operator:
    """A `cronwarden run` process started by the tests."""

    process: subprocess.Popen[bytes]
    log_path: Path
    liveness_url: str
    metrics_url: str

    stopped: bool = False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop it as Kubernetes would (SIGTERM), on purpose."""
        self.process.terminate()
        self.process.wait(timeout=30)
        self.stopped = True

    def forbidden(self, allowed: tuple[str, ...]) -> list[str]:
        """Log lines about refused requests, except those for `allowed` paths."""
        return [
            line
            for line in self.log().splitlines()
            if FORBIDDEN.search(line) and not any(path in line for path in allowed)
        ]

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            text: str = resp.read().decode()
            return text

    def reconciles(self, namespace: str, name: str) -> int:
        """How many reconciles of one task the operator has logged so far."""
        return self.log().count(f"reconciled {namespace}/{name}:")


def load_example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    return loaded


def condition_of(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), None)


class Cluster:
    """kubectl views of one test namespace, returning parsed JSON."""

    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.kubectl = kubectl
        self.namespace = namespace

    def apply(self, obj: dict[str, Any], *, server_side: bool = False) -> str:
        args = ["-n", self.namespace, "apply", "-f", "-"]
        if server_side:
            args.append("--server-side")
        return self.kubectl(*args, input=json.dumps(obj)).stdout

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        proc = self.kubectl("-n", self.namespace, "get", kind, name, "-o", "json", check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise AssertionError(proc.stderr)
        obj: dict[str, Any] = json.loads(proc.stdout)
        return obj

    def list(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["-n", self.namespace, "get", kind, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args).stdout)["items"]
        return items

    def task(self, name: str) -> dict[str, Any]:
        obj = self.get("scheduledtask", name)
        assert obj is not None, f"ScheduledTask {name} does not exist"
        return obj

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.list("events")
            if e["involvedObject"].get("kind") == "ScheduledTask"
            and e["involvedObject"]["name"] == name
        ]

    def event_reasons(self, name: str) -> set[str]:
        return {e["reason"] for e in self.events(name)}

    def wait_task(
        self, name: str, check: Callable[[dict[str, Any]], bool], *, timeout: float, what: str
    ) -> dict[str, Any]:
        return wait_for(
            lambda: (obj := self.task(name)) if check(obj := self.task(name)) else None,
            timeout=timeout,
            what=f"ScheduledTask {name}: {what}",
        )

    def wait_ready(self, name: str, generation: int = 1, timeout: float = 30) -> dict[str, Any]:
        def ready(obj: dict[str, Any]) -> bool:
            cond = condition_of(obj, "Ready")
            return (
                cond is not None
                and cond["status"] == "True"
                and obj["status"].get("observedGeneration") == generation
            )

        return self.wait_task(
            name, ready, timeout=timeout, what=f"Ready at generation {generation}"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def watching(namespaces: str) -> list[str]:
    """Operator arguments for tests: these namespaces, quick resync, debug logs
    (Operator.reconciles counts the debug lines)."""
    return ["--namespace", namespaces, "--resync-seconds", "5", "--verbose"]


def launch_operator(
    args: list[str],
    kubeconfig: Path,
    tag: str,
    env: dict[str, str] | None = None,
    metrics_port: int | None = None,
) -> Operator:
    """Start `cronwarden run ARGS` out of cluster, with `kubeconfig` and free local
    ports (any port or address options in ARGS are replaced; `metrics_port` keeps
    one scrape target across restarts); wait until live."""
    logs = STATE_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port, metrics_port = free_port(), metrics_port or free_port()
    log_path = logs / f"operator-{tag}.log"
    own = ("--liveness-port", "--metrics-port", "--bind-address", "--kubeconfig")
    local = [a for a in args if not a.startswith(own)]
    local += [
        f"--kubeconfig={kubeconfig}",
        f"--liveness-port={port}",
        f"--metrics-port={metrics_port}",
        "--bind-address=127.0.0.1",
    ]
    # Out of cluster: never fall back to in-cluster credentials.
    environment = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    environment.update(env or {})
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cronwarden", "run", *local],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    op = Operator(
        proc,
        log_path,
        f"http://127.0.0.1:{port}/healthz",
        f"http://127.0.0.1:{metrics_port}/metrics",
    )

    def healthy() -> bool:
        assert proc.poll() is None, f"operator exited early; see {log_path}"
        try:
            with urllib.request.urlopen(op.liveness_url, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    wait_for(healthy, timeout=60, what="the operator's liveness endpoint")
    return op


def stop_operator(op: Operator) -> None:
    """Stop it, and fail if it had died or logged a traceback."""
    if not op.stopped:
        crashed = op.process.poll()
        op.stop()
        assert crashed is None, f"the operator died during the tests; see {op.log_path}"
    assert "Traceback" not in op.log(), f"the operator logged a traceback; see {op.log_path}"
