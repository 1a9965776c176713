"""The operator's moving parts in one place: cache, queue, workers, resync and
leader election, started and stopped together.

Watch events always feed the cache and the queue (a standby stays warm); the
workers, the resync and the time-driven wake-ups run only while this replica is
active. A reconcile reads the cache on the event loop, runs in a worker thread
(its writes are blocking HTTP calls), and its answers go back into the cache.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from cronwarden.core.builder import MANAGED_BY, MANAGED_BY_LABEL
from cronwarden.runtime.cache import Body, Cache, Key
from cronwarden.runtime.controller import Controller, NotActive
from cronwarden.runtime.kube import ApiError, Kube
from cronwarden.runtime.leader import LeaderElector, LeaseConfig
from cronwarden.runtime.metrics import TaskMetrics
from cronwarden.runtime.queue import WorkQueue
from cronwarden.settings import Settings

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: Settings, kube: Kube, metrics: TaskMetrics) -> None:
        self.settings = settings
        self.cache = Cache()
        self.queue = WorkQueue()
        self.metrics = metrics
        self.elector: LeaderElector | None = None
        if settings.leader_election:
            self.elector = LeaderElector(
                kube,
                LeaseConfig(
                    settings.leader_election_namespace,
                    settings.leader_election_id,
                    settings.identity,
                ),
                self.start_workers,
                self.stop_workers,
            )
        self.controller = Controller(
            kube,
            metrics,
            active=self.active,
            excluded_namespaces=frozenset(settings.excluded_namespaces),
            max_tasks_per_namespace=settings.max_tasks_per_namespace,
        )
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="reconcile")
        # Events are posted by one thread of their own, in order, off the workers' path.
        self._events = ThreadPoolExecutor(1, thread_name_prefix="events")
        self._workers: list[asyncio.Task[None]] = []
        self._elector_task: asyncio.Task[None] | None = None
        self.kube = kube
        # Namespaces whose CronJobs and Jobs this replica has listed since it became
        # active: a task is judged only once its runs are all in the cache.
        self._synced: set[str] = set()
        self._syncing: dict[str, asyncio.Lock] = {}

    def active(self) -> bool:
        return self.elector.active() if self.elector is not None else bool(self._workers)

    async def start(self) -> None:
        if self.elector is None:
            await self.start_workers()
        else:
            self._elector_task = asyncio.create_task(self.elector.run(), name="leader-election")

    async def stop(self) -> None:
        if self._elector_task is not None:
            self._elector_task.cancel()
            await asyncio.gather(self._elector_task, return_exceptions=True)
        await self.stop_workers()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._events.shutdown(wait=False, cancel_futures=True)

    async def start_workers(self) -> None:
        if self._workers:
            return
        self.metrics.set_active(True)
        self._workers = [
            asyncio.create_task(self.worker(), name=f"cronwarden-worker-{i}")
            for i in range(self.settings.workers)
        ]
        self._workers.append(asyncio.create_task(self.resync(), name="cronwarden-resync"))
        for key in list(self.cache.tasks):
            self.queue.add(key)
        if limit := self.settings.max_tasks_per_namespace:
            for namespace in self.cache.namespaces():
                over = self.cache.namespace_size(namespace) - limit
                self.metrics.set_over_limit(namespace, max(over, 0))
        log.info(
            "active: reconciling with %d worker(s); the cache holds %s",
            self.settings.workers,
            ", ".join(f"{n} {kind}" for kind, n in self.cache.counts().items()),
        )

    async def stop_workers(self) -> None:
        """Stop at once: no more reconciles, wake-ups or task metrics from this replica."""
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self.queue.cancel_timers()
        self.metrics.clear()
        self.metrics.set_active(False)
        self._synced.clear()

    # Watch events

    def task_event(self, type_: str | None, body: Body) -> None:
        size = self.cache.namespace_size(body["metadata"].get("namespace", ""))
        key = self.cache.task_event(type_, body)
        if self.settings.max_tasks_per_namespace:
            self._count_over_limit(key[0], size)
        if type_ == "DELETED":
            self.queue.forget(key)
            self.controller.forget(key)
            return
        self.queue.add(key)

    def _count_over_limit(self, namespace: str, size_before: int) -> None:
        limit = self.settings.max_tasks_per_namespace
        size = self.cache.namespace_size(namespace)
        if size != size_before:
            self.metrics.set_over_limit(namespace, max(size - limit, 0))
            if size < size_before:
                # A task left: the one that moved under the limit gets its CronJob now.
                moved = self.cache.task_at(namespace, limit - 1)
                if moved is not None:
                    self.queue.add(moved)

    def cronjob_event(self, type_: str | None, body: Body, task: str | None) -> None:
        self.cache.cronjob_event(type_, body)
        self._enqueue(body, task)

    def job_event(self, type_: str | None, body: Body, task: str | None) -> None:
        self.cache.job_event(type_, body)
        self._enqueue(body, task)

    def _enqueue(self, body: Body, task: str | None) -> None:
        # The task label only routes the event; ownership is decided by uid.
        namespace = (body.get("metadata") or {}).get("namespace")
        if task and namespace and (namespace, task) in self.cache.tasks:
            self.queue.add((namespace, task))

    # Work

    async def worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(loop, key)
            finally:
                self.queue.done(key)

    async def sync(self, loop: asyncio.AbstractEventLoop, namespace: str) -> None:
        """List the namespace's managed CronJobs and Jobs into the cache, once per term
        as the active replica. kopf's watches list them too, but give no sign of when
        their listing is complete; judging a task before its Jobs are known would report
        a running Forbid run's slot as missed."""
        lock = self._syncing.setdefault(namespace, asyncio.Lock())
        async with lock:
            if namespace in self._synced:
                return
            selector = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
            cronjobs, jobs = await loop.run_in_executor(
                self._executor, self.kube.list_managed, namespace, selector
            )
            for body in cronjobs:
                self.cache.cronjob_event(None, body)
            for body in jobs:
                self.cache.job_event(None, body)
            self._synced.add(namespace)
            log.debug("listed %d CronJob(s), %d Job(s) in %s", len(cronjobs), len(jobs), namespace)

    async def reconcile(self, loop: asyncio.AbstractEventLoop, key: Key) -> None:
        namespace, name = key
        try:
            if namespace not in self._synced:
                await self.sync(loop, namespace)
            view = self.cache.view(key)
            result = await loop.run_in_executor(self._executor, self.controller.reconcile, view)
        except NotActive:
            return
        except ApiError as err:
            if err.status == 409:
                # The task or CronJob changed since the cache saw it: the watch event
                # that says so is on its way; try again soon.
                delay = self.queue.retry(key, 0.5)
            else:
                delay = self.queue.retry(key, err.retry_after)
            log.warning(
                "reconcile of %s/%s failed (%s); retrying in %.1fs", namespace, name, err, delay
            )
            return
        except Exception:
            delay = self.queue.retry(key)
            log.exception("reconcile of %s/%s crashed; retrying in %.1fs", namespace, name, delay)
            return
        self.queue.succeeded(key)
        if result.task is not None:
            self.cache.task_event("MODIFIED", result.task)
        if result.cronjob is not None:
            self.cache.cronjob_event("MODIFIED", result.cronjob)
        if result.cronjob_uid and result.recorded:
            self.cache.forget_departed(result.cronjob_uid, result.recorded)
        if result.events:
            self._events.submit(self.controller.post_events, result.events)
        if result.wake_at is not None:
            delay = (result.wake_at - datetime.now(UTC)).total_seconds()
            self.queue.add_after(key, max(delay, 0.0))

    async def resync(self) -> None:
        """The safety net, served from memory: every task is reconciled from the cache
        every resync period, which sends requests only for what is out of sync."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            for key in list(self.cache.tasks):
                self.queue.add(key, background=True)
