"""The rehearsal's tools: kubectl, helm and the real node's ctr, timed steps, the
chart copy without a field, the tasks, and a Prometheus that scrapes the pod."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "cronwarden"
RELEASE = "cronwarden"
CRD_FILE = "files/crds/scheduledtasks.cronwarden.io.yaml"


class Failed(Exception):
    """A rehearsal step did not reach its condition."""


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.5) -> Any:
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@dataclass
class Step:
    durations: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        print(f"rehearse: {name} ...", flush=True)
        yield
        self.durations[name] = round(time.monotonic() - start, 1)
        print(f"rehearse: {name}: {self.durations[name]}s", flush=True)

    def note(self, key: str, value: Any) -> None:
        self.notes[key] = value
        print(f"rehearse:   {key}: {value}", flush=True)


class Tools:
    def __init__(self, state: Path) -> None:
        self.bin = state / "bin"
        self.kubeconfig = state / "kubeconfig"

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if check and done.returncode:
            raise Failed(f"{' '.join(cmd[:4])} ...: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(
            str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args, check=check
        )

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(
            str(self.bin / "helm"), "--kubeconfig", str(self.kubeconfig), *args, check=check
        )

    def node(self, *args: str) -> None:
        self.run(str(ROOT / "hack" / "real-node.sh"), *args)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, obj: dict[str, Any]) -> None:
        subprocess.run(
            [str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig), "apply", "-f", "-"],
            input=json.dumps(obj),
            text=True,
            check=True,
            capture_output=True,
        )

    def operator_pods(self, ns: str, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("pods", "-n", ns, "-l", selector)["items"]
        return [p for p in items if "helm.sh/hook" not in p["metadata"].get("annotations", {})]

    def wait_operator_ready(self, ns: str, selector: str, tag: str) -> str:
        """The one operator pod running `tag`, Ready (its readiness probe passed)."""

        def ready() -> str | None:
            pods = self.operator_pods(ns, selector)
            for pod in pods:
                if pod["metadata"].get("deletionTimestamp"):
                    return None
                image = pod["spec"]["containers"][0]["image"]
                conds = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
                if image.endswith(f":{tag}") and conds.get("Ready") == "True" and len(pods) == 1:
                    return str(pod["metadata"]["name"])
            return None

        return str(wait_for(ready, timeout=180, what=f"the operator pod with tag {tag} Ready"))

    def operator_pod_ip(self, ns: str, selector: str) -> str:
        return str(self.operator_pods(ns, selector)[0]["status"]["podIP"])

    def task_status(self, ns: str, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.get("st", name, "-n", ns).get("status", {})
        return status

    def task_field(self, ns: str, name: str, key: str) -> Any:
        return self.get("st", name, "-n", ns)["spec"].get(key)

    def crd_has_field(self, key: str) -> bool:
        crd = self.get("crd", "scheduledtasks.cronwarden.io")
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        return key in spec["properties"]

    def event_reasons(self, ns: str, name: str) -> set[str]:
        items = self.get("events", "-n", ns, "--field-selector", f"involvedObject.name={name}")
        return {e["reason"] for e in items["items"]}

    def wait_drained(self, namespaces: list[str], recorder: Any) -> None:
        """No Job running, and every finished one recorded in its task's status."""

        def drained() -> bool:
            for ns in namespaces:
                for job in self.get("jobs", "-n", ns)["items"]:
                    if not job["status"].get("completionTime") and not any(
                        c["type"] == "Failed" and c["status"] == "True"
                        for c in job["status"].get("conditions", [])
                    ):
                        return False
                for task in self.get("st", "-n", ns)["items"]:
                    if task.get("status", {}).get("active"):
                        return False
            truth = recorder.counts()
            for (ns, name), real in truth.items():
                status = self.task_status(ns, name)
                if status.get("succeeded", 0) + status.get("failed", 0) < sum(real.values()):
                    return False
            return True

        wait_for(drained, timeout=180, what="the Jobs to finish and be recorded", every=2)


def chart_without_field(dest: Path, key: str) -> Path:
    """A copy of the chart as its previous version: the CRD without `spec.<key>`."""
    shutil.copytree(CHART, dest)
    crd_path = dest / CRD_FILE
    crd = yaml.safe_load(crd_path.read_text())
    for version in crd["spec"]["versions"]:
        del version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][key]
    crd_path.write_text(yaml.safe_dump(crd, sort_keys=False))
    chart = yaml.safe_load((dest / "Chart.yaml").read_text())
    chart["version"] = f"{chart['version']}-rehearsal.1"
    (dest / "Chart.yaml").write_text(yaml.safe_dump(chart, sort_keys=False))
    return dest


def _task(ns: str, name: str, command: str, pod: dict[str, Any], **spec: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "command": ["sh", "-c", command],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    container.update(pod.pop("container", {}))
    template = {
        "metadata": {"labels": pod.pop("labels", {})},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            **pod,
        },
    }
    return {
        "apiVersion": "cronwarden.io/v1alpha1",
        "kind": "ScheduledTask",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"backoffLimit": 0, "template": template}},
            **spec,
        },
    }


def tasks(real_ns: str, kwok_ns: str, job_image: str, label: str) -> list[dict[str, Any]]:
    def real() -> dict[str, Any]:
        return {
            "nodeSelector": {label: "true"},
            "tolerations": [
                {"key": label, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
            ],
            "container": {"image": job_image, "imagePullPolicy": "Never"},
        }

    kwok = {"container": {"image": "busybox"}}
    failing = {
        "container": {"image": "busybox"},
        "labels": {"pod-container-running-failed.stage.kwok.x-k8s.io": "true"},
    }
    return [
        _task(real_ns, "real-ok", 'echo "run on $(hostname) as $(id -u)"', real()),
        _task(real_ns, "real-fail", "echo failing on purpose; exit 1", real()),
        _task(real_ns, "real-slow", "sleep 35", real(), maxRunDurationSeconds=10),
        _task(kwok_ns, "kwok-ok", "true", kwok),
        _task(kwok_ns, "kwok-fail", "false", failing),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prometheus_scrape(state: Path, target: str, work: Path) -> dict[str, Any]:
    """Start the built Prometheus with `target` as a static scrape target; wait until it
    has scraped it (`up` = 1) and holds cronwarden's series; stop it."""
    port = _free_port()
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": "cronwarden", "static_configs": [{"targets": [target]}]}],
    }
    (work / "prometheus.yaml").write_text(yaml.safe_dump(config))
    log = (work / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            str(state / "bin" / "prometheus"),
            f"--config.file={work / 'prometheus.yaml'}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def query(q: str) -> list[Any]:
        url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(q)}"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                result: list[Any] = json.load(resp)["data"]["result"]
                return result
        except OSError:
            return []

    try:
        up = wait_for(lambda: query('up{job="cronwarden"} == 1'), timeout=60, what="a scrape")
        runs = wait_for(
            lambda: query("sum by (name, result) (cronwarden_task_runs_total)"),
            timeout=30,
            what="cronwarden_task_runs_total in Prometheus",
        )
        return {
            "up": bool(up),
            "runs_total": {
                f"{r['metric'].get('name')}/{r['metric'].get('result')}": r["value"][1]
                for r in runs
            },
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
