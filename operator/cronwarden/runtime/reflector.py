"""Managed CronJobs and Jobs, listed and watched by the operator itself, not by kopf.

Why. kopf sends every watch event through its whole per-object machinery (a
memory per object, cause detection, handler selection, kwargs, loggers, a patch
that is applied or not), on the one event-loop thread. cronwarden needs none of it
for CronJobs and Jobs: it only puts them in its cache and queues their task. A run
of a task is five or six such events (the Job created, started, completed; the
CronJob's active list and last times), against two of the task's own (its status
writes coming back). py-spy during a midnight burst of 1,000 runs (README,
"The midnight burst and the cost per task") put most of the event loop's time in
that machinery. kopf stays the framework of the ScheduledTask handler (the design
card). The FailedCreate Events (runtime/refusals.py) are watched here too, with a
field selector.

How, as client-go's reflector does (and monitor mode's namespace watch,
runtime/monitorwatch.py, on the same request path, runtime/kube.Kube):

- Per scope (each watched namespace, or the whole cluster) and resource: a list
  in pages (the managed-by label selector, and the shard selector where the API
  server applies it, Kube.shard_selectors), then a watch from the listing's
  resourceVersion with bookmarks. The API server ends a watch after WATCH_SECONDS
  (spread as client-go does); it is opened again from the last version seen.
- 410 Gone (the version left the API server's window) lists again. Any other
  failure (a cut connection, a restarting API server) watches again from the
  last version after the delays kopf's requests use (settings.API_RETRY_BACKOFFS:
  0.5, 1, 2, then 3 s, each +-20 %), so that the window in which the operator is
  blind after an API server restart stays what README's D2 measured. An error the
  API server sends inside a watch (an ERROR event other than 410, such as the 500
  "etcd event received with PrevKv=nil" of a watch served by etcd while it
  compacts) is a failure like the others; after STREAM_ERRORS of them in a row the
  watch lists again, as client-go's reflector does. kopf, which watched FailedCreate
  Events before, treats such an error as fatal and stops the operator: a
  50-minute `make soak` lost both operators that way.
- Listed objects are handed over as kopf handed them, with type None, so the
  engine treats them alike: after start-up a listing means a watch relisted, and
  the engine asks for an audit, which deletes what vanished in between
  (runtime/audit.py: the relist and replace semantics are the audit's).
- All that blocks (HTTP, TLS, JSON parsing) runs in one thread per watch. The
  event loop gets the parsed events in batches: one wake-up per batch rather
  than one per event, at most BATCH events per turn of the loop (a relist of
  10,000 Jobs does not hold it), and a reader waits while PENDING_MAX events
  are not yet taken (memory stays bounded when the loop falls behind).
"""

from __future__ import annotations

import collections
import logging
import random
import threading
from asyncio import AbstractEventLoop
from collections.abc import Callable
from typing import Any, NamedTuple

from cronwarden.runtime.kube import ApiError, Kube, Watch
from cronwarden.settings import API_RETRY_BACKOFFS, API_RETRY_JITTER

log = logging.getLogger(__name__)

# The API server ends a watch after this long (times 1 to 2, spread as client-go does).
WATCH_SECONDS = 300.0
# Events handed to the event loop per turn, and held for it at most per watch.
BATCH = 200
PENDING_MAX = 2_000
# Errors sent inside watches, in a row, after which the reflector lists again.
STREAM_ERRORS = 3

Deliver = Callable[[str | None, dict[str, Any]], None]


def backoff(failures: int) -> float:
    """The delay before the next try after `failures` failures in a row."""
    base = API_RETRY_BACKOFFS[min(failures, len(API_RETRY_BACKOFFS)) - 1]
    return base * random.uniform(1 - API_RETRY_JITTER, 1 + API_RETRY_JITTER)  # a spread


class Handoff:
    """Parsed events from one reader thread to the event loop, in order, in batches."""

    def __init__(self, loop: AbstractEventLoop, deliver: Deliver) -> None:
        self._loop = loop
        self._deliver = deliver
        self._items: collections.deque[tuple[str | None, dict[str, Any]]] = collections.deque()
        self._cond = threading.Condition()
        self._scheduled = False
        self.closed = False

    def put(self, type_: str | None, body: dict[str, Any]) -> bool:
        """From the reader thread: queue one event; False once closed (stop reading)."""
        with self._cond:
            while len(self._items) >= PENDING_MAX and not self.closed:
                self._cond.wait(1.0)
            if self.closed:
                return False
            self._items.append((type_, body))
            if self._scheduled:
                return True
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: the operator stops
            self.close()
            return False
        return True

    def _drain(self) -> None:
        """On the event loop: deliver up to BATCH events, and come back for the rest."""
        with self._cond:
            n = min(len(self._items), BATCH)
            batch = [self._items.popleft() for _ in range(n)]
            more = bool(self._items) and not self.closed
            self._scheduled = more
            self._cond.notify_all()
        for type_, body in batch:
            if self.closed:
                return
            try:
                self._deliver(type_, body)
            except Exception:
                log.exception("handling a watch event failed")
        if more:
            self._loop.call_soon(self._drain)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._items.clear()
            self._cond.notify_all()


