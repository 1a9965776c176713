"""The subcommands that talk to the cluster: read through `client`, decide and format
with the pure modules, write to the given streams, return the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from cronwarden.core.runs import run_of
from cronwarden.plugin import gitops, tasks, trigger, why
from cronwarden.plugin.client import Client
from cronwarden.plugin.errors import ClusterError, UsageError, describe
from cronwarden.plugin.text import dump
from cronwarden.wire import ApiError

KIND = "scheduledtask.cronwarden.io"


def as_list(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A kubectl-style List, for -o json|yaml without a name."""
    return {"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {}}


def get(
    c: Client,
    namespace: str,
    name: str | None,
    *,
    all_namespaces: bool,
    output: str | None,
    now: datetime,
    out: TextIO,
    err: TextIO,
    selector: str | None = None,
) -> int:
    if name is not None and all_namespaces:
        raise UsageError("a task cannot be retrieved by name across all namespaces")
    if name is not None and selector:
        raise UsageError("name cannot be provided when a selector is specified")
    found = (
        [c.get_task(namespace, name)]
        if name is not None
        else c.list_tasks(None if all_namespaces else namespace, selector)
    )
    if output in ("json", "yaml"):
        dump(found[0] if name is not None else as_list(found), output, out)
        return 0
    if output == "name":
        out.write("".join(f"{KIND}/{t['metadata']['name']}\n" for t in found))
        return 0
    if not found:
        where = "" if all_namespaces else f" in {namespace} namespace"
        err.write(f"No resources found{where}.\n")
        return 0
    out.write(tasks.get_table(found, now, with_namespace=all_namespaces, wide=output == "wide"))
    return 0


def start_run(
    c: Client,
    namespace: str,
    name: str,
    *,
    output: str | None,
    now: datetime,
    out: TextIO,
    err: TextIO,
) -> int:
    """trigger: a Job from the task's CronJob, as `kubectl create job --from` makes it."""
    task = c.get_task(namespace, name)
    source = trigger.cronjob_of(task)
    if source is None:
        ready = tasks.conditions(task).get("Ready") or {}
        why_not = f" (Ready: {ready.get('reason')}: {ready.get('message')})" if ready else ""
        raise ClusterError(f"scheduledtask {name} has no CronJob yet{why_not}")
    cronjob = c.get_cronjob(namespace, source)
    if cronjob is None:
        raise ClusterError(f'cronjob "{source}" of scheduledtask {name} not found')
    if tasks.cronjob_ref(task) is None and not trigger.controlled_by(
        cronjob, task["metadata"]["uid"]
    ):
        raise ClusterError(
            f"cronjob {source} is not controlled by scheduledtask {name}: "
            "a run started from it would not be counted for the task"
        )
    if (cronjob.get("spec") or {}).get("suspend"):
        err.write(f"Note: cronjob {source} is suspended; this run starts anyway.\n")
    job = trigger.job_from_cronjob(cronjob, trigger.job_name(source, now), c.whoami())
    try:
        created = c.create_job(job)
    except ApiError as error:
        # Where OwnerReferencesPermissionEnforcement is on (OpenShift, hardened clusters),
        # blockOwnerDeletion needs permission to update cronjobs/finalizers: that is why
        # kubectl omits it. Then do as kubectl does.
        if error.status not in (403, 422) or "blockOwnerDeletion" not in error.message:
            raise
        err.write("Note: not allowed to set blockOwnerDeletion; creating the Job without it.\n")
        owner = job["metadata"]["ownerReferences"][0]
        owner.pop("blockOwnerDeletion", None)
        created = c.create_job(job)
    if output == "name":
        out.write(f"job.batch/{created['metadata']['name']}\n")
    elif output:
        dump(created, output, out)
    else:
        out.write(f"job.batch/{created['metadata']['name']} created\n")
    return 0


def set_suspend(
    c: Client, namespace: str, name: str, *, suspend: bool, out: TextIO, err: TextIO
) -> int:
    """suspend / resume: spec.suspend of the task, or of the CronJob it monitors."""
    verb = "suspended" if suspend else "resumed"
    task = c.get_task(namespace, name)
    ref = tasks.cronjob_ref(task)
    if ref is not None:
        cronjob = c.get_cronjob(namespace, ref)
        if cronjob is None:
            raise ClusterError(f'cronjob "{ref}" monitored by scheduledtask {name} not found')
        target, what = cronjob, f"cronjob.batch/{ref}"
        note = f" (scheduledtask {name} monitors it: its spec.cronJobRef names this CronJob)"
    else:
        target, what, note = task, f"{KIND}/{name}", ""
    if bool((target.get("spec") or {}).get("suspend")) == suspend:
        out.write(f"{what} already {verb} (no change){note}\n")
        return 0
    found = gitops.managers(target.get("metadata") or {})
    if found:
        err.write(gitops.warning(what, "spec.suspend", found) + "\n")
    patch = {"spec": {"suspend": suspend}}
    if ref is not None:
        c.patch_cronjob(namespace, ref, patch)
    else:
        c.patch_task(namespace, name, patch)
    out.write(f"{what} {verb}{note}\n")
    return 0


def explain(
    c: Client,
    namespace: str,
    name: str,
    *,
    now: datetime,
    out: TextIO,
    err: TextIO,
    output: str | None = None,
) -> int:
    """why: conditions, runs, Events and what they mean."""
    task = c.get_task(namespace, name)
    if output == "name":
        out.write(f"{KIND}/{task['metadata']['name']}\n")
        return 0
    uid = task["metadata"].get("uid")
    source = trigger.cronjob_of(task)
    cronjob = c.get_cronjob(namespace, source) if source else None
    note = "not found" if source and cronjob is None else ""
    if (
        cronjob is not None
        and tasks.cronjob_ref(task) is None
        and not trigger.controlled_by(cronjob, uid)
    ):
        cronjob, note = None, "not controlled by this task"  # so its Jobs are not runs
    runs = []
    if cronjob is not None:
        try:
            jobs = c.list_jobs(namespace)
        except ApiError as error:
            err.write(f"Warning: cannot list Jobs: {describe(error)}\n")
            jobs = []
        owner = cronjob["metadata"]["uid"]
        runs = [run_of(j) for j in jobs if trigger.controlled_by(j, owner)]
    try:
        events = [
            e
            for e in c.list_events(namespace, name)
            if (e.get("involvedObject") or {}).get("uid") in (None, uid)
        ]
    except ApiError as error:
        err.write(f"Warning: cannot list Events: {describe(error)}\n")
        events = []
    if output in ("json", "yaml"):
        dump(why.as_data(task, runs, events, now, source, note), output, out)
    else:
        out.write(why.render(task, runs, events, now, source, note, wide=output == "wide"))
    return 0
