"""The monitor watch of one namespace, as a reflector: it lists, then follows each
watch from its listing's version, lists again after 410 Gone or when a task names a
new CronJob, and queues only the tasks concerned. No cluster: the API client is a
stand-in whose watches are fed by the test (runtime/kube.Watch's interface)."""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cronwarden.runtime import monitorwatch
from cronwarden.runtime.kube import CRONJOBS, JOBS, ApiError
from cronwarden.runtime.monitors import Monitors
from cronwarden.runtime.monitorwatch import NamespaceWatch
from tests.unit.runtime.test_monitors import A, B, cronjob, job

Event = tuple[str, dict[str, Any]]


class FakeWatch:
    def __init__(self) -> None:
        self.feed: queue.Queue[Event | ApiError | None] = queue.Queue()

    def events(self) -> Iterator[Event]:
        while (item := self.feed.get()) is not None:
            if isinstance(item, ApiError):
                raise item
            yield item

    def close(self) -> None:
        self.feed.put(None)


class FakeKube:
    """Lists what `objects` holds; each watch() opens a FakeWatch the test can feed."""

    def __init__(self) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {CRONJOBS: [], JOBS: []}
        self.version = "10"
        self.lists: list[str] = []
        self.opened: dict[str, list[tuple[str, FakeWatch]]] = {CRONJOBS: [], JOBS: []}

    def list_page(
        self, template: str, namespace: str, selector: str, token: str
    ) -> tuple[list[dict[str, Any]], str, str | None]:
        self.lists.append(template)
        return list(self.objects[template]), self.version, None

    def watch(self, template: str, namespace: str, version: str, seconds: float) -> FakeWatch:
        opened = FakeWatch()
        self.opened[template].append((version, opened))
        return opened

    def current(self, template: str) -> FakeWatch:
        return self.opened[template][-1][1]


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitorwatch, "RELIST_DELAY", 0.0)


def test_list_watch_relist_after_gone_and_for_a_newly_named_cronjob() -> None:
    kube = FakeKube()
    kube.objects[CRONJOBS] = [cronjob("vendor-a", "ua"), cronjob("vendor-b", "ub")]
    kube.objects[JOBS] = [job("a-1", "vendor-a", "ua")]
    monitors = Monitors()
    monitors.track(A, "vendor-a")
    queued: list[set[tuple[str, str]]] = []

    async def scenario() -> None:
        with ThreadPoolExecutor(2) as pool:
            watch = NamespaceWatch(kube, "ns", monitors, pool, queued.append)  # type: ignore[arg-type]
            watch.start()
            try:
                # 1. Listed, then both watches opened from the listing's version.
                await until(lambda: len(kube.opened[JOBS]) == 1, "the Job watch")
                assert kube.opened[CRONJOBS][0][0] == "10"
                assert kube.opened[JOBS][0][0] == "10"
                assert {A} in queued
                assert monitors.cache.counts()["cronjobs"] == 1  # vendor-b: nobody names it

                # 2. An event queues the task that names its CronJob, and nothing else.
                queued.clear()
                kube.current(JOBS).feed.put(("ADDED", job("x-1", "unrelated", "ux", rv="11")))
                kube.current(JOBS).feed.put(("ADDED", job("a-2", "vendor-a", "ua", rv="12")))
                await until(lambda: bool(queued and queued[-1]), "a-2 to queue its task")
                assert [q for q in queued if q] == [{A}]
                assert len(monitors.view(A)[1]) == 2  # type: ignore[index]

                # 3. 410 Gone: list again, and what vanished meanwhile is deleted.
                kube.objects[JOBS] = [job("a-1", "vendor-a", "ua")]
                kube.version = "20"
                kube.current(JOBS).feed.put(ApiError(410, "Expired", "too old resource version"))
                await until(lambda: len(kube.opened[JOBS]) == 2, "the Job watch again")
                assert kube.opened[JOBS][1][0] == "20"
                assert [j["metadata"]["name"] for j in monitors.view(A)[1]] == ["a-1"]  # type: ignore[index]

                # 4. A task names vendor-b, which no listing kept: list again for it.
                assert monitors.track(B, "vendor-b") is True
                assert monitors.view(B) is None
                opened = len(kube.opened[CRONJOBS])
                watch.relist()
                await until(lambda: len(kube.opened[CRONJOBS]) > opened, "a listing, then watches")
                assert monitors.view(B) is not None
                assert any(B in q for q in queued)
                assert kube.lists.count(CRONJOBS) == 3

                # 5. A broken connection is not a relist: watch again from the last version.
                opened = len(kube.opened[CRONJOBS])
                kube.current(CRONJOBS).feed.put(("MODIFIED", cronjob("vendor-b", "ub", rv="25")))
                kube.current(CRONJOBS).feed.put(ApiError(0, "ConnectionError", "reset"))
                await until(lambda: len(kube.opened[CRONJOBS]) > opened, "the watch again")
                assert kube.opened[CRONJOBS][-1][0] == "25"
                assert kube.lists.count(CRONJOBS) == 3
            finally:
                await watch.stop()

    asyncio.run(scenario())
