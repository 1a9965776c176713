"""The work queue owns retry state: backoff per key, Retry-After honoured."""

from __future__ import annotations

import asyncio

from cronwarden.runtime.queue import BACKOFF_MAX, WorkQueue


def test_backoff_grows_per_key_and_resets_on_success() -> None:
    async def scenario() -> list[float]:
        queue = WorkQueue()
        a, b = ("ns", "a"), ("ns", "b")
        delays = [queue.retry(a), queue.retry(a), queue.retry(b), queue.retry(a)]
        queue.succeeded(a)
        delays.append(queue.retry(a))
        queue.cancel_timers()
        return delays

    assert asyncio.run(scenario()) == [1.0, 2.0, 1.0, 4.0, 1.0]


def test_retry_after_wins_when_longer_and_backoff_is_capped() -> None:
    async def scenario() -> tuple[float, float, float]:
        queue = WorkQueue()
        key = ("ns", "a")
        first = queue.retry(key, retry_after=7.0)
        for _ in range(30):
            last = queue.retry(key)
        short = queue.retry(("ns", "b"), retry_after=0.2)
        queue.cancel_timers()
        return first, last, short

    assert asyncio.run(scenario()) == (7.0, BACKOFF_MAX, 1.0)


def test_a_key_is_handed_out_once_and_again_after_done() -> None:
    async def scenario() -> list[tuple[str, str]]:
        queue = WorkQueue()
        key = ("ns", "a")
        queue.add(key)
        queue.add(key)
        got = [await queue.get()]
        queue.add(key)  # while being worked on: once more afterwards
        assert len(queue) == 0
        queue.done(key)
        got.append(await queue.get())
        queue.done(key)
        assert len(queue) == 0
        return got

    assert asyncio.run(scenario()) == [("ns", "a"), ("ns", "a")]


def test_a_retry_timer_fires() -> None:
    async def scenario() -> tuple[str, str]:
        queue = WorkQueue()
        queue.add_after(("ns", "a"), 0.01)
        return await asyncio.wait_for(queue.get(), timeout=5)

    assert asyncio.run(scenario()) == ("ns", "a")


def test_events_go_before_the_resync() -> None:
    async def scenario() -> list[tuple[str, str]]:
        queue = WorkQueue()
        for i in range(3):
            queue.add(("ns", f"resync-{i}"), background=True)
        queue.add(("ns", "job-finished"))
        queue.add(("ns", "resync-2"))  # an event for a key waiting in the background lane
        queue.add(("ns", "resync-0"), background=True)  # already queued: no duplicate
        got = []
        while len(queue):
            key = await queue.get()
            got.append(key)
            queue.done(key)
        return got

    assert asyncio.run(scenario()) == [
        ("ns", "job-finished"),
        ("ns", "resync-2"),
        ("ns", "resync-0"),
        ("ns", "resync-1"),
    ]


def test_an_event_does_not_bring_a_key_back_before_the_servers_retry_after() -> None:
    """A write refused with 429 and Retry-After: a watch event for the task meanwhile
    (its Job finishing, say) makes it due again, past the backoff, but not before the
    server's Retry-After. It came back at once, and the refused request with it."""

    async def scenario() -> tuple[tuple[str, str], float, tuple[str, str]]:
        queue = WorkQueue()
        key = ("ns", "a")
        for _ in range(3):
            queue.retry(key)  # backoff now 4 s, then 8 s
        queue.retry(key, retry_after=0.5)
        loop = asyncio.get_running_loop()
        start = loop.time()
        queue.add(key)
        got = await asyncio.wait_for(queue.get(), timeout=5)
        waited = loop.time() - start
        queue.done(key)
        queue.succeeded(key)
        queue.add(key)  # once it went through, nothing holds it back: queued at once,
        assert len(queue) == 1  # not left to a timer
        again = await asyncio.wait_for(queue.get(), timeout=5)
        queue.cancel_timers()
        return got, waited, again

    got, waited, again = asyncio.run(scenario())
    assert got == ("ns", "a")
    assert again == ("ns", "a")
    assert 0.49 <= waited < 4.0, "after Retry-After, before the 8 s backoff"


def test_a_throttled_key_backs_off_to_ten_seconds_at_most() -> None:
    """Refusals with Retry-After (429: the server is throttling, not failing) back off
    exponentially, but to 10 s at most: after a long squeeze every task is reconciled
    within about 10 s of its end. It grew to 32 s after a 60 s squeeze, 5 min at most."""

    async def scenario() -> tuple[list[float], float]:
        queue = WorkQueue()
        throttled = [queue.retry(("ns", "a"), retry_after=1.0) for _ in range(12)]
        failing = [queue.retry(("ns", "b")) for _ in range(12)]
        queue.cancel_timers()
        return throttled, failing[-1]

    throttled, failing = asyncio.run(scenario())
    assert throttled[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(throttled) == 10.0
    assert failing > 10.0, "other failures keep their backoff"


def test_add_soon_joins_what_comes_meanwhile_and_keeps_the_wake_up() -> None:
    """Events within the delay make one reconcile; the key's own timer (a wake-up, a
    retry) is neither replaced nor cancelled by it."""

    async def scenario() -> None:
        queue = WorkQueue()
        key = ("ns", "a")
        queue.add_after(key, 3600)  # its next slot
        wake = queue._timers[key]
        queue.add_soon(key, 0.05)
        queue.add_soon(key, 0.05)
        assert len(queue) == 0  # not yet
        assert await asyncio.wait_for(queue.get(), timeout=5) == key
        queue.done(key)
        assert len(queue) == 0  # once
        assert queue._timers[key] is wake
        assert not wake.cancelled()
        queue.add(key)
        queue.add_soon(key, 0.01)  # already due: nothing more
        assert not queue._soon
        queue.cancel_timers()
        assert wake.cancelled()

    asyncio.run(scenario())
