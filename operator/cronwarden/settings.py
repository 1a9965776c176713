"""Operator settings, from command-line options with environment fallbacks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    namespaces: list[str] = field(default_factory=list)
    all_namespaces: bool = False
    kubeconfig: str | None = None
    liveness_port: int = 8080
    metrics_port: int = 9090
    bind_address: str = "0.0.0.0"
    log_format: str = "plain"
    verbose: bool = False
    workers: int = 4
    resync_seconds: float = 300.0
    peering: str | None = None
    priority: int = 0
