"""`kubectl cronwarden trigger`: the Job that starts a run now. Pure.

The Job is the one `kubectl create job --from=cronjob/NAME` creates (kubectl's
`createJobFromCronJob`): the CronJob's jobTemplate labels, annotations and spec,
the annotation cronjob.kubernetes.io/instantiate=manual, and the CronJob as its
controller. The operator counts a Job as a run of the task through that owner
reference (by uid), and as a manual run because it has no scheduled-timestamp
annotation (docs/detection.md). Two additions: who asked for the run
(cronwarden.io/triggered-by, shown in status.lastRun.triggeredBy), and
blockOwnerDeletion, as on the Jobs the CronJob controller creates itself, so that
a foreground deletion of the CronJob waits for the run too.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from cronwarden.core.runs import TRIGGERED_BY_ANNOTATION
from cronwarden.plugin.tasks import cronjob_ref

INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"
# A Job's name is also the value of its pods' job-name label: at most 63 characters.
MAX_JOB_NAME = 63


def cronjob_of(task: dict[str, Any]) -> str | None:
    """The CronJob a run of the task is started from: spec.cronJobRef.name in monitor
    mode, else the one the operator reports in status.cronJobName."""
    return cronjob_ref(task) or (task.get("status") or {}).get("cronJobName") or None


def job_name(cronjob: str, now: datetime) -> str:
    """`<cronjob>-manual-<unix seconds>`, at most 63 characters. Where it would be longer,
    the CronJob's part is shortened, never the seconds, so names stay unique."""
    suffix = f"-manual-{int(now.timestamp())}"
    head = cronjob[: MAX_JOB_NAME - len(suffix)].rstrip("-.")
    return head + suffix


def job_from_cronjob(
    cronjob: dict[str, Any],
    name: str,
    triggered_by: str | None = None,
    *,
    block_owner_deletion: bool = True,
) -> dict[str, Any]:
    meta = cronjob["metadata"]
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    # kubectl's order: its own annotation first, so the template may override it.
    annotations = {INSTANTIATE_ANNOTATION: "manual", **(template_meta.get("annotations") or {})}
    if triggered_by:
        annotations[TRIGGERED_BY_ANNOTATION] = triggered_by
    owner: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }
    if block_owner_deletion:
        owner["blockOwnerDeletion"] = True
    job_meta: dict[str, Any] = {
        "name": name,
        "namespace": meta["namespace"],
        "annotations": annotations,
        "ownerReferences": [owner],
    }
    if template_meta.get("labels"):
        job_meta["labels"] = dict(template_meta["labels"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def controlled_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether `obj`'s controller (the ownerReference with controller: true) has `uid`."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == uid for r in refs)
