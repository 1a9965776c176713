"""The audit: the cache checked against complete listings of the cluster.

kopf lists again whenever a watch ends (410 Gone after a compaction, an API
server restart, a cut connection), but hands the listed objects over one by one
and never says that a listing is complete, so the objects that vanished in
between would stay in the cache for good. The audit owns that part: it lists
every scope of tasks, managed CronJobs and managed Jobs in pages of 500 (served
from the API server's watch cache, kube.list_page), applies what it finds and
deletes what the listing lacks (runtime/cache.py: `listed`, `sweep`).

It runs before the first reconcile of a term as the active replica (so no task
is judged before its runs are known), then each listing (a resource in a scope)
every --audit-seconds, and a few seconds after that resource's watch in that
scope listed again (kopf's type-None events after start-up), but no sooner than
RELIST_GAP after the same listing last began (`Plan`): a watch that keeps
listing again on a loaded machine costs one listing a minute, not a whole audit
each time. Every difference it corrects is counted in
cronwarden_cache_corrections_total: at rest they are 0, and a steady count means
a watch is losing events.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor

from cronwarden.core.builder import MANAGED_BY, MANAGED_BY_LABEL
from cronwarden.runtime import allocator
from cronwarden.runtime.cache import CRONJOBS, JOBS, TASKS, Body, Cache, Listing, uid_of
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
ORDER = {resource: i for i, (resource, _, _) in enumerate(RESOURCES)}
# A listing: (resource, scope); scope None is the whole cluster.
Pair = tuple[str, str | None]
# After a watch lists again, audit that listing once kopf's is likely complete...
RELIST_DELAY = 5.0
# ...but no sooner than this after the same listing's last audit began (or the audit
# period, when shorter): what vanished before the relist is then found within this.
RELIST_GAP = 60.0
# Listings due within this of the first are audited with it.
COALESCE = 10.0


class Plan:
    """When each listing is audited next (event-loop seconds). Pure: the engine asks it
    what is due, and tells it when a watch listed again."""

    def __init__(self, pairs: Iterable[Pair], period: float) -> None:
        self.period = period
        self.gap = min(RELIST_GAP, period)
        self.due: dict[Pair, float] = dict.fromkeys(pairs, -math.inf)  # all at once first
        self.started: dict[Pair, float] = dict.fromkeys(self.due, -math.inf)
        self.seen: dict[Pair, float] = {}  # the last listed object of each watch

    def relisted(self, pair: Pair, now: float) -> float | None:
        """A watch lists `pair` again at `now` (its objects come one by one): what
        vanished from it before is in the cache still, and an audit that begins after
        the first of them finds it. Returns when that audit is due, for the first
        object of each listing; None for the others."""
        if pair not in self.due:
            return None
        first = now - self.seen.get(pair, -math.inf) > RELIST_DELAY
        self.seen[pair] = now
        if not first:
            return None
        soon = max(now + RELIST_DELAY, self.started[pair] + self.gap)
        self.due[pair] = min(self.due[pair], soon)
        return self.due[pair]

    def next_at(self) -> float:
        return min(self.due.values(), default=math.inf)

    def take(self, now: float) -> list[Pair]:
        """The listings to audit now, in RESOURCES order; each is next due a period
        after it begins (earlier if a watch lists it again meanwhile)."""
        pairs = [p for p, at in self.due.items() if at <= now + COALESCE]
        for pair in pairs:
            self.started[pair] = now
            self.due[pair] = now + self.period
        return sorted(pairs, key=lambda p: ORDER[p[0]])

    def retry(self, pairs: Iterable[Pair], at: float) -> None:
        for pair in pairs:
            self.due[pair] = min(self.due[pair], at)


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

    def pairs(self) -> list[Pair]:
        """Every listing a full audit makes, in order."""
        return [(r, scope) for scope in self.settings.scopes() for r, _, _ in RESOURCES]

    def pair_of(self, resource: str, namespace: str) -> Pair:
        """The listing that holds an object of `resource` in `namespace`."""
        return (resource, None if self.settings.clusterwide else namespace)

    async def run(self, pairs: Iterable[Pair] | None = None) -> Listing:
        """List each of `pairs` (default: all) into the cache, replacing it; returns what
        changed. Raises ApiError when a listing fails (the caller tries again later)."""
        loop = asyncio.get_running_loop()
        total = Listing()
        started = time.monotonic()
        paths = {resource: (template, selector) for resource, template, selector in RESOURCES}
        for resource, scope in self.pairs() if pairs is None else pairs:
            template, selector = paths[resource]
            listing = await self._list(loop, resource, template, scope, selector)
            for kind, n in listing.corrections.items():
                self.on_correction(resource, kind, n)
            total.merge(listing)
        self.last_completed = time.time()
        # what the pages were parsed into is freed now: hand its pages back (allocator.py)
        await loop.run_in_executor(self.executor, allocator.trim)
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
            self._apply(resource, items, seen, out)
            del items  # one page in memory at a time: not this one while the next is read
        out.merge(self.cache.sweep(resource, scope, seen, version))
        return out

    def _apply(self, resource: str, items: list[Body], seen: set[str], out: Listing) -> None:
        for body in items:
            namespace = (body.get("metadata") or {}).get("namespace") or ""
            if self.settings.watches(namespace):
                seen.add(uid_of(body))
                self.cache.listed(resource, body, out)
