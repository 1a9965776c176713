"""The operator's own reflector of managed CronJobs and Jobs: it lists with the label
selector (listed objects handed over with type None), watches from the listing's
version with the same selector, lists again after 410 Gone, watches again from the
last version after any other failure, and hands events to the event loop in order
and in batches. No cluster: the API client is a stand-in whose watches are fed by
the test (runtime/kube.Watch's interface)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from cronwarden import settings
from cronwarden.runtime import reflector
from cronwarden.runtime.kube import CRONJOBS, EVENTS, JOBS, ApiError, Kube
from cronwarden.runtime.reflector import Handoff, Reflector
from cronwarden.runtime.refusals import FIELD_SELECTOR
from tests.unit.runtime.test_monitorwatch import FakeWatch

Event = tuple[str, dict[str, Any]]
MANAGED = "app.kubernetes.io/managed-by=cronwarden"


def obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


class FakeKube:
    """Lists `objects` in pages of two; each watch() opens a FakeWatch the test feeds."""

    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []
        self.version = "10"
        self.lists: list[tuple[str, str | None, str, str]] = []
        self.opened: list[tuple[str, str, FakeWatch]] = []  # (version, selector, watch)
        self.fail_lists = 0
        self.fields: list[str] = []  # the field selector of each list and watch

    def list_page(
        self, template: str, namespace: str | None, selector: str, token: str, fields: str = ""
    ) -> tuple[list[dict[str, Any]], str, str | None]:
        self.lists.append((template, namespace, selector, token))
        self.fields.append(fields)
        if self.fail_lists:
            self.fail_lists -= 1
            raise ApiError(0, "ConnectionError", "refused")
        at = int(token or 0)
        nxt = str(at + 2) if at + 2 < len(self.objects) else None
        return self.objects[at : at + 2], self.version, nxt

    def watch(
        self,
        template: str,
        namespace: str | None,
        version: str,
        seconds: float,
        selector: str,
        fields: str = "",
    ) -> FakeWatch:
        self.fields.append(fields)
        opened = FakeWatch()
        self.opened.append((version, selector, opened))
        return opened

    def current(self) -> FakeWatch:
        return self.opened[-1][2]


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reflector, "API_RETRY_BACKOFFS", (0.01,))


def test_the_backoff_is_the_one_kopf_requests_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """0.5, 1, 2, then 3 s (+-20 %): the blind window after an API server restart."""
    monkeypatch.setattr(reflector, "API_RETRY_BACKOFFS", settings.API_RETRY_BACKOFFS)
    delays = [reflector.backoff(n) for n in range(1, 13)]
    assert 0.4 <= delays[0] <= 0.6
    assert 0.8 <= delays[1] <= 1.2
    assert all(2.4 <= d <= 3.6 for d in delays[3:])


def test_lists_watches_relists_after_gone_and_watches_again_after_a_cut() -> None:
    kube = FakeKube()
    kube.objects = [obj("a", "3"), obj("b", "5"), obj("c", "7")]
    got: list[tuple[str | None, str]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        handoff = Handoff(loop, lambda t, b: got.append((t, b["metadata"]["name"])))
        watch = Reflector(kube, JOBS, "ns", MANAGED, handoff)  # type: ignore[arg-type]
        watch.start()
        try:
            # 1. Listed in pages with the selector, handed over as type None, then
            #    watched from the listing's version with the same selector.
            await until(lambda: len(kube.opened) == 1, "the watch")
            assert [(t, ns, s) for t, ns, s, _ in kube.lists] == [(JOBS, "ns", MANAGED)] * 2
            assert kube.opened[0][:2] == ("10", MANAGED)
            await until(lambda: len(got) == 3, "the listing")
            assert got == [(None, "a"), (None, "b"), (None, "c")]

            # 2. Events in order; a bookmark moves the version and is not handed over.
            kube.current().feed.put(("ADDED", obj("d", "11")))
            kube.current().feed.put(("MODIFIED", obj("a", "12")))
            kube.current().feed.put(("DELETED", obj("b", "13")))
            kube.current().feed.put(("BOOKMARK", {"metadata": {"resourceVersion": "15"}}))
            await until(lambda: len(got) == 6, "the events")
            assert got[3:] == [("ADDED", "d"), ("MODIFIED", "a"), ("DELETED", "b")]
            await until(lambda: watch.version == "15", "the bookmark's version")

            # 3. A cut connection is not a relist: watch again from the last version.
            kube.current().feed.put(ApiError(0, "ConnectionError", "reset"))
            await until(lambda: len(kube.opened) == 2, "the watch again")
            assert kube.opened[1][0] == "15"
            assert len(kube.lists) == 2

            # 4. 410 Gone: list again (every object handed over again), then watch from
            #    the new listing's version.
            kube.objects = [obj("a", "12")]
            kube.version = "20"
            kube.current().feed.put(ApiError(410, "Expired", "too old resource version"))
            await until(lambda: len(kube.opened) == 3, "the watch after the listing")
            assert kube.opened[2][0] == "20"
            assert len(kube.lists) == 3
            assert got[-1] == (None, "a")
        finally:
            watch.stop()
            assert await asyncio.to_thread(watch.join, 10)

    asyncio.run(scenario())


def test_errors_sent_inside_watches_are_survived_and_then_list_again() -> None:
    """An ERROR event other than 410 (the 500 "etcd event received with PrevKv=nil" of
    a watch served by etcd while it compacts) ends that watch, not the operator: watch
    again from the last version, and after STREAM_ERRORS in a row, list again. The
    FailedCreate Events are reflected so, with their field selector on every request."""
    kube = FakeKube()
    kube.objects = [obj("e", "3")]
    got: list[tuple[str | None, str]] = []
    prev_kv = "etcd event received with PrevKv=nil (key=/registry/events/ns/e.1)"

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        handoff = Handoff(loop, lambda t, b: got.append((t, b["metadata"]["name"])))
        watch = Reflector(kube, EVENTS, "ns", "", handoff, FIELD_SELECTOR)  # type: ignore[arg-type]
        watch.start()
        try:
            await until(lambda: len(kube.opened) == 1, "the watch")
            kube.current().feed.put(("MODIFIED", obj("e", "11")))
            await until(lambda: watch.version == "11", "the event's version")
            for n in range(1, reflector.STREAM_ERRORS):
                kube.current().feed.put(ApiError(500, "InternalError", prev_kv))
                await until(lambda n=n: len(kube.opened) == n + 1, "the watch again")
                assert kube.opened[-1][0] == "11"
                assert len(kube.lists) == 1
            kube.version = "30"
            kube.current().feed.put(ApiError(500, "InternalError", prev_kv))
            await until(lambda: len(kube.lists) == 2, "the listing again")
            await until(lambda: len(kube.opened) == reflector.STREAM_ERRORS + 1, "the watch")
            assert kube.opened[-1][0] == "30"
            # A watch that went well starts the count again.
            kube.current().feed.put(("MODIFIED", obj("e", "31")))
            kube.current().feed.put(ApiError(0, "ConnectionError", "the watch broke off"))
            await until(lambda: len(kube.opened) == reflector.STREAM_ERRORS + 2, "again")
            assert len(kube.lists) == 2
            assert got == [(None, "e"), ("MODIFIED", "e"), (None, "e"), ("MODIFIED", "e")]
            assert set(kube.fields) == {FIELD_SELECTOR}
        finally:
            watch.stop()
            assert await asyncio.to_thread(watch.join, 10)

    asyncio.run(scenario())


def test_a_failed_listing_is_tried_again_after_a_backoff() -> None:
    kube = FakeKube()
    kube.objects = [obj("a", "3")]
    kube.fail_lists = 2
    got: list[str] = []

    async def scenario() -> None:
        handoff = Handoff(
            asyncio.get_running_loop(), lambda t, b: got.append(b["metadata"]["name"])
        )
        watch = Reflector(kube, CRONJOBS, None, MANAGED, handoff)  # type: ignore[arg-type]
        watch.start()
        try:
            await until(lambda: len(kube.opened) == 1, "the watch")
            assert len(kube.lists) == 3
            assert got == ["a"]
            assert kube.lists[0][1] is None  # cluster-wide
        finally:
            watch.stop()
            assert await asyncio.to_thread(watch.join, 10)

    asyncio.run(scenario())


def test_events_waiting_together_are_handed_over_in_order_batch_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One wake-up of the loop for events that wait together, and at most BATCH per
    turn of the loop."""
    monkeypatch.setattr(reflector, "BATCH", 3)
    batches: list[list[int]] = []

    class Counted(Handoff):
        def _drain(self) -> None:
            batches.append([])
            super()._drain()

    async def scenario() -> None:
        handoff = Counted(asyncio.get_running_loop(), lambda t, b: batches[-1].append(b["n"]))
        for i in range(7):  # the loop does not run in between: all seven wait together
            assert handoff.put("ADDED", {"n": i})
        await until(lambda: sum(map(len, batches)) == 7, "every event")

    asyncio.run(scenario())
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_closed_handoff_stops_the_reader_and_delivers_nothing_more() -> None:
    got: list[int] = []

    async def scenario() -> None:
        handoff = Handoff(asyncio.get_running_loop(), lambda t, b: got.append(b["n"]))
        handoff.close()
        assert handoff.put("ADDED", {"n": 1}) is False
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert got == []


