"""A de-duplicating work queue: each key is reconciled by one worker at a time,
and a key added while it is being worked on is reconciled once more afterwards.
Everything runs on the operator's event loop."""

from __future__ import annotations

import asyncio

# (namespace, name) of a ScheduledTask.
TaskKey = tuple[str, str]


class WorkQueue:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[TaskKey] = asyncio.Queue()
        self._pending: set[TaskKey] = set()
        self._active: set[TaskKey] = set()
        self._again: set[TaskKey] = set()
        self._timers: dict[TaskKey, asyncio.TimerHandle] = {}

    def add(self, key: TaskKey) -> None:
        if key in self._active:
            self._again.add(key)
        elif key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: TaskKey, delay: float) -> None:
        """Add `key` after `delay` seconds. One timer per key: a later call replaces
        an earlier one, so a task has at most one wake-up pending."""
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

    def forget(self, key: TaskKey) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _fire(self, key: TaskKey) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> TaskKey:
        key = await self._queue.get()
        self._pending.discard(key)
        self._active.add(key)
        return key

    def done(self, key: TaskKey) -> None:
        self._active.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._pending)
