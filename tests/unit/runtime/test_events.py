"""The Events queue (runtime/events.py): what waits is small and one per series, so a
poster that falls behind holds O(tasks), not O(runs) with a task body each. The
poster here is a stand-in that blocks until released, so the queue is seen with
Events waiting; every wait has a deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cronwarden.core.conditions import Event
from cronwarden.runtime.events import EventQueue


def task(name: str, uid: str) -> dict[str, Any]:
    """A task body with the weight of a real one: a status the Event does not need."""
    return {
        "apiVersion": "cronwarden.io/v1alpha1",
        "kind": "ScheduledTask",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": uid,
            "resourceVersion": "7",
            "managedFields": [{"manager": "x", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"schedule": "* * * * *"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}] * 5},
    }


class Poster:
    """Records posts; each post waits until `release` is set."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, Any], str, str, str, bool, int]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(
        self, obj: Any, type_: str, reason: str, msg: str, distinct: bool, n: int = 1
    ) -> None:
        self.started.set()
        assert self.release.wait(30), "the test never released the poster"
        self.posts.append((obj, type_, reason, msg, distinct, n))


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def busy_queue(limit: int = 100) -> tuple[EventQueue, Poster, list[int]]:
    """A queue whose poster is busy with a first Event (of task `first`)."""
    poster, dropped = Poster(), []
    queue = EventQueue(poster, lambda: True, dropped.append, limit=limit)
    queue.submit([(task("first", "u0"), Event("Normal", "RunSucceeded", "run 0"))])
    assert poster.started.wait(30), "the poster never took the first Event"
    return queue, poster, dropped


def test_a_waiting_event_keeps_only_the_reference_of_its_object() -> None:
    queue, poster, _ = busy_queue()
    queue.submit([(task("backup", "u1"), Event("Warning", "RunFailed", "run 1 failed"))])
    poster.release.set()
    wait_for(lambda: len(poster.posts) == 2, "both posts")
    queue.close()
    assert poster.posts[1][0] == {
        "apiVersion": "cronwarden.io/v1alpha1",
        "kind": "ScheduledTask",
        "metadata": {"name": "backup", "namespace": "team-a", "uid": "u1"},
    }


def test_events_of_one_series_wait_as_one_with_their_count() -> None:
    queue, poster, _ = busy_queue()
    backup, report = task("backup", "u1"), task("report", "u2")
    for i in range(1, 4):
        queue.submit([(backup, Event("Normal", "RunSucceeded", f"run {i}"))])
    queue.submit([(report, Event("Normal", "RunSucceeded", "run 9"))])
    queue.submit([(backup, Event("Warning", "RunFailed", "run 4 failed"))])
    assert len(queue) == 3  # backup's RunSucceeded (3), report's, backup's RunFailed
    poster.release.set()
    wait_for(lambda: len(poster.posts) == 4, "every post")
    queue.close()
    posted = [
        (obj["metadata"]["name"], reason, msg, n) for obj, _, reason, msg, _, n in poster.posts
    ]
    assert posted == [
        ("first", "RunSucceeded", "run 0", 1),
        ("backup", "RunSucceeded", "run 3", 3),  # the latest text, counted three times
        ("report", "RunSucceeded", "run 9", 1),
        ("backup", "RunFailed", "run 4 failed", 1),
    ]


def test_distinct_events_wait_apart_per_message() -> None:
    queue, poster, _ = busy_queue()
    backup = task("backup", "u1")
    warn = [Event("Warning", "CronJobWarning", text, distinct=True) for text in "aab"]
    queue.submit([(backup, event) for event in warn])
    assert len(queue) == 2
    poster.release.set()
    wait_for(lambda: len(poster.posts) == 3, "every post")
    queue.close()
    assert [(p[3], p[5]) for p in poster.posts[1:]] == [("a", 2), ("b", 1)]


def test_the_oldest_series_is_dropped_beyond_the_limit_and_counted() -> None:
    queue, poster, dropped = busy_queue(limit=2)
    for name in ("a", "a", "b", "c"):
        queue.submit([(task(name, f"u-{name}"), Event("Normal", "RunSucceeded", name))])
    assert len(queue) == 2
    assert dropped == [2]  # a's two Events
    poster.release.set()
    wait_for(lambda: len(poster.posts) == 3, "every post")
    queue.close()
    assert [p[0]["metadata"]["name"] for p in poster.posts] == ["first", "b", "c"]