def test_kube_watch_carries_the_label_and_shard_selectors() -> None:
    """The managed watches select on the server as their lists do (Kube.list_page)."""
    sent: list[str] = []

    class Response:
        status = 200

    class Transport:
        timeout = 30.0
        server = "https://api"

        def stream(self, target: str, headers: dict[str, str], read_timeout: float) -> Any:
            sent.append(target)
            return Response()

    kube = Kube.__new__(Kube)
    kube.transport = Transport()  # type: ignore[assignment]
    kube.api = type("A", (), {"on_request": None, "headers": {}})()  # type: ignore[assignment]
    kube.shard_selectors = {JOBS: "shardRange(object.metadata.namespace, 0x0, 0x8)"}
    kube.watch(JOBS, None, "5", 300, selector=MANAGED)
    kube.watch(CRONJOBS, "ns", "6", 300)
    assert "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dcronwarden" in sent[0]
    assert "shardSelector=shardRange" in sent[0]
    assert sent[0].startswith("/apis/batch/v1/jobs?")
    assert "labelSelector" not in sent[1]
    assert "shardSelector" not in sent[1]


def test_kopf_watches_only_the_tasks() -> None:
    """kopf stops the whole operator on an error sent inside a watch (other than 410);
    the FailedCreate Events, watched by etcd directly and so exposed to compaction's
    500s, are the reflector's, as CronJobs and Jobs are."""
    import kopf

    import cronwarden.runtime.handlers  # noqa: F401  (registers the handlers)

    registry = kopf.get_default_registry()
    watched = {
        (h.selector.group, h.selector.version, h.selector.any_name)
        for h in registry._watching.get_all_handlers()
    }
    assert watched == {("cronwarden.io", "v1alpha1", "scheduledtasks")}
