"""kopf registrations. Handlers only enqueue the affected task; workers reconcile.

Watch events on ScheduledTasks, and on the CronJobs and Jobs labelled
app.kubernetes.io/managed-by=cronwarden, each put the owning task's key on a
de-duplicating queue; a periodic resync puts every known task on it too (next
run times move, drift may go unannounced). No per-object timers or
change-detection handlers are used, so kopf adds no finalizers and writes
nothing to the task besides the status the controller computes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from prometheus_client import start_http_server

from cronwarden.api import models
from cronwarden.core.builder import MANAGED_BY, MANAGED_BY_LABEL, TASK_LABEL
from cronwarden.runtime.controller import Controller
from cronwarden.runtime.kube import ApiError, Kube, load_api_client
from cronwarden.runtime.metrics import TaskMetrics
from cronwarden.runtime.queue import TaskKey, WorkQueue
from cronwarden.settings import Settings

log = logging.getLogger(__name__)
MANAGED = {MANAGED_BY_LABEL: MANAGED_BY}


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The service account in a pod, else $KUBECONFIG (set from --kubeconfig)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        return kopf.login_with_service_account(**kwargs)
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config: Settings = memo.settings
    settings.posting.enabled = False  # Events are posted by the controller only.
    if not config.all_namespaces and not any(set(ns) & set("*?[]!,") for ns in config.namespaces):
        # Exact namespace names need no namespace listing, which a Role-only install
        # may not do (kopf would retry it for a minute before falling back), and such
        # an install cannot watch CRDs either: start from discovery alone.
        settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    memo.queue = WorkQueue()
    memo.known = set()
    memo.metrics = TaskMetrics()
    if config.metrics_port:
        start_http_server(config.metrics_port, config.bind_address, registry=memo.metrics.registry)
        log.info("serving metrics on %s:%s/metrics", config.bind_address, config.metrics_port)
    memo.controller = Controller(Kube(load_api_client(config.kubeconfig)), memo.metrics)
    memo.workers = [
        asyncio.create_task(worker(memo), name=f"cronwarden-worker-{i}")
        for i in range(config.workers)
    ]
    memo.workers.append(asyncio.create_task(resync(memo, config.resync_seconds)))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for task in memo.workers:
        task.cancel()
    await asyncio.gather(*memo.workers, return_exceptions=True)


@kopf.on.event(models.GROUP, models.VERSION, models.PLURAL)
async def task_event(type: str, name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    key = (namespace or "", name)
    if type == "DELETED":
        memo.known.discard(key)
        memo.queue.forget(key)
        memo.metrics.forget(*key)
        return
    memo.known.add(key)
    memo.queue.add(key)


@kopf.on.event("batch", "v1", "cronjobs", labels=MANAGED)
@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def child_event(
    labels: Mapping[str, str], namespace: str | None, memo: Any, **_: Any
) -> None:
    task = labels.get(TASK_LABEL)
    if task and namespace:
        memo.queue.add((namespace, task))


async def worker(memo: kopf.Memo) -> None:
    queue: WorkQueue = memo.queue
    controller: Controller = memo.controller
    failures: dict[TaskKey, int] = {}
    while True:
        key = await queue.get()
        namespace, name = key
        try:
            wake_at = await asyncio.to_thread(controller.reconcile, namespace, name)
            failures.pop(key, None)
            if wake_at is not None:
                delay = (wake_at - datetime.now(UTC)).total_seconds()
                queue.add_after(key, max(delay, 0.0))
        except ApiError as err:
            count = failures[key] = failures.get(key, 0) + 1
            delay = min(2**count, 60) if err.retryable else 60
            log.warning(
                "reconcile of %s/%s failed (%s); retrying in %ss", namespace, name, err, delay
            )
            queue.add_after(key, delay)
        except Exception:
            log.exception("reconcile of %s/%s crashed; retrying in 60s", namespace, name)
            queue.add_after(key, 60)
        finally:
            queue.done(key)


async def resync(memo: kopf.Memo, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for key in list(memo.known):
            memo.queue.add(key)
