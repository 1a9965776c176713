"""What a shard's requests carry: its status writes name the shard as field manager,
and its lists carry the shard selector of their resource."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from kubernetes import client

from cronwarden.runtime.kube import CRONJOBS, JOBS, TASKS, Kube
from cronwarden.wire import Answer


class Recorder:
    """A transport that answers every request with `answer` and keeps the targets."""

    server = "http://api.invalid"
    timeout: float | None = 1.0

    def __init__(self, answer: dict[str, object]) -> None:
        self.answer = json.dumps(answer).encode()
        self.targets: list[tuple[str, dict[str, list[str]]]] = []

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Answer:
        url = urlsplit(target)
        self.targets.append((f"{method} {url.path}", parse_qs(url.query)))
        return Answer(200, "OK", [], self.answer)


def kube(answer: dict[str, object], status_manager: str = "cronwarden") -> tuple[Kube, Recorder]:
    api = client.ApiClient(client.Configuration(host="http://api.invalid"))
    k = Kube(api, status_manager=status_manager)
    k.api.transport = recorder = Recorder(answer)
    return k, recorder


def test_status_is_written_as_the_shard() -> None:
    k, seen = kube({}, status_manager="cronwarden-shard-1")
    k.patch_task_status("team-a", "t", {"succeeded": 1}, "7")
    [(request, query)] = seen.targets
    assert request.startswith("PATCH ")
    assert request.endswith("/team-a/scheduledtasks/t/status")
    assert query["fieldManager"] == ["cronwarden-shard-1"]


def test_lists_carry_the_shard_selector_of_their_resource_only() -> None:
    k, seen = kube({"items": [], "metadata": {"resourceVersion": "5"}})
    k.shard_selectors = {TASKS: "shardRange(object.metadata.namespace, '0x0', '0x8')"}
    k.list_page(TASKS, None)
    k.list_page(JOBS, None, "app.kubernetes.io/managed-by=cronwarden")
    (_, tasks), (_, jobs) = seen.targets
    assert tasks["shardSelector"] == ["shardRange(object.metadata.namespace, '0x0', '0x8')"]
    assert "shardSelector" not in jobs
    assert jobs["labelSelector"] == ["app.kubernetes.io/managed-by=cronwarden"]


def test_the_gate_is_told_by_the_echoed_shard_info() -> None:
    on, seen = kube({"items": [], "metadata": {"shardInfo": {"selector": "s"}}})
    assert on.selects_shards(CRONJOBS, None, "s")
    assert seen.targets[0][1] == {"limit": ["1"], "shardSelector": ["s"]}
    off, _ = kube({"items": [], "metadata": {}})
    assert not off.selects_shards(CRONJOBS, None, "s")