class Reflector:
    """Lists, then watches, one resource in one scope, in a thread of its own."""

    def __init__(
        self,
        kube: Kube,
        template: str,
        scope: str | None,
        selector: str,
        handoff: Handoff,
        fields: str = "",
    ) -> None:
        self.kube = kube
        self.template = template
        self.scope = scope
        self.selector = selector
        self.fields = fields
        self.handoff = handoff
        self.version = ""  # the last resourceVersion seen
        self.lists = 0  # completed listings (tests, logs)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watch: Watch | None = None
        self._thread: threading.Thread | None = None
        resource = template.rsplit("/", 1)[-1]
        self.name = f"{resource} in {scope or 'all namespaces'}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run, name=f"reflector-{self.name.split()[0]}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """From any thread: stop reading (the thread ends at its next step)."""
        self._stop.set()
        self.handoff.close()
        with self._lock:
            if self._watch is not None:
                self._watch.close()

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def run(self) -> None:
        failures = 0
        stream_errors = 0  # errors the API server sent inside watches, in a row
        must_list = True
        while not self._stop.is_set():
            try:
                if must_list:
                    self.list()
                    must_list = False
                self.watch()
                failures = stream_errors = 0
                continue
            except ApiError as err:
                error = err
            except Exception as err:  # the client's own (a TLS failure)
                error = ApiError(0, type(err).__name__, str(err))
            if self._stop.is_set():
                return
            if error.status == 410 and not must_list:
                log.info("watch of %s expired (%s); listing again", self.name, error)
                must_list = True
                continue
            if error.status and not must_list:
                stream_errors += 1
                if stream_errors >= STREAM_ERRORS:
                    log.warning(
                        "watch of %s failed %d times in a row (%s); listing again",
                        self.name,
                        stream_errors,
                        error,
                    )
                    must_list, stream_errors = True, 0
            failures += 1
            delay = backoff(failures)
            what = "listing" if must_list else "watching"
            log.warning("%s %s failed (%s); again in %.1fs", what, self.name, error, delay)
            self._stop.wait(delay)

    def list(self) -> None:
        """Every object, page by page, handed over with type None."""
        token: str | None = ""
        version = ""
        while token is not None:
            items, page_version, token = self.kube.list_page(
                self.template, self.scope, self.selector, token, fields=self.fields
            )
            version = version or page_version
            for body in items:
                if not self.handoff.put(None, body):
                    return
        self.version = version
        self.lists += 1

    def watch(self) -> None:
        """One watch request from the last version seen, read until it ends."""
        seconds = WATCH_SECONDS * (1 + random.random())  # a spread, not a secret
        watch = self.kube.watch(
            self.template,
            self.scope,
            self.version,
            seconds,
            selector=self.selector,
            fields=self.fields,
        )
        with self._lock:
            if self._stop.is_set():
                watch.close()
                return
            self._watch = watch
        try:
            for type_, body in watch.events():
                rv = (body.get("metadata") or {}).get("resourceVersion")
                if rv:
                    self.version = str(rv)
                if type_ != "BOOKMARK" and not self.handoff.put(type_, body):
                    return
        finally:
            with self._lock:
                self._watch = None


class Source(NamedTuple):
    """What to reflect in each scope, selected on the server, and where it goes."""

    template: str
    deliver: Deliver
    labels: str = ""
    fields: str = ""


def start(
    kube: Kube, loop: AbstractEventLoop, scopes: list[str | None], sources: list[Source]
) -> list[Reflector]:
    """A reflector per scope and source, started."""
    out = []
    for scope in scopes:
        for source in sources:
            handoff = Handoff(loop, source.deliver)
            labels, fields = source.labels, source.fields
            reflector = Reflector(kube, source.template, scope, labels, handoff, fields)
            reflector.start()
            out.append(reflector)
    return out
