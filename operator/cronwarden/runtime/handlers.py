"""kopf registrations: log in, start and stop the engine, and hand every watch
event to it. Nothing here decides anything.

kopf watches ScheduledTasks in the operator's namespaces. CronJobs and Jobs, only
where labelled app.kubernetes.io/managed-by=cronwarden, and Events, only the Job
controller's FailedCreate on Jobs (both selected on the server), are watched by the
operator's own reflectors (runtime/reflector.py says why), started and stopped here
with the engine. No per-object timers or change-detection
handlers are used, so kopf adds no finalizers and writes nothing to the task
besides the status the controller computes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Iterator
from typing import Any

import kopf

from cronwarden.api import models
from cronwarden.core.builder import FIELD_MANAGER, MANAGED_BY, MANAGED_BY_LABEL, TASK_LABEL
from cronwarden.runtime import reflector, shards
from cronwarden.runtime.engine import Engine
from cronwarden.runtime.kube import CRONJOBS, EVENTS, JOBS, Kube, in_cluster, load_api_client
from cronwarden.runtime.metrics import TaskMetrics, serve
from cronwarden.runtime.reflector import Source
from cronwarden.runtime.refusals import FIELD_SELECTOR
from cronwarden.settings import (
    API_RETRY_BACKOFFS,
    API_RETRY_JITTER,
    LIST_CHUNK_SIZE,
    Settings,
)

log = logging.getLogger(__name__)


class RetryBackoffs:
    """kopf's `error_backoffs`: the delays between retries of one request, capped
    and jittered (a fresh draw for each request that fails), and without end: the
    last delay repeats. kopf gives a request up after its last delay, and a watch
    request given up on a 5xx or a 403 ends kopf's watcher, which stops the
    operator: a restarted API server answers 503 until it has installed its paths,
    for longer than ten delays (25 s) on a loaded machine (README, D4). kopf's
    requests are only its watches and lists (it posts and patches nothing here), so
    they are tried again every 3 s or so until the API server answers them."""

    def __init__(self, delays: tuple[float, ...], jitter: float) -> None:
        self.delays, self.jitter = delays, jitter

    def __iter__(self) -> Iterator[float]:
        delays = itertools.chain(self.delays, itertools.repeat(self.delays[-1]))
        return (d * random.uniform(1 - self.jitter, 1 + self.jitter) for d in delays)


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf builds a "diff base" of every object on every watch event (a deep copy of
    the body without its status) for change handlers. cronwarden registers none, so
    the copy was thrown away: a fifth of the event loop's time in a burst of Jobs.
    This storage builds nothing and keeps nothing."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


class NoProgress(kopf.ProgressStorage):
    """kopf's record of handlers' progress, kept in each object for change handlers that
    run in steps; cronwarden registers none (event handlers keep no progress), yet the
    default storage cleans two copies of every event's body of it. Keeps nothing."""

    def fetch(self, *, key: kopf.HandlerId, body: kopf.Body) -> kopf.ProgressRecord | None:
        return None

    def store(
        self,
        *,
        key: kopf.HandlerId,
        record: kopf.ProgressRecord,
        body: kopf.Body,
        patch: kopf.Patch,
    ) -> None:
        pass

    def purge(self, *, key: kopf.HandlerId, body: kopf.Body, patch: kopf.Patch) -> None:
        pass

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        pass

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        return essence


@kopf.on.login()
def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """The same decision as the operator's own client (kube.in_cluster)."""
    if in_cluster(memo.settings.kubeconfig):
        return kopf.login_with_service_account(**kwargs)
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config: Settings = memo.settings
    settings.posting.enabled = False  # Events are posted by the controller only.
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.progress_storage = NoProgress()
    if not config.clusterwide:
        # Exact namespace names need no namespace listing, which a Role-only install
        # may not do (kopf would retry it for a minute before falling back), and such
        # an install cannot watch CRDs either: start from discovery alone.
        settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.chunk_size = LIST_CHUNK_SIZE
    settings.networking.request_timeout = 60
    # The blind window after an API server outage is the retry delay in progress.
    settings.networking.error_backoffs = RetryBackoffs(API_RETRY_BACKOFFS, API_RETRY_JITTER)
    metrics: TaskMetrics | None = getattr(memo, "metrics", None)  # a shard's (runner.py)
    if metrics is None:
        metrics = TaskMetrics()
        if config.metrics_port:
            serve(metrics, config.bind_address, config.metrics_port)
    if config.metrics_port:
        log.info("serving metrics on %s:%s/metrics", config.bind_address, config.metrics_port)
    kube = Kube(
        load_api_client(config.kubeconfig, connections=config.workers + 2),
        on_request=metrics.count_request,
        status_manager=FIELD_MANAGER if config.shard is None else config.lease_name,
    )
    on_term_end = None
    if config.shard is not None:
        chosen = await asyncio.to_thread(shards.selectors, config, kube)
        for (group, plural), selector in chosen.items():
            settings.watching.shard_selectors[group, plural] = selector
        kube.shard_selectors = shards.list_paths(chosen)
        on_term_end = memo.stop_flag.set  # its watches are this shard's: start again
    engine = memo.engine = Engine(config, kube, metrics, on_term_end)
    managed = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
    memo.reflectors = reflector.start(
        kube,
        asyncio.get_running_loop(),
        config.scopes(),
        [
            Source(CRONJOBS, lambda t, b: engine.cronjob_event(t, b, task_label(b)), managed),
            Source(JOBS, lambda t, b: engine.job_event(t, b, task_label(b)), managed),
            # Only the Job controller's refusals of pods (runtime/refusals.py).
            Source(EVENTS, engine.refusal_event, fields=FIELD_SELECTOR),
        ],
    )
    await engine.start()


def task_label(body: dict[str, Any]) -> str | None:
    """The task a managed CronJob or Job names (it only routes the event)."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    task = labels.get(TASK_LABEL)
    return str(task) if task else None


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for watch in memo.get("reflectors") or []:
        watch.stop()
    await memo.engine.stop()


@kopf.on.event(models.GROUP, models.VERSION, models.PLURAL)
async def task_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    memo.engine.task_event(event.get("type"), event["object"])
