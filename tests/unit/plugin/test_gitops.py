"""suspend/resume warn when Argo CD or Flux manage the object."""

from __future__ import annotations

from typing import Any

import pytest

from cronwarden.plugin.gitops import Manager, managers, warning


@pytest.mark.parametrize(
    ("metadata", "found"),
    [
        ({}, []),
        ({"labels": {"app.kubernetes.io/instance": "backup"}}, []),  # Helm sets it too
        (
            {"annotations": {"argocd.argoproj.io/tracking-id": "app:cronwarden.io/X:ns/b"}},
            [Manager("Argo CD", "annotation argocd.argoproj.io/tracking-id")],
        ),
        (
            {
                "labels": {"app.kubernetes.io/instance": "backup"},
                "annotations": {"argocd.argoproj.io/instance": "backup"},
            },
            [Manager("Argo CD", "annotation argocd.argoproj.io/instance")],
        ),
        (
            {"labels": {"argocd.argoproj.io/instance": "backup"}},
            [Manager("Argo CD", "label argocd.argoproj.io/instance")],
        ),
        (
            {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps"}},
            [Manager("Flux", "label kustomize.toolkit.fluxcd.io/name=apps")],
        ),
        (
            {"labels": {"helm.toolkit.fluxcd.io/name": "vendor"}},
            [Manager("Flux", "label helm.toolkit.fluxcd.io/name=vendor")],
        ),
        (
            {
                "managedFields": [
                    {"manager": "kubectl-client-side-apply"},
                    {"manager": "argocd-controller"},
                ]
            },
            [Manager("Argo CD", "field manager argocd-controller")],
        ),
        (
            {"managedFields": [{"manager": "kustomize-controller"}]},
            [Manager("Flux", "field manager kustomize-controller")],
        ),
        (
            {"managedFields": [{"manager": "helm-controller"}, {"manager": "argocd-controller"}]},
            [
                Manager("Flux", "field manager helm-controller"),
                Manager("Argo CD", "field manager argocd-controller"),
            ],
        ),
        ({"managedFields": [{"manager": "kubectl"}, {"manager": "cronwarden"}]}, []),
    ],
)
def test_managers(metadata: dict[str, Any], found: list[Manager]) -> None:
    assert managers(metadata) == found


def test_warning_says_they_will_revert_it() -> None:
    text = warning(
        "scheduledtask.cronwarden.io/backup",
        "spec.suspend",
        [Manager("Flux", "label kustomize.toolkit.fluxcd.io/name=apps")],
    )
    assert text.startswith("Warning: scheduledtask.cronwarden.io/backup is managed by Flux")
    assert "they will revert it" in text
    assert "spec.suspend in Git" in text
