"""The operator's moving parts in one place: cache, audit, queue, workers,
resync, Events and leader election, started and stopped together.

Watch events always feed the cache and the queue (a standby stays warm), and so
do monitor mode's watches, one per namespace that holds monitored tasks
(runtime/monitorwatch.py), started with its first such task and stopped with its
last; the audit, the workers, the resync and the time-driven wake-ups run only
while this replica is active, and the first reconcile of a term waits for a
complete audit, so no task is judged before its runs are known. A reconcile reads the cache on
the event loop, runs in a worker thread (its writes are blocking HTTP calls),
and its answers go back into the cache. After a stall of the process (frozen,
starved: runtime/stall.py) reconciles wait for a complete audit again, as at the
start of a term, so that no slot is judged from the view of before the stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from cronwarden.core.runs import run_of
from cronwarden.runtime.audit import Audit, Pair, Plan
from cronwarden.runtime.cache import CRONJOBS, JOBS, TASKS, Body, Cache, Key, Listing
from cronwarden.runtime.controller import Controller, NotActive, Stale
from cronwarden.runtime.events import EventQueue
from cronwarden.runtime.kube import ApiError, Kube
from cronwarden.runtime.leader import LeaderElector, LeaseConfig
from cronwarden.runtime.metrics import TaskMetrics
from cronwarden.runtime.monitors import Monitors, reference
from cronwarden.runtime.monitorwatch import NamespaceWatch
from cronwarden.runtime.queue import WorkQueue
from cronwarden.runtime.refusals import Refusals
from cronwarden.runtime.stall import TICK_SECONDS, Stalls
from cronwarden.settings import Settings

log = logging.getLogger(__name__)

# A failed audit is tried again after this long (and the workers wait for the first).
AUDIT_RETRY = 5.0
# A write refused with 409 Conflict is tried again this soon (the newer object is
# on its way through the watch).
CONFLICT_RETRY = 0.2
# A CronJob's own events (its status: the active list, the last times) are reconciled
# this long after they arrive. The CronJob controller writes them right after it
# creates or sees a Job, whose event comes on another watch: reconciled at once,
# the task's status would be written from the CronJob before its Job is known, and
# once more when it is. Nothing the status reports is read from them alone.
CRONJOB_EVENT_DELAY = 0.5


class Engine:
    def __init__(
        self,
        settings: Settings,
        kube: Kube,
        metrics: TaskMetrics,
        on_term_end: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        # Called once this replica stopped leading, except on shutdown (a shard's holder
        # then exits).
        self.on_term_end = on_term_end
        self._shutting_down = False
        self.cache = Cache()
        self.queue = WorkQueue()
        self.metrics = metrics
        self.elector: LeaderElector | None = None
        if settings.leader_election:
            self.elector = LeaderElector(
                kube,
                LeaseConfig(
                    settings.leader_election_namespace,
                    settings.lease_name,
                    settings.identity,
                ),
                self.start_workers,
                self.end_term,
            )
        self.stalls = Stalls()
        self.controller = Controller(
            kube,
            metrics,
            active=self.active,
            fresh=self.stalls.fresh,
            excluded_namespaces=frozenset(settings.excluded_namespaces),
            max_tasks_per_namespace=settings.max_tasks_per_namespace,
        )
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="reconcile")
        self._events = EventQueue(kube.post_event, self.active, metrics.count_dropped_events)
        self.audit = Audit(kube, self.cache, settings, self._executor, metrics.count_correction)
        self._workers: list[asyncio.Task[None]] = []
        self._elector_task: asyncio.Task[None] | None = None
        self.kube = kube
        # Set once an audit is complete that began after the term's start and after the
        # last stall: workers wait for it.
        self._audited = asyncio.Event()
        # This term's audit plan; set when a watch's relisting brings a listing forward.
        self._plan: Plan | None = None
        self._replanned = asyncio.Event()
        self.monitors = Monitors()
        self._excluded = frozenset(settings.excluded_namespaces)
        # Monitor mode: a watch per namespace that holds monitored tasks.
        self._watches: dict[str, NamespaceWatch] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self.refusals = Refusals()

    def active(self) -> bool:
        return self.elector.active() if self.elector is not None else bool(self._workers)

    async def start(self) -> None:
        if self.elector is None:
            await self.start_workers()
        else:
            self._elector_task = asyncio.create_task(self.elector.run(), name="leader-election")

    async def stop(self) -> None:
        self._shutting_down = True
        if self._elector_task is not None:
            self._elector_task.cancel()
            await asyncio.gather(self._elector_task, return_exceptions=True)
        await self.stop_workers()
        watches, self._watches = list(self._watches.values()), {}
        await asyncio.gather(*(w.stop() for w in watches), *self._stopping)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._events.close()

    async def start_workers(self) -> None:
        if self._workers:
            return
        self.metrics.set_active(True)
        self.stalls.restart()
        self._workers = [
            asyncio.create_task(self.worker(), name=f"cronwarden-worker-{i}")
            for i in range(self.settings.workers)
        ]
        self._workers.append(asyncio.create_task(self.resync(), name="cronwarden-resync"))
        self._workers.append(asyncio.create_task(self.audits(), name="cronwarden-audit"))
        self._workers.append(asyncio.create_task(self.ticks(), name="cronwarden-stalls"))
        log.info(
            "active: auditing the cache, then reconciling with %d worker(s)", self.settings.workers
        )

    async def end_term(self) -> None:
        await self.stop_workers()
        if self.on_term_end is not None and not self._shutting_down:
            self.on_term_end()

    async def stop_workers(self) -> None:
        """Stop at once: no more reconciles, wake-ups or task metrics from this replica."""
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._plan = None
        self._audited.clear()
        self.queue.cancel_timers()
        self.metrics.clear()
        self.metrics.set_active(False)

    # The audit

    async def audits(self) -> None:
        """The first audit of the term, of every listing (retried until it succeeds),
        then each listing when the plan says (runtime/audit.py: Plan), and every
        listing at once after a stall (notice_stall). Every task is reconciled after
        the first, and after the first complete one that began after a stall."""
        loop = asyncio.get_running_loop()
        plan = self._plan = Plan(self.audit.pairs(), self.settings.audit_seconds)
        while True:
            wait = plan.next_at() - loop.time()
            if wait > 0:
                self._replanned.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._replanned.wait(), wait)
                continue
            pairs = plan.take(loop.time())
            stalls = self.stalls.count
            if not await self.run_audit(pairs):
                plan.retry(pairs, loop.time() + AUDIT_RETRY)
            elif not self._audited.is_set() and self.stalls.fresh(stalls):
                # Every listing is due when _audited is clear, so this one was complete.
                self._audited.set()
                for key in list(self.cache.tasks):
                    self.queue.add(key)
                log.info(
                    "the cache holds %s",
                    ", ".join(f"{n} {kind}" for kind, n in self.cache.counts().items()),
                )

    async def ticks(self) -> None:
        while True:
            self.notice_stall()
            await asyncio.sleep(TICK_SECONDS)

    def notice_stall(self) -> None:
        """Beat the stall clock; after a stall, hold reconciles back and audit every
        listing at once (runtime/stall.py)."""
        gap = self.stalls.beat()
        if gap is not None:
            log.warning(
                "the event loop did not run for %.1fs (the process was frozen or starved): "
                "holding reconciles until an audit of the cache is complete",
                gap,
            )
            self._audited.clear()
            if self._plan is not None:
                self._plan.retry(self.audit.pairs(), asyncio.get_running_loop().time())
                self._replanned.set()

    async def run_audit(self, pairs: list[Pair] | None = None) -> bool:
        try:
            listing = await self.audit.run(pairs)
        except ApiError as err:
            log.warning("audit of the cache failed (%s); trying again", err)
            return False
        self.metrics.set_audited(self.audit.last_completed)
        self.apply_listing(listing)
        return True

    def apply_listing(self, listing: Listing) -> None:
        for body in listing.deleted:
            self._task_deleted(body)
        for key in listing.touched:
            if (packed := self.cache.tasks.get(key)) is not None:
                self.track(key, reference(packed.body()))
                self.queue.add(key)
        if self.settings.max_tasks_per_namespace:
            self._recount_limits()
        if listing.corrections and self._audited.is_set():
            log.warning(
                "the audit corrected the cache: %s",
                ", ".join(f"{n} {kind}" for kind, n in sorted(listing.corrections.items())),
            )

    def relisted(self, resource: str, namespace: str) -> None:
        """A watch lists again (kopf's type-None events after this term's first audit):
        bring that listing's audit forward (runtime/audit.py: Plan)."""
        if self._plan is None or not self._audited.is_set():
            return  # before the first audit, which covers it
        loop = asyncio.get_running_loop()
        due = self._plan.relisted(self.audit.pair_of(resource, namespace), loop.time())
        if due is not None:
            where = "" if self.settings.clusterwide else f" in {namespace}"
            wait = due - loop.time()
            log.info("the %s watch%s lists again; its audit in %.0fs", resource, where, wait)
            self._replanned.set()

    def _recount_limits(self) -> None:
        limit = self.settings.max_tasks_per_namespace
        for namespace in self.cache.namespaces():
            over = self.cache.namespace_size(namespace) - limit
            self.metrics.set_over_limit(namespace, max(over, 0))

    # Watch events

    def task_event(self, type_: str | None, body: Body) -> None:
        namespace = body["metadata"].get("namespace", "")
        if not self.settings.watches(namespace):
            return
        if type_ is None:
            self.relisted(TASKS, namespace)  # a listing: after start-up, a watch relisted
        size = self.cache.namespace_size(namespace)
        changed = self.cache.task_event(type_, body)
        key = (namespace, body["metadata"]["name"])
        if self.settings.max_tasks_per_namespace:
            self._count_over_limit(namespace, size)
        if type_ == "DELETED":
            if changed:
                self._task_deleted(body)
            return
        self.track(key, reference(body))
        if changed:
            # Not the answer to our own status write come back through the watch: that
            # version was reconciled already (a reconcile of it would write nothing).
            self.queue.add(key)

    def _task_deleted(self, body: Body) -> None:
        meta = body["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if key in self.cache.tasks:  # a new task of that name: keep it
            return
        self.queue.forget(key)
        self.controller.forget(key)
        self.track(key, None)

    def track(self, key: Key, ref: str | None) -> None:
        """Monitor mode: record the CronJob a task references (None: none, or the task
        is gone), and start, relist or stop its namespace's watch accordingly."""
        namespace = key[0]
        if namespace in self._excluded:
            ref = None  # judged NamespaceExcluded without reading anything there
        new_name = self.monitors.track(key, ref)
        watch = self._watches.get(namespace)
        if namespace not in self.monitors.namespaces():
            if watch is not None:
                del self._watches[namespace]
                stopping = asyncio.create_task(watch.stop())
                self._stopping.add(stopping)
                stopping.add_done_callback(self._stopping.discard)
        elif watch is None:
            watch = NamespaceWatch(
                self.kube, namespace, self.monitors, self._executor, self._enqueue_all
            )
            self._watches[namespace] = watch
            watch.start()
        elif new_name:
            watch.relist()

    def _enqueue_all(self, keys: set[Key]) -> None:
        for key in keys:
            if key in self.cache.tasks:
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
        if not self.settings.watches(body["metadata"].get("namespace", "")):
            return
        if type_ is None:
            self.relisted(CRONJOBS, body["metadata"].get("namespace", ""))
        # An event that changes nothing held (our own apply's answer, come back through
        # the watch) has nothing new for the task: it wakes no reconcile.
        if self.cache.cronjob_event(type_, body) and (key := self._route(body, task)):
            self.queue.add_soon(key, CRONJOB_EVENT_DELAY)

    def job_event(self, type_: str | None, body: Body, task: str | None) -> None:
        if not self.settings.watches(body["metadata"].get("namespace", "")):
            return
        if type_ is None:
            self.relisted(JOBS, body["metadata"].get("namespace", ""))
        held = self.cache.job(body) if type_ == "MODIFIED" else None
        changed = self.cache.job_event(type_, body)
        if changed and held is not None and run_of(held) == run_of(body):
            # Its pods became ready, its finished pod was counted: nothing a status
            # reads (core/runs.run_of: times, result, pods) moved, so no reconcile.
            changed = False
        key = self._route(body, task)
        if changed and key is not None:
            self.queue.add(key)
        self.refusals.job(type_, body, key)

    def refusal_event(self, type_: str | None, body: Body) -> None:
        """A FailedCreate Event on a Job: why the API server refuses its pods."""
        if not self.settings.watches(body["metadata"].get("namespace", "")):
            return
        key = self.refusals.event(type_, body)
        if key is not None and key in self.cache.tasks:
            self.queue.add(key)

    def _route(self, body: Body, task: str | None) -> Key | None:
        """The task a CronJob or Job event concerns, if the cache holds it. The task label
        only routes the event; ownership is decided by uid."""
        namespace = (body.get("metadata") or {}).get("namespace")
        if task and namespace and (namespace, task) in self.cache.tasks:
            return (namespace, task)
        return None

    # Work

    async def worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            key = await self.queue.get()
            try:
                # No reconcile before the term's first audit, nor after a stall until the
                # audit that follows it: the view must be current before a slot is judged.
                self.notice_stall()
                await self._audited.wait()
                await self.reconcile(loop, key)
            finally:
                self.queue.done(key)

    async def reconcile(self, loop: asyncio.AbstractEventLoop, key: Key) -> None:
        namespace, name = key
        try:
            view = self.cache.view(key)
            view.stalls = self.stalls.count
            if view.task is not None and (ref := reference(view.task)) is not None:
                self.track(key, ref)
                view.monitored = self.monitors.view(key)
                if namespace in self._excluded:
                    view.monitored = (None, [])
                elif view.monitored is None:
                    return  # its namespace's watch queues it once it has listed the CronJob
                view.refusals = self.refusals.of(view.monitored[1])
            else:
                view.refusals = self.refusals.of(view.jobs)
            result = await loop.run_in_executor(self._executor, self.controller.reconcile, view)
        except NotActive:
            if self.elector is not None and self.elector.leading:
                # Still the leader, but the last renewal is not fresh enough to write:
                # try again once it is (or stop when the term ends).
                delay = self.queue.retry(key)
                log.info("%s/%s waits for the lease renewal; retrying in %.1fs", *key, delay)
            return
        except Stale:
            self.queue.add(key)  # judged again once the cache is audited
            log.info("%s/%s was judged from a view read before a stall; again later", *key)
            return
        except ApiError as err:
            if err.status == 409:
                # The task or CronJob changed since the cache saw it: the watch event
                # that says so is on its way. Not an error: no backoff.
                self.queue.add_after(key, CONFLICT_RETRY)
                log.debug("reconcile of %s/%s met a conflict; retrying", namespace, name)
                return
            if err.status == 404 and view.task is not None:
                # The task is gone (deleted while a watch was not looking).
                self.cache.task_event("DELETED", view.task)
                self._task_deleted(view.task)
                log.info("%s/%s no longer exists; forgot it", namespace, name)
                return
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
            held = self.cache if view.monitored is None else self.monitors.cache
            held.forget_departed(result.cronjob_uid, result.recorded)
        if result.events:
            self._events.submit(result.events)
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
