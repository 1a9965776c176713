"""Prometheus, Alertmanager and a webhook receiver, for end-to-end alerting tests.

Prometheus (built by `make tools`) scrapes a local operator with the scrape
config that the Prometheus Operator would generate from the chart's rendered
ServiceMonitor, and loads the rules of the chart's rendered PrometheusRule, so
that neither can drift from what the chart ships. The one difference is service
discovery: the operator runs as a local process, not as a pod behind the chart's
Service, so the target is static, and it carries the `__meta_kubernetes_*`
labels that `kubernetes_sd_configs` (role `endpoints`) would attach to the
chart's pod, derived from the rendered Service and Deployment. The relabelings
then set `namespace`, `service`, `pod`, `container`, `job`, `endpoint` and
`instance` exactly as they do in a cluster.

The translation follows the Prometheus Operator's generateServiceMonitorConfig
(pkg/prometheus/promcfg.go). It handles the fields the chart uses and fails on
any other, so a chart change that it does not understand breaks the test instead
of being ignored. Not reproduced: the sharding relabelings (a no-op with one
shard) and the Prometheus Operator's own global settings.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.support import BIN, ROOT, free_port, wait_for

CHART = ROOT / "helm" / "cronwarden"
RELEASE = "cw"
# The namespace the chart is rendered for: where the operator's pod would run.
OPERATOR_NAMESPACE = "cronwarden-system"

Manifest = list[dict[str, Any]]


# The chart


def render_chart(*sets: str, namespace: str = OPERATOR_NAMESPACE) -> Manifest:
    """`helm template` of the chart with the pinned helm, parsed, as for a cluster that
    serves the Prometheus Operator's kinds (the chart refuses its ServiceMonitor and
    PrometheusRule otherwise)."""
    args = [str(BIN / "helm"), "template", RELEASE, str(CHART), "--namespace", namespace]
    args += ["--api-versions=monitoring.coreos.com/v1/ServiceMonitor"]
    args += ["--api-versions=monitoring.coreos.com/v1/PrometheusRule"]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"helm template failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def one(manifest: Manifest, kind: str) -> dict[str, Any]:
    found = [doc for doc in manifest if doc["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects in the rendered chart"
    return found[0]


def duration_seconds(value: str) -> float:
    """A Prometheus duration ("90s", "1m", "1h30m") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", value)
    assert parts, f"not a duration: {value!r}"
    assert "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(int(n) * units[u] for n, u in parts)


# ServiceMonitor -> scrape config, as the Prometheus Operator generates it

