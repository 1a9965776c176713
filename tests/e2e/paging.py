"""One Prometheus, one Alertmanager and a webhook receiver around operator replicas,
for the end-to-end tests of the alerts that say a task or the operator stopped
(test_alerting_stops.py).

As in test_alerting.py: Prometheus scrapes with the scrape config the Prometheus
Operator generates from the chart's ServiceMonitor (tests/e2e/alerting.py), every
2 s, evaluates the chart's PrometheusRule every second with the shipped `for:`
durations, and Alertmanager routes on `owner` to the receiver. Each replica is a
static target with the discovery labels of its own pod, as behind the chart's
Service.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.alerting import (
    Alertmanager,
    Prometheus,
    Received,
    WebhookReceiver,
    alertmanager_config,
    discovered_labels,
    duration_seconds,
    prometheus_config,
    scrape_config,
)
from tests.e2e.test_alerting import (
    EVALUATION_INTERVAL,
    GROUP_INTERVAL,
    GROUP_WAIT,
    OWNERS,
    pages,
    rendered_monitoring,
)


@dataclass
class Paging:
    name: str  # the Prometheus' external label `prometheus`, on every alert it sends
    prometheus: Prometheus
    receiver: WebhookReceiver
    rules: dict[str, Any]
    service: dict[str, Any]

    def hold(self, alert: str) -> float:
        """The rule's shipped `for:` duration, in seconds."""
        [rule] = [r for g in self.rules["groups"] for r in g["rules"] if r.get("alert") == alert]
        return duration_seconds(rule.get("for", "0s"))

    def pages(self, alert: str, status: str = "firing") -> dict[tuple[str, str], Received]:
        """The first notification of `alert` per (namespace, name) from this Prometheus."""
        return pages(self.receiver.received(), self.name, status, alert)

    def first(self, alert: str, status: str = "firing") -> Received | None:
        """The first notification of `alert` from this Prometheus, whatever its labels."""
        return next(
            (
                r
                for r in self.receiver.received()
                if (r.labels.get("alertname"), r.labels.get("prometheus"), r.status)
                == (alert, self.name, status)
            ),
            None,
        )


def as_pod(discovered: dict[str, str], pod: str) -> dict[str, str]:
    return {
        **discovered,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_endpoint_address_target_name": pod,
    }


@contextmanager
def paging(targets: dict[str, str], workdir: Path, name: str) -> Iterator[Paging]:
    """Scrape `targets` (pod name: host:port of its metrics endpoint) and page."""
    monitor, service, deployment, prometheus_rule = rendered_monitoring()
    workdir.mkdir(parents=True, exist_ok=True)
    rule_file = workdir / "rules.yaml"
    rule_file.write_text(yaml.safe_dump(prometheus_rule["spec"], sort_keys=False))
    discovered = discovered_labels(service, deployment)
    with ExitStack() as cleanup:
        receiver = WebhookReceiver()
        cleanup.callback(receiver.close)
        alertmanager = Alertmanager(
            alertmanager_config(
                receiver, OWNERS, group_wait=GROUP_WAIT, group_interval=GROUP_INTERVAL
            ),
            workdir / "alertmanager",
        )
        cleanup.callback(alertmanager.stop)
        first = next(iter(targets.values()))
        scrape = scrape_config(monitor, 0, first, discovered)
        scrape["static_configs"] = [
            {"targets": [address], "labels": as_pod(discovered, pod)}
            for pod, address in targets.items()
        ]
        config = prometheus_config(
            scrape,
            rule_file,
            alertmanager,
            external_labels={"prometheus": name},
            evaluation_interval=EVALUATION_INTERVAL,
        )
        prometheus = Prometheus(name, config, workdir / "prometheus")
        cleanup.callback(prometheus.stop)
        yield Paging(name, prometheus, receiver, prometheus_rule["spec"], service)


def target(metrics_url: str) -> str:
    """host:port of an operator's /metrics URL."""
    return metrics_url.removeprefix("http://").removesuffix("/metrics")
