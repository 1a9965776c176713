"""Is an object managed by Argo CD or Flux? Then a change made by hand (suspend,
resume) is reverted at their next sync. Pure: reads metadata only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Manager:
    tool: str  # "Argo CD" or "Flux"
    evidence: str  # what says so, for the warning


# Metadata that Argo CD and Flux put on what they apply.
ARGO_ANNOTATIONS = ("argocd.argoproj.io/tracking-id", "argocd.argoproj.io/instance")
ARGO_LABELS = ("argocd.argoproj.io/instance",)
FLUX_LABELS = (
    "kustomize.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/name",
)
# Field managers in metadata.managedFields (server-side apply and updates).
MANAGERS = {
    "argocd-controller": "Argo CD",
    "argocd-application-controller": "Argo CD",
    "kustomize-controller": "Flux",
    "helm-controller": "Flux",
}


def managers(metadata: dict[str, Any]) -> list[Manager]:
    """Every sign that a GitOps controller applies this object, one per tool."""
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    found: dict[str, str] = {}
    for key in ARGO_ANNOTATIONS:
        if key in annotations:
            found.setdefault("Argo CD", f"annotation {key}")
    for key in ARGO_LABELS:
        if key in labels:
            found.setdefault("Argo CD", f"label {key}")
    for key in FLUX_LABELS:
        if key in labels:
            found.setdefault("Flux", f"label {key}={labels[key]}")
    for entry in metadata.get("managedFields") or []:
        tool = MANAGERS.get(str(entry.get("manager", "")))
        if tool is not None:
            found.setdefault(tool, f"field manager {entry['manager']}")
    return [Manager(tool, evidence) for tool, evidence in found.items()]


def warning(what: str, field: str, found: list[Manager]) -> str:
    """The stderr warning for a hand-made change of `field` on `what`."""
    by = "; ".join(f"{m.tool} ({m.evidence})" for m in found)
    return (
        f"Warning: {what} is managed by {by}: they will revert it at their next sync. "
        f"Change {field} in Git to make it last."
    )
