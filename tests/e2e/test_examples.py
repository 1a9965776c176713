"""Examples that run anywhere: every file in examples/ is applied in a namespace that
enforces Pod Security "restricted" (and warns about it), with the Secret and
PersistentVolumeClaim they name (hack/demo-prerequisites.yaml, as `make run` does).
Each task gets its CronJob, and a run started from it gets a pod: the API server
admitted it. A Job of a plain pod (no securityContext) in the same namespace gets
none, so the namespace does refuse what the examples must not be."""

from __future__ import annotations

from typing import Any

import yaml

from tests.e2e.support import ROOT, Cluster, Kubectl, wait_for

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
PREREQUISITES = ROOT / "hack" / "demo-prerequisites.yaml"
RESTRICTED = ("enforce", "warn")


def pods_of(cluster: Cluster, job: str) -> list[dict[str, Any]]:
    return cluster.list("pods", f"job-name={job}")


def refusals(cluster: Cluster, job: str) -> list[str]:
    return [
        e["message"]
        for e in cluster.list("events")
        if e["involvedObject"].get("kind") == "Job"
        and e["involvedObject"]["name"] == job
        and e["reason"] == "FailedCreate"
    ]


def test_every_example_is_admitted_in_a_restricted_namespace(
    cluster: Cluster, kubectl: Kubectl
) -> None:
    ns = cluster.namespace
    kubectl(
        "label",
        "namespace",
        ns,
        "--overwrite",
        *[f"pod-security.kubernetes.io/{mode}=restricted" for mode in RESTRICTED],
    )
    kubectl("-n", ns, "apply", "-f", str(PREREQUISITES))
    names = []
    for path in EXAMPLES:
        task = yaml.safe_load(path.read_text())
        cluster.apply(task)
        names.append(task["metadata"]["name"])
    assert len(names) >= 6

    for name in names:
        cluster.wait_ready(name, timeout=60)
        assert cluster.get("cronjob", name) is not None, name

    # A run of each, now. Pod Security's warn mode checks the Job's pod template
    # when the Job is created and would say so on stderr.
    for name in names:
        created = kubectl("-n", ns, "create", "job", f"{name}-now", f"--from=cronjob/{name}")
        assert "PodSecurity" not in created.stderr, (name, created.stderr)

    # The control: a pod that runs as root with default capabilities is refused.
    plain = kubectl("-n", ns, "create", "job", "plain", "--image=busybox:1.37", "--", "true")
    assert "would violate PodSecurity" in plain.stderr, plain.stderr
    refused = wait_for(
        lambda: refusals(cluster, "plain"), timeout=60, what="the plain Job's FailedCreate"
    )
    assert any("violates PodSecurity" in message for message in refused), refused
    assert not pods_of(cluster, "plain")

    admitted = {
        name: wait_for(
            lambda name=name: pods_of(cluster, f"{name}-now"),
            timeout=60,
            what=f"a pod of the Job {name}-now",
        )
        for name in names
    }
    for name, pods in admitted.items():
        assert not refusals(cluster, f"{name}-now"), name
        print(f"{name}: pod {pods[0]['metadata']['name']} {pods[0]['status'].get('phase')}")
