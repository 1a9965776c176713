"""A de-duplicating work queue: each key is reconciled by one worker at a time,
and a key added while it is being worked on is reconciled once more afterwards.
The queue also owns retry state: failures are counted per key (not per worker),
so a key's backoff grows across workers and resets when it succeeds.

Two lanes: keys added because something happened (a watch event, a time-driven
wake-up, a retry) go before keys added by the periodic resync, so a resync of
10,000 tasks never delays the status of a run that just finished. A background
key that becomes urgent moves to the front lane.

A key whose write the API server refused with a Retry-After (429 Too Many
Requests) is not handed out again before that time, even when an event makes it
due: the event is kept for then. (Events do bring a key back before its own
exponential backoff: they are news; Retry-After is the server's request.)
Everything runs on the operator's event loop."""

from __future__ import annotations

import asyncio
import time
from collections import deque

# (namespace, name) of a ScheduledTask.
TaskKey = tuple[str, str]

# Backoff of a failing key: 1 s, 2 s, 4 s ... up to 5 minutes.
BACKOFF_BASE = 1.0
BACKOFF_MAX = 300.0
# ... but at most this long after a refusal with Retry-After (429: the server is
# throttling, and says when to come back), so that a task is reconciled within about
# 10 s of the end of a squeeze however long it lasted. APF refuses without work.
THROTTLED_BACKOFF_MAX = 10.0


class WorkQueue:
    def __init__(self) -> None:
        self._urgent: deque[TaskKey] = deque()
        self._background: deque[TaskKey] = deque()
        self._ready = asyncio.Event()
        self._pending: dict[TaskKey, bool] = {}  # key -> queued in the urgent lane
        self._active: set[TaskKey] = set()
        self._again: set[TaskKey] = set()
        self._timers: dict[TaskKey, asyncio.TimerHandle] = {}
        self._soon: dict[TaskKey, asyncio.TimerHandle] = {}  # add_soon's, apart
        self._failures: dict[TaskKey, int] = {}
        self._not_before: dict[TaskKey, float] = {}  # key -> monotonic time (Retry-After)

    def add(self, key: TaskKey, *, background: bool = False) -> None:
        if self._not_before:
            wait = self._not_before.get(key, 0.0) - time.monotonic()
            if wait > 0:
                # The server asked to wait: add it then (sooner than its backoff).
                timer = self._timers.get(key)
                if timer is None or timer.when() > asyncio.get_running_loop().time() + wait:
                    self.add_after(key, wait)
                return
            self._not_before.pop(key, None)
        if key in self._active:
            self._again.add(key)
            return
        urgent = self._pending.get(key)
        if urgent is None or (urgent is False and not background):
            self._pending[key] = not background
            (self._background if background else self._urgent).append(key)
            self._ready.set()

    def add_after(self, key: TaskKey, delay: float) -> None:
        """Add `key` after `delay` seconds. One timer per key: a later call replaces
        an earlier one, so a task has at most one wake-up pending."""
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

    def add_soon(self, key: TaskKey, delay: float) -> None:
        """Add `key` within `delay` seconds: what else happens to it meanwhile joins the
        same reconcile. Kept apart from add_after's timer, which it never replaces
        (a wake-up, a retry's backoff)."""
        if key in self._soon or self._pending.get(key) is True:
            return  # already due by then
        self._soon[key] = asyncio.get_running_loop().call_later(delay, self._fire_soon, key)

    def _fire_soon(self, key: TaskKey) -> None:
        self._soon.pop(key, None)
        self.add(key)

    def retry(self, key: TaskKey, retry_after: float | None = None) -> float:
        """Add `key` again after its backoff (capped at THROTTLED_BACKOFF_MAX when the
        server sent a Retry-After), or the server's Retry-After if longer; returns the
        delay."""
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay: float = min(BACKOFF_BASE * 2.0 ** (failures - 1), BACKOFF_MAX)
        if retry_after is not None:
            delay = min(delay, THROTTLED_BACKOFF_MAX)
        delay = max(delay, retry_after or 0.0)
        if retry_after:
            self._not_before[key] = time.monotonic() + retry_after
        self.add_after(key, delay)
        return delay

    def succeeded(self, key: TaskKey) -> None:
        """The key was reconciled: its backoff starts over."""
        self._failures.pop(key, None)
        self._not_before.pop(key, None)

    def forget(self, key: TaskKey) -> None:
        for timers in (self._timers, self._soon):
            timer = timers.pop(key, None)
            if timer is not None:
                timer.cancel()
        self._failures.pop(key, None)
        self._not_before.pop(key, None)

    def cancel_timers(self) -> None:
        """Drop every pending wake-up and retry (the replica stops being active)."""
        for timer in (*self._timers.values(), *self._soon.values()):
            timer.cancel()
        self._timers.clear()
        self._soon.clear()
        self._failures.clear()
        self._not_before.clear()

    def _fire(self, key: TaskKey) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> TaskKey:
        while True:
            for lane, urgent in ((self._urgent, True), (self._background, False)):
                while lane:
                    key = lane.popleft()
                    if self._pending.get(key) is urgent:  # else moved lanes or taken
                        del self._pending[key]
                        self._active.add(key)
                        return key
            self._ready.clear()
            await self._ready.wait()

    def done(self, key: TaskKey) -> None:
        self._active.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._pending)
