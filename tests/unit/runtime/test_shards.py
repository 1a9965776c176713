"""Taking a shard: the first free shard Lease, never one that another replica holds."""

from __future__ import annotations

import copy
import threading
from typing import Any

from cronwarden.runtime.kube import ApiError
from cronwarden.runtime.shards import claim
from cronwarden.settings import Settings


class Leases:
    """Leases in memory, with the API server's optimistic concurrency."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.version = 0

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        lease = self.leases.get(name)
        return copy.deepcopy(lease) if lease else None

    def create_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        name = lease["metadata"]["name"]
        if name in self.leases:
            raise ApiError(409, "Conflict", "exists")
        return self._store(lease)

    def update_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        current = self.leases[lease["metadata"]["name"]]
        if lease["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "changed")
        return self._store(lease)

    def _store(self, lease: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(lease)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.leases[stored["metadata"]["name"]] = stored
        return copy.deepcopy(stored)


class OneRound(threading.Event):
    """A stop flag that is raised after the first round, and never waits."""

    def __init__(self) -> None:
        super().__init__()
        self.rounds = 0

    def is_set(self) -> bool:
        return self.rounds > 0

    def wait(self, timeout: float | None = None) -> bool:
        self.rounds += 1
        return True


def settings(identity: str) -> Settings:
    return Settings(namespaces=["a"], shards=3, leader_election=True, identity=identity)


def test_replicas_take_the_free_shards_in_turn() -> None:
    api = Leases()
    got = [claim(settings(f"r{i}"), api) for i in range(3)]  # type: ignore[arg-type]
    assert got == [0, 1, 2]
    assert {n: lease["spec"]["holderIdentity"] for n, lease in api.leases.items()} == {
        "cronwarden-shard-0": "r0",
        "cronwarden-shard-1": "r1",
        "cronwarden-shard-2": "r2",
    }


def test_a_standby_waits_while_every_shard_is_held_and_takes_a_released_one() -> None:
    api = Leases()
    for i in range(3):
        claim(settings(f"r{i}"), api)  # type: ignore[arg-type]
    # Every Lease is live: a round over all three gets the standby none.
    stop = OneRound()
    assert claim(settings("standby"), api, stop) is None  # type: ignore[arg-type]
    assert stop.rounds == 1
    # r1 stops cleanly: it empties the holder, and the standby takes shard 1 at once.
    released = api.get_lease("", "cronwarden-shard-1")
    assert released is not None
    released["spec"]["holderIdentity"] = None
    api.update_lease(released)
    assert claim(settings("standby"), api) == 1  # type: ignore[arg-type]
    assert api.leases["cronwarden-shard-1"]["spec"]["holderIdentity"] == "standby"
