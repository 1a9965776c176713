"""Monitor mode's watch of one namespace: its CronJobs and Jobs, listed, then
watched, as a client-go reflector does. kopf's watches are fixed when it starts
and select on our label; this one starts with the first monitored task of a
namespace and stops with the last (runtime/engine.py).

- A listing (paged, consistent, runtime/kube.list_page) replaces what is held
  for the namespace (Monitors.listed, then Monitors.sweep with the uids of
  everything listed), CronJobs first, then Jobs.
- Then one watch per resource from its listing's resourceVersion, with
  bookmarks; the API server ends each after WATCH_SECONDS (jittered, as
  client-go does), and it is opened again from the last version seen.
- 410 Gone (the version left the API server's window: a restart, a long
  freeze), or a CronJob newly named by a task (filtered out until then), lists
  again. Other errors (a cut connection, a restarting API server) watch again
  from the last version after a backoff.

Each watch is read in a thread of its own (the client's HTTP is blocking) that
hands events to the event loop, where everything else happens. At rest this
sends nothing but the re-opened watches: two per namespace every 5 to 10 min.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from cronwarden.runtime.cache import CRONJOBS, JOBS, Key, Listing, uid_of
from cronwarden.runtime.kube import CRONJOBS as CRONJOBS_PATH
from cronwarden.runtime.kube import JOBS as JOBS_PATH
from cronwarden.runtime.kube import ApiError, Kube, Watch
from cronwarden.runtime.monitors import Monitors

log = logging.getLogger(__name__)

RESOURCES = ((CRONJOBS, CRONJOBS_PATH), (JOBS, JOBS_PATH))
# The API server ends a watch after this long (times 1 to 2, spread as client-go does).
WATCH_SECONDS = 300.0
# Tasks that name new CronJobs come in bursts (an apply of many): list once they have
# been quiet for RELIST_DELAY, or RELIST_WAIT after the first.
RELIST_DELAY, RELIST_WAIT = 0.5, 5.0
# Backoff after a failed listing or watch: doubles from BACKOFF to BACKOFF_MAX.
BACKOFF, BACKOFF_MAX = 0.5, 10.0
_END = object()


class NamespaceWatch:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        monitors: Monitors,
        executor: Executor,
        enqueue: Callable[[set[Key]], None],
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.monitors = monitors
        self.executor = executor
        self.enqueue = enqueue
        self._relist = asyncio.Event()
        self.versions: dict[str, str] = {}  # the last resourceVersion seen, per resource
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"cronwarden-monitor-{self.namespace}")

    def relist(self) -> None:
        """A task names a CronJob that the last listing did not keep: list again."""
        self._relist.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        failures = 0
        while True:
            await self.settle()
            try:
                self.versions = await self.list_all()
            except ApiError as err:
                failures += 1
                delay = backoff(failures)
                log.warning(
                    "listing monitored CronJobs in %s failed (%s); again in %.1fs",
                    self.namespace,
                    err,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            await self.watch_all()

    async def settle(self) -> None:
        """Before a listing: wait until tasks stop naming new CronJobs for RELIST_DELAY
        (an apply of many tasks is one listing, not one each), at most RELIST_WAIT."""
        loop = asyncio.get_running_loop()
        until = loop.time() + RELIST_WAIT
        while True:
            self._relist.clear()
            await asyncio.sleep(RELIST_DELAY)
            if not self._relist.is_set() or loop.time() >= until:
                return

    async def list_all(self) -> dict[str, str]:
        """List both resources into Monitors (replacing what they held); returns each
        listing's resourceVersion, and queues the tasks it concerns."""
        wanted = self.monitors.wanted(self.namespace)
        total, versions = Listing(), {}
        for resource, template in RESOURCES:
            listing, versions[resource] = await self.list(resource, template)
            total.merge(listing)
        self.enqueue(self.monitors.synced(self.namespace, wanted, total))
        log.info(
            "monitor mode: listed %s for %d CronJob(s) named by tasks",
            self.namespace,
            len(wanted),
        )
        return versions

    async def list(self, resource: str, template: str) -> tuple[Listing, str]:
        loop = asyncio.get_running_loop()
        out, seen = Listing(), set()
        token: str | None = ""
        version = ""
        while token is not None:
            items, page_version, token = await loop.run_in_executor(
                self.executor, self.kube.list_page, template, self.namespace, "", token
            )
            version = version or page_version
            for body in items:
                seen.add(uid_of(body))
                self.monitors.listed(resource, body, out)
        out.merge(self.monitors.sweep(resource, self.namespace, seen, version))
        return out, version

    async def watch_all(self) -> None:
        """Follow both watches until one must list again or a relist is asked for."""
        followers: list[asyncio.Task[Any]] = [
            asyncio.create_task(self.follow(resource, template)) for resource, template in RESOURCES
        ]
        asked: asyncio.Task[Any] = asyncio.create_task(self._relist.wait())
        try:
            await asyncio.wait([*followers, asked], return_when=asyncio.FIRST_COMPLETED)
            for task in followers:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error(
                        "watch of monitored objects in %s crashed; listing again",
                        self.namespace,
                        exc_info=task.exception(),
                    )
        finally:
            for task in (*followers, asked):
                task.cancel()
            await asyncio.gather(*followers, asked, return_exceptions=True)

    async def follow(self, resource: str, template: str) -> None:
        """Watch `resource` from the last version seen, again and again; returns on 410
        Gone."""
        failures = 0
        while True:
            try:
                await self.stream(resource, template)
                failures = 0
            except ApiError as err:
                if err.status == 410:
                    log.info("monitored %s in %s: %s; listing again", resource, self.namespace, err)
                    return
                failures += 1
                delay = backoff(failures)
                log.warning(
                    "watching monitored %s in %s failed (%s); again in %.1fs",
                    resource,
                    self.namespace,
                    err,
                    delay,
                )
                await asyncio.sleep(delay)

    async def stream(self, resource: str, template: str) -> None:
        """One watch request, read in a thread, from the last version seen."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        version = self.versions[resource]
        reader = Reader(self.kube, template, self.namespace, version, loop, queue)
        threading.Thread(target=reader.run, name=f"watch-{resource}", daemon=True).start()
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, ApiError):
                    raise item
                type_, body = item
                version = str((body.get("metadata") or {}).get("resourceVersion") or version)
                self.versions[resource] = version
                if type_ != "BOOKMARK":
                    self.enqueue(self.monitors.event(resource, type_, body))
        finally:
            reader.close()


class Reader:
    """Reads one watch in its own thread and hands each event to the event loop."""

    def __init__(
        self,
        kube: Kube,
        template: str,
        namespace: str,
        version: str,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[Any],
    ) -> None:
        self.kube, self.template, self.namespace, self.version = kube, template, namespace, version
        self.loop, self.queue = loop, queue
        self._lock = threading.Lock()
        self._watch: Watch | None = None
        self._closed = False

    def run(self) -> None:
        try:
            seconds = WATCH_SECONDS * (1 + random.random())  # a spread, not a secret
            watch = self.kube.watch(self.template, self.namespace, self.version, seconds)
            with self._lock:
                self._watch = watch
                if self._closed:
                    watch.close()
            for event in watch.events():
                self._hand(event)
            self._hand(_END)
        except ApiError as err:
            self._hand(err)
        except Exception as err:  # the client's own (a TLS failure)
            self._hand(ApiError(0, type(err).__name__, str(err)))

    def _hand(self, item: object) -> None:
        if self._closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the operator stops
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._watch is not None:
                self._watch.close()


def backoff(failures: int) -> float:
    return float(min(BACKOFF * 2 ** (failures - 1), BACKOFF_MAX))
