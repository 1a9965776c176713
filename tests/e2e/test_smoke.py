"""The chain every later end-to-end test stands on: the real CronJob and Job
controllers run, kwok's fake nodes run and complete pods, and CRDs are served."""

from __future__ import annotations

import json

from kubernetes import client
from kubernetes.client import ApiClient

from tests.e2e.support import Kubectl, wait_for

FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"


def job_condition(job: client.V1Job, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in job.status.conditions or [])


def pod_template(labels: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "metadata": {"labels": labels or {}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}],
        },
    }


def test_cronjob_every_minute_starts_a_job_that_completes(api: ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_cron_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "every-minute"},
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {"spec": {"backoffLimit": 0, "template": pod_template()}},
            },
        },
    )

    def first_job() -> client.V1Job | None:
        jobs = batch.list_namespaced_job(namespace).items
        return jobs[0] if jobs else None

    # The next slot is at most 60 s away; the controller acts on it within seconds.
    job = wait_for(first_job, timeout=75, what="the CronJob's first Job")
    assert job.metadata.owner_references[0].kind == "CronJob"
    assert "batch.kubernetes.io/cronjob-scheduled-timestamp" in job.metadata.annotations

    done = wait_for(
        lambda: (
            job_condition(j := batch.read_namespaced_job(job.metadata.name, namespace), "Complete")
            and j
        ),
        timeout=60,
        what=f"Job {job.metadata.name} to complete",
    )
    assert done.status.succeeded == 1
    cron = wait_for(
        lambda: (
            (
                cj := batch.read_namespaced_cron_job("every-minute", namespace)
            ).status.last_successful_time
            and cj
        ),
        timeout=30,
        what="the CronJob's lastSuccessfulTime",
    )
    assert cron.status.last_schedule_time is not None


def test_pod_labelled_to_fail_makes_its_job_failed(api: ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "fails"},
            "spec": {"backoffLimit": 0, "template": pod_template({FAIL_LABEL: "true"})},
        },
    )
    failed = wait_for(
        lambda: job_condition(j := batch.read_namespaced_job("fails", namespace), "Failed") and j,
        timeout=60,
        what="Job fails to fail",
    )
    assert failed.status.failed == 1
    assert not failed.status.succeeded


def test_crd_applied_with_kubectl_is_served(kubectl: Kubectl, namespace: str) -> None:
    group = f"{namespace}.smoke.cronwarden.io"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(crd))
    try:
        kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=30s")
        widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}}
        # Discovery can lag the Established condition by a moment: retry until served.
        wait_for(
            lambda: (
                kubectl(
                    "-n",
                    namespace,
                    "apply",
                    "-f",
                    "-",
                    input=json.dumps({**widget, "spec": {"size": 3}}),
                    check=False,
                ).returncode
                == 0
            ),
            timeout=30,
            what="the Widget to be accepted",
        )
        got = json.loads(
            kubectl("-n", namespace, "get", f"widgets.{group}", "w", "-o", "json").stdout
        )
        assert got["spec"] == {"size": 3}
        # The schema is enforced by the API server.
        bad = kubectl(
            "-n",
            namespace,
            "apply",
            "-f",
            "-",
            input=json.dumps({**widget, "metadata": {"name": "bad"}, "spec": {"size": 0}}),
            check=False,
        )
        assert bad.returncode != 0
        assert "spec.size" in bad.stderr
    finally:
        kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)
