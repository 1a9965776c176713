"""Events are posted by one thread of their own, in order, off the workers' path,
from a bounded queue: when the API server is slow and runs keep finishing, the
oldest Events are dropped (and counted in cronwarden_events_dropped_total) rather
than memory growing without bound. An Event is best effort; status and metrics
carry the truth."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from cronwarden.core.conditions import Event
from cronwarden.runtime.cache import Body

log = logging.getLogger(__name__)

# Events waiting to be posted at most (a burst of 10,000 runs fits).
MAX_PENDING = 10_000

Post = Callable[[Body, str, str, str, bool], None]  # (object, type, reason, message, distinct)


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
        self._pending: deque[tuple[Body, Event]] = deque()
        self._limit = limit
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def submit(self, events: list[tuple[Body, Event]]) -> None:
        with self._cond:
            self._pending.extend(events)
            dropped = len(self._pending) - self._limit
            for _ in range(max(dropped, 0)):
                self._pending.popleft()
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
                obj, event = self._pending.popleft()
            if self._active():
                try:
                    self._post(obj, event.type, event.reason, event.message, event.distinct)
                except Exception:  # never let one Event stop the others
                    log.exception("posting Event %s failed", event.reason)
