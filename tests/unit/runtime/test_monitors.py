"""Monitor mode's shared per-namespace reads: only referenced CronJobs and their
Jobs are kept, and only tasks whose inputs changed are named. Pure: no cluster."""

from __future__ import annotations

from typing import Any

from cronwarden.runtime.monitors import Monitors, reference


def cronjob(name: str, uid: str, rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv}}


def job(name: str, owner: str, rv: str = "1") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": rv,
            "ownerReferences": [{"uid": owner, "controller": True}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "big"}]}}},
    }


def test_one_read_serves_every_monitored_task_of_the_namespace() -> None:
    m = Monitors()
    assert m.track(("ns", "a"), "vendor-a") is True  # the namespace needs a first read
    m.track(("ns", "b"), "vendor-b")
    m.track(("other", "c"), "vendor-c")
    assert m.view(("ns", "a")) is None
    assert m.namespaces() == ["ns", "other"]
    changed = m.apply(
        "ns",
        [cronjob("vendor-a", "ua"), cronjob("unrelated", "ux")],
        [job("a-1", "ua"), job("x-1", "ux"), job("by-hand", "nobody")],
    )
    assert changed == {("ns", "a"), ("ns", "b")}
    seen = m.view(("ns", "a"))
    assert seen is not None
    assert seen[0] is not None
    assert [j["metadata"]["name"] for j in seen[1]] == ["a-1"]
    assert "spec" not in seen[1][0]  # stored without the pod template
    assert m.view(("ns", "b")) == (None, [])  # read, and absent
    assert m.view(("other", "c")) is None  # not read yet


def test_only_tasks_whose_cronjob_or_jobs_changed_are_named() -> None:
    m = Monitors()
    m.track(("ns", "a"), "vendor-a")
    m.track(("ns", "b"), "vendor-b")
    cronjobs = [cronjob("vendor-a", "ua"), cronjob("vendor-b", "ub")]
    m.apply("ns", cronjobs, [job("a-1", "ua")])
    assert m.apply("ns", cronjobs, [job("a-1", "ua")]) == set()
    assert m.apply("ns", cronjobs, [job("a-1", "ua"), job("b-1", "ub")]) == {("ns", "b")}
    assert m.apply("ns", [cronjob("vendor-a", "ua", rv="2"), cronjobs[1]], []) == {
        ("ns", "a"),
        ("ns", "b"),
    }


def test_forgetting_the_last_task_of_a_namespace_stops_its_reads() -> None:
    m = Monitors()
    m.track(("ns", "a"), "vendor-a")
    m.apply("ns", [cronjob("vendor-a", "ua")], [])
    m.forget(("ns", "a"))
    assert m.namespaces() == []
    assert m.track(("ns", "a"), "vendor-a") is True


def test_reference() -> None:
    assert reference({"spec": {"cronJobRef": {"name": "x"}}}) == "x"
    assert reference({"spec": {"schedule": "* * * * *"}}) is None
