"""The audit: the cache checked against complete listings of the cluster.

kopf lists again whenever a watch ends (410 Gone after a compaction, an API
server restart, a cut connection), but hands the listed objects over one by one
and never says that a listing is complete, so the objects that vanished in
between would stay in the cache for good. The audit owns that part: it lists
every scope of tasks, managed CronJobs and managed Jobs in pages of 500 (served
from the API server's watch cache, kube.list_page), applies what it finds and
deletes what the listing lacks (runtime/cache.py: `listed`, `sweep`).

It runs before the first reconcile of a term as the active replica (so no task
is judged before its runs are known), every --audit-seconds, and a few seconds
after a watch relisted (kopf's type-None events after start-up). Every
difference it corrects is counted in cronwarden_cache_corrections_total: at
rest they are 0, and a steady count means a watch is losing events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor

from cronwarden.core.builder import MANAGED_BY, MANAGED_BY_LABEL
from cronwarden.runtime.cache import CRONJOBS, JOBS, TASKS, Cache, Listing, uid_of
from cronwarden.runtime.kube import CRONJOBS as CRONJOBS_PATH
from cronwarden.runtime.kube import JOBS as JOBS_PATH
from cronwarden.runtime.kube import TASKS as TASKS_PATH
from cronwarden.runtime.kube import Kube
from cronwarden.settings import Settings

log = logging.getLogger(__name__)

MANAGED = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
# (resource, path template, label selector), in the order they are listed: tasks
# first, so that a task's CronJob and Jobs are known when it is reconciled.
RESOURCES = (
    (TASKS, TASKS_PATH, ""),
    (CRONJOBS, CRONJOBS_PATH, MANAGED),
    (JOBS, JOBS_PATH, MANAGED),
)


class Audit:
    def __init__(
        self,
        kube: Kube,
        cache: Cache,
        settings: Settings,
        executor: Executor,
        on_correction: Callable[[str, str, int], None],
    ) -> None:
        self.kube = kube
        self.cache = cache
        self.settings = settings
        self.executor = executor
        self.on_correction = on_correction
        self.last_completed: float | None = None  # wall-clock time of the last audit

    async def run(self) -> Listing:
        """List every scope of every resource into the cache, replacing it; returns what
        changed. Raises ApiError when a listing fails (the caller tries again later)."""
        loop = asyncio.get_running_loop()
        total = Listing()
        started = time.monotonic()
        for scope in self.settings.scopes():
            for resource, template, selector in RESOURCES:
                listing = await self._list(loop, resource, template, scope, selector)
                for kind, n in listing.corrections.items():
                    self.on_correction(resource, kind, n)
                total.merge(listing)
        self.last_completed = time.time()
        log.debug(
            "audit took %.2fs; corrections: %s",
            time.monotonic() - started,
            ", ".join(f"{n} {k}" for k, n in total.corrections.items()) or "none",
        )
        return total

    async def _list(
        self,
        loop: asyncio.AbstractEventLoop,
        resource: str,
        template: str,
        scope: str | None,
        selector: str,
    ) -> Listing:
        out = Listing()
        seen: set[str] = set()
        token: str | None = ""
        version = ""
        while token is not None:
            items, page_version, token = await loop.run_in_executor(
                self.executor, self.kube.list_page, template, scope, selector, token
            )
            version = version or page_version
            for body in items:
                namespace = (body.get("metadata") or {}).get("namespace") or ""
                if not self.settings.watches(namespace):
                    continue
                seen.add(uid_of(body))
                self.cache.listed(resource, body, out)
        out.merge(self.cache.sweep(resource, scope, seen, version))
        return out
