"""The engine after a stall of its own process (runtime/stall.py): reconciles wait
until an audit that began after the stall is complete, then every task is
reconciled; an audit that a stall interrupted does not count; a reconcile whose
status write was refused as stale comes back. No cluster: the audit and the
controller are stand-ins, the monotonic clock of the stall detector is fake."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cronwarden.runtime.audit import Pair
from cronwarden.runtime.cache import CRONJOBS, JOBS, TASKS, Listing
from cronwarden.runtime.controller import Result, Stale
from cronwarden.runtime.engine import Engine
from cronwarden.runtime.metrics import TaskMetrics
from cronwarden.runtime.stall import Stalls
from cronwarden.settings import Settings

KEY = ("team-a", "backup")
TASK = {"metadata": {"name": "backup", "namespace": "team-a", "uid": "u", "resourceVersion": "5"}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Audits:
    """Each audit waits until the test lets it finish; it finds nothing to correct."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.started = 0
        self.listed: list[list[Pair]] = []  # the listings of each audit
        self.finish = asyncio.Semaphore(0)
        self.last_completed: float | None = None

    def pairs(self) -> list[Pair]:
        return [(TASKS, "team-a"), (CRONJOBS, "team-a"), (JOBS, "team-a")]

    def pair_of(self, resource: str, namespace: str) -> Pair:
        return (resource, namespace)

    async def run(self, pairs: list[Pair] | None = None) -> Listing:
        self.started += 1
        self.listed.append(self.pairs() if pairs is None else list(pairs))
        await self.finish.acquire()
        self.log.append("audit")
        self.last_completed = 0.0
        return Listing()


class Controller:
    def __init__(self, log: list[str], error: Exception | None = None) -> None:
        self.log = log
        self.error = error

    def reconcile(self, view: Any) -> Result:
        self.log.append("reconcile")
        if self.error is not None:
            raise self.error
        return Result()

    def forget(self, key: tuple[str, str]) -> None:
        pass


class NoApi:
    def post_event(self, *args: Any) -> None:
        raise AssertionError("no Event is posted in these tests")


async def turns(n: int = 50) -> None:
    """Let the event loop run the other tasks for a while (to show they stay held)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], deadline: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.01)


def engine(log: list[str], error: Exception | None = None) -> tuple[Engine, Audits, Clock]:
    eng = Engine(Settings(namespaces=["team-a"], workers=1), kube=NoApi(), metrics=TaskMetrics())  # type: ignore[arg-type]
    audits, clock = Audits(log), Clock()
    eng.audit = audits  # type: ignore[assignment]
    eng.controller = Controller(log, error)  # type: ignore[assignment]
    eng.stalls = Stalls(clock=clock)
    eng.cache.task_event(None, TASK)
    return eng, audits, clock


def test_after_a_stall_reconciles_wait_for_an_audit_begun_after_it() -> None:
    async def scenario() -> tuple[list[str], list[list[Pair]]]:
        log: list[str] = []
        eng, audits, clock = engine(log)
        await eng.start_workers()
        await until(lambda: audits.started == 1)
        audits.finish.release()
        await until(lambda: log == ["audit", "reconcile"])  # the term's first audit

        clock.now += 90.0  # frozen for a minute and a half
        eng.queue.add(KEY)  # a wake-up that fell due meanwhile (the slot's grace ended)
        await until(lambda: audits.started == 2)  # the worker noticed: an audit at once
        await turns()
        assert log == ["audit", "reconcile"]  # held back meanwhile
        audits.finish.release()
        await until(lambda: len(log) >= 4)
        await eng.stop_workers()
        return log, audits.listed

    log, listed = asyncio.run(scenario())
    assert log[:3] == ["audit", "reconcile", "audit"]
    assert listed[1] == [(TASKS, "team-a"), (CRONJOBS, "team-a"), (JOBS, "team-a")]
    assert log[3:]
    assert set(log[3:]) == {"reconcile"}


def test_an_audit_that_a_stall_interrupted_does_not_release_the_workers() -> None:
    async def scenario() -> tuple[list[str], int]:
        log: list[str] = []
        eng, audits, clock = engine(log)
        await eng.start_workers()
        await until(lambda: audits.started == 1)
        audits.finish.release()
        await until(lambda: log == ["audit", "reconcile"])

        eng.queue.add(KEY)
        eng.queue.add(KEY)
        clock.now += 90.0
        await until(lambda: audits.started == 2)
        clock.now += 90.0  # frozen again, in the middle of that audit
        eng.notice_stall()
        audits.finish.release()
        await until(lambda: audits.started == 3)  # its listing may predate the stall
        await turns()
        assert log == ["audit", "reconcile", "audit"]
        audits.finish.release()
        await until(lambda: log[-1] == "reconcile")
        await turns()
        started = audits.started
        await eng.stop_workers()
        return log, started

    log, started = asyncio.run(scenario())
    assert log[:4] == ["audit", "reconcile", "audit", "audit"]
    assert started == 3  # and no extra audit once caught up


def test_a_status_refused_as_stale_comes_back() -> None:
    async def scenario() -> Engine:
        eng, _, _ = engine([], Stale())
        await eng.reconcile(asyncio.get_running_loop(), KEY)
        return eng

    eng = asyncio.run(scenario())
    assert KEY in eng.queue._pending
    assert eng.queue._failures == {}  # not an error: no backoff
