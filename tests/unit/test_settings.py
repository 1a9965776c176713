"""Settings of a sharded replica: which namespaces it follows and which Lease it holds."""

from __future__ import annotations

import dataclasses

from cronwarden.core.sharding import shard_of
from cronwarden.settings import Settings

NAMES = [f"team-{i}" for i in range(20)]


def test_a_shard_watches_only_the_namespaces_that_hash_into_it() -> None:
    base = Settings(namespaces=NAMES, shards=2, leader_election=True)
    assert base.shard is None
    assert all(base.watches(ns) for ns in NAMES)
    seen = []
    for shard in (0, 1):
        mine = dataclasses.replace(base, shard=shard)
        watched = [ns for ns in NAMES if mine.watches(ns)]
        assert watched == [ns for ns in NAMES if shard_of(ns, 2) == shard]
        assert mine.scopes() == watched
        seen += watched
    assert sorted(seen) == sorted(NAMES)  # none lost, none twice


def test_patterns_and_all_namespaces_are_sharded_too() -> None:
    for base in (
        Settings(namespaces=["team-*"], shards=3),
        Settings(all_namespaces=True, shards=3),
    ):
        owners = [
            [s for s in range(3) if dataclasses.replace(base, shard=s).watches(ns)] for ns in NAMES
        ]
        assert owners == [[shard_of(ns, 3)] for ns in NAMES]
        assert dataclasses.replace(base, shard=0).scopes() == [None]


def test_a_shard_with_none_of_the_named_namespaces_still_names_one() -> None:
    """kopf given no namespace would watch the whole cluster."""
    only = "team-0"
    empty = 1 - shard_of(only, 2)
    settings = Settings(namespaces=[only], shards=2, shard=empty)
    assert settings.namespaces_watched() == [only]
    assert not settings.watches(only)


def test_lease_names() -> None:
    assert Settings(leader_election_id="cw").lease_name == "cw"
    assert Settings(leader_election_id="cw", shards=2, shard=1).lease_name == "cw-shard-1"