_SPEC_FIELDS = {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels"}
_ENDPOINT_FIELDS = {
    "port",
    "path",
    "scheme",
    "interval",
    "scrapeTimeout",
    "honorLabels",
    "relabelings",
    "metricRelabelings",
}
_RELABEL_FIELDS = {
    "sourceLabels": "source_labels",
    "separator": "separator",
    "targetLabel": "target_label",
    "regex": "regex",
    "modulus": "modulus",
    "replacement": "replacement",
    "action": "action",
}


def _label_name(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _relabel(config: dict[str, Any]) -> dict[str, Any]:
    """A ServiceMonitor RelabelConfig (camelCase) as a Prometheus relabel_config."""
    unknown = set(config) - set(_RELABEL_FIELDS)
    assert not unknown, f"relabeling fields not translated: {unknown}"
    out = {_RELABEL_FIELDS[k]: v for k, v in config.items()}
    if "action" in out:
        out["action"] = out["action"].lower()
    return out


def scrape_config(
    monitor: dict[str, Any], index: int, target: str, discovered: dict[str, str]
) -> dict[str, Any]:
    """The scrape config for endpoint `index` of a ServiceMonitor, with one static
    target at `target` carrying the discovery labels `discovered`."""
    spec = monitor["spec"]
    unknown = set(spec) - _SPEC_FIELDS
    assert not unknown, f"ServiceMonitor fields not translated: {unknown}"
    assert not spec["selector"].get("matchExpressions"), "matchExpressions not translated"
    endpoint = spec["endpoints"][index]
    unknown = set(endpoint) - _ENDPOINT_FIELDS
    assert not unknown, f"ServiceMonitor endpoint fields not translated: {unknown}"
    selected = spec.get("namespaceSelector", {})
    assert selected.get("any") or discovered["__meta_kubernetes_namespace"] in selected.get(
        "matchNames", [monitor["metadata"]["namespace"]]
    ), "the ServiceMonitor does not select the Service's namespace"

    target_kind = [
        "__meta_kubernetes_endpoint_address_target_kind",
        "__meta_kubernetes_endpoint_address_target_name",
    ]
    relabelings: list[dict[str, Any]] = [
        {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}
    ]
    for key, value in sorted(spec["selector"].get("matchLabels", {}).items()):
        name = _label_name(key)
        relabelings.append(
            {
                "action": "keep",
                "source_labels": [
                    f"__meta_kubernetes_service_label_{name}",
                    f"__meta_kubernetes_service_labelpresent_{name}",
                ],
                "regex": f"({value});true",
            }
        )
    relabelings += [
        {
            "action": "keep",
            "source_labels": ["__meta_kubernetes_endpoint_port_name"],
            "regex": endpoint["port"],
        },
        {
            "source_labels": list(target_kind),
            "separator": ";",
            "regex": "Node;(.*)",
            "replacement": "${1}",
            "target_label": "node",
        },
        {
            "source_labels": list(target_kind),
            "separator": ";",
            "regex": "Pod;(.*)",
            "replacement": "${1}",
            "target_label": "pod",
        },
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {
            "action": "drop",
            "source_labels": ["__meta_kubernetes_pod_phase"],
            "regex": "(Failed|Succeeded)",
        },
    ]
    for label in spec.get("targetLabels", []):
        relabelings.append(
            {
                "source_labels": [f"__meta_kubernetes_service_label_{_label_name(label)}"],
                "target_label": _label_name(label),
                "regex": "(.+)",
                "replacement": "${1}",
            }
        )
    relabelings.append(
        {
            "source_labels": ["__meta_kubernetes_service_name"],
            "target_label": "job",
            "replacement": "${1}",
        }
    )
    if spec.get("jobLabel"):
        relabelings.append(
            {
                "source_labels": [
                    f"__meta_kubernetes_service_label_{_label_name(spec['jobLabel'])}"
                ],
                "target_label": "job",
                "regex": "(.+)",
                "replacement": "${1}",
            }
        )
    relabelings.append({"target_label": "endpoint", "replacement": endpoint["port"]})
    relabelings += [_relabel(r) for r in endpoint.get("relabelings", [])]

    config: dict[str, Any] = {
        "job_name": (
            f"serviceMonitor/{monitor['metadata']['namespace']}/{monitor['metadata']['name']}/{index}"
        ),
        # The Prometheus Operator writes honor_labels always; false when unset.
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "static_configs": [{"targets": [target], "labels": discovered}],
    }
    for field, key in (
        ("interval", "scrape_interval"),
        ("scrapeTimeout", "scrape_timeout"),
        ("path", "metrics_path"),
        ("scheme", "scheme"),
    ):
        if endpoint.get(field):
            config[key] = endpoint[field]
    config["relabel_configs"] = relabelings
    if endpoint.get("metricRelabelings"):
        config["metric_relabel_configs"] = [_relabel(r) for r in endpoint["metricRelabelings"]]
    return config


def discovered_labels(service: dict[str, Any], deployment: dict[str, Any]) -> dict[str, str]:
    """The labels `kubernetes_sd_configs` (role endpoints) attaches to the address of
    one running pod of `deployment` behind `service`'s port named "metrics"."""
    [port] = [p for p in service["spec"]["ports"] if p["name"] == "metrics"]
    pod_spec = deployment["spec"]["template"]
    [container] = [
        c
        for c in pod_spec["spec"]["containers"]
        if any(p.get("name") == port["targetPort"] for p in c.get("ports", []))
    ]
    # A pod name as a Deployment's ReplicaSet makes them.
    pod = f"{deployment['metadata']['name']}-7d4b9c8f6-x2x9q"
    labels = {
        "__meta_kubernetes_namespace": service["metadata"]["namespace"],
        "__meta_kubernetes_service_name": service["metadata"]["name"],
        "__meta_kubernetes_endpoint_port_name": port["name"],
        "__meta_kubernetes_endpoint_port_protocol": port.get("protocol", "TCP"),
        "__meta_kubernetes_endpoint_ready": "true",
        "__meta_kubernetes_endpoint_address_target_kind": "Pod",
        "__meta_kubernetes_endpoint_address_target_name": pod,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_container_name": container["name"],
        "__meta_kubernetes_pod_container_port_name": port["targetPort"],
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_ready": "true",
    }
    for prefix, source in (
        ("service", service["metadata"].get("labels", {})),
        ("pod", pod_spec["metadata"].get("labels", {})),
    ):
        for key, value in source.items():
            labels[f"__meta_kubernetes_{prefix}_label_{_label_name(key)}"] = str(value)
            labels[f"__meta_kubernetes_{prefix}_labelpresent_{_label_name(key)}"] = "true"
    return labels


# Servers


class Server:
    """A Prometheus or Alertmanager process on a free local port."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.process.poll() is None, f"{name} exited; see {log_path}"
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_for(ready, timeout=60, what=f"{name} to be ready")

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as resp:
            return json.load(resp)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Prometheus(Server):
    def __init__(self, name: str, config: dict[str, Any], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        super().__init__(
            name,
            [
                str(BIN / "prometheus"),
                f"--config.file={workdir / 'prometheus.yaml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            port,
            workdir / "prometheus.log",
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query: [{"metric": {labels}, "value": [ts, "v"]}, ...]."""
        body = self.get("/api/v1/query", query=expr)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def alerting_rule(self, name: str) -> dict[str, Any]:
        """The state of one alerting rule: health ("ok", "err", "unknown"), lastError, alerts."""
        body = self.get("/api/v1/rules", type="alert")
        rules = [r for g in body["data"]["groups"] for r in g["rules"] if r["name"] == name]
        assert len(rules) == 1, f"{len(rules)} alerting rules named {name}"
        rule: dict[str, Any] = rules[0]
        return rule


def prometheus_config(
    scrape: dict[str, Any],
    rule_file: Path,
    alertmanager: Server,
    *,
    external_labels: dict[str, str],
    evaluation_interval: str,
) -> dict[str, Any]:
    return {
        "global": {
            "evaluation_interval": evaluation_interval,
            "external_labels": external_labels,
        },
        "rule_files": [str(rule_file)],
        "alerting": {
            "alertmanagers": [
                {
                    "api_version": "v2",
                    "static_configs": [{"targets": [alertmanager.url.removeprefix("http://")]}],
                }
            ]
        },
        "scrape_configs": [scrape],
    }


class Alertmanager(Server):
    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "alertmanager.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        super().__init__(
            "alertmanager",
            [
                str(BIN / "alertmanager"),
                f"--config.file={workdir / 'alertmanager.yaml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                # A single instance: no gossip cluster.
                "--cluster.listen-address=",
            ],
            port,
            workdir / "alertmanager.log",
        )


def alertmanager_config(
    receiver: WebhookReceiver, owners: list[str], *, group_wait: str, group_interval: str
) -> dict[str, Any]:
    """Every alert in its own group; routed on `owner` to that team's webhook path
    (/<owner>), anything else to /default; resolved notifications on."""

    def webhook(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "webhook_configs": [{"url": f"{receiver.url}/{name}", "send_resolved": True}],
        }

    return {
        "route": {
            "receiver": "default",
            "group_by": ["..."],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": "1h",
            "routes": [{"matchers": [f'owner="{owner}"'], "receiver": owner} for owner in owners],
        },
        "receivers": [webhook("default")] + [webhook(owner) for owner in owners],
    }


# The webhook receiver


@dataclass(frozen=True)
class Received:
    """One alert of one webhook notification, with the time it arrived."""

    arrived: float
    path: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str


class WebhookReceiver:
    """An Alertmanager webhook endpoint on 127.0.0.1, in a thread, recording every alert."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    for alert in body["alerts"]:
                        receiver._received.append(
                            Received(
                                arrived,
                                self.path,
                                alert["status"],
                                alert["labels"],
                                alert["annotations"],
                                alert["startsAt"],
                            )
                        )
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
