"""Events are posted by one thread of their own, in order, off the workers' path,
from a bounded queue: when the API server is slow and runs keep finishing, the
oldest Events are dropped (and counted in cronwarden_events_dropped_total) rather
than memory growing without bound. An Event is best effort; status and metrics
carry the truth.

What waits is small and O(series), not O(runs): an Event keeps only the reference
of its object (apiVersion, kind, name, namespace, uid), not the task's body, and an
Event of a series that is already waiting (the same object, type and reason, and
message when `distinct`) joins it: the latest message, and the count of both, is
posted once, as client-go's recorder aggregates. So a poster that falls behind 300
per-minute tasks holds one RunSucceeded per task, whatever the backlog, where it
used to hold every run's Event with a whole task body each (the growth `make soak`
found, README: the cache stays true)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cronwarden.core.conditions import Event
from cronwarden.runtime.cache import Body

log = logging.getLogger(__name__)

# Events waiting to be posted at most (a burst of 10,000 runs fits).
MAX_PENDING = 10_000

# (object, type, reason, message, distinct, times): `times` Events of one series at once.
Post = Callable[[Body, str, str, str, bool, int], None]
# (namespace, uid or name, type, reason, message if distinct)
Series = tuple[str, str, str, str, str]


def reference(obj: Body) -> Body:
    """What posting an Event reads of its object: the involvedObject's fields."""
    meta = obj.get("metadata") or {}
    ref: Body = {k: obj[k] for k in ("apiVersion", "kind") if k in obj}
    ref["metadata"] = {k: meta[k] for k in ("name", "namespace", "uid") if k in meta}
    return ref


def series(ref: Body, event: Event) -> Series:
    meta = ref["metadata"]
    return (
        str(meta.get("namespace") or ""),
        str(meta.get("uid") or meta.get("name") or ""),
        event.type,
        event.reason,
        event.message if event.distinct else "",
    )


@dataclass(slots=True)
class Pending:
    obj: Body  # reference(object)
    event: Event  # the latest of its series
    times: int = 1


class EventQueue:
    def __init__(
        self,
        post: Post,
        active: Callable[[], bool],
        on_drop: Callable[[int], None],
        limit: int = MAX_PENDING,
    ) -> None:
        self._post = post
        self._active = active
        self._on_drop = on_drop
        self._pending: dict[Series, Pending] = {}  # oldest first
        self._limit = limit
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def submit(self, events: list[tuple[Body, Event]]) -> None:
        dropped = 0
        with self._cond:
            for obj, event in events:
                ref = reference(obj)
                key = series(ref, event)
                held = self._pending.get(key)
                if held is None:
                    self._pending[key] = Pending(ref, event)
                else:
                    held.event = event
                    held.times += 1
            while len(self._pending) > self._limit:
                dropped += self._pending.pop(next(iter(self._pending))).times
            self._cond.notify()
        if dropped > 0:
            self._on_drop(dropped)
            log.warning("dropped the %d oldest pending Event(s): the queue is full", dropped)

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                held = self._pending.pop(next(iter(self._pending)))
            event = held.event
            if self._active():
                try:
                    self._post(
                        held.obj,
                        event.type,
                        event.reason,
                        event.message,
                        event.distinct,
                        held.times,
                    )
                except Exception:  # never let one Event stop the others
                    log.exception("posting Event %s failed", event.reason)
