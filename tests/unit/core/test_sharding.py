"""The shard of a namespace: the same hash and ranges as the API server's shard
selector (k8s.io/apimachinery/pkg/sharding, Go's hash/fnv New64a)."""

from __future__ import annotations

import itertools

import pytest

from cronwarden.core.sharding import (
    SPACE,
    bounds,
    fnv1a64,
    lease_name,
    selector,
    shard_of,
    shard_of_hash,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Printed by Go: h := fnv.New64a(); h.Write([]byte(value)); h.Sum64()
        ("", 0xCBF29CE484222325),
        ("a", 0xAF63DC4C8601EC8C),
        ("default", 0xEBADA5168620C5FE),
        ("team-a", 0xDE90A3717D1252D6),
        ("cronwarden-e2e-x", 0x18DEDC8C01287796),
    ],
)
def test_fnv1a64_is_gos(value: str, expected: int) -> None:
    assert fnv1a64(value) == expected


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 10, 256])
def test_the_shards_cover_the_hash_space_without_gap_or_overlap(shards: int) -> None:
    ranges = [bounds(i, shards) for i in range(shards)]
    assert ranges[0][0] == 0
    assert ranges[-1][1] == SPACE
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 10])
def test_a_hash_belongs_to_the_shard_whose_range_holds_it(shards: int) -> None:
    for i in range(shards):
        start, end = bounds(i, shards)
        for h in (start, start + 1, end - 1):
            assert shard_of_hash(h, shards) == i, (h, shards)


def test_shard_of_a_namespace() -> None:
    assert shard_of("default", 1) == 0
    assert shard_of("default", 2) == 1  # 0xebad... is in the upper half
    assert shard_of("cronwarden-e2e-x", 2) == 0  # 0x18de... in the lower half


def test_selectors_are_the_kep_examples_on_the_namespace() -> None:
    assert selector(0, 2) == (
        "shardRange(object.metadata.namespace, '0x0000000000000000', '0x8000000000000000')"
    )
    assert selector(1, 2) == (
        "shardRange(object.metadata.namespace, '0x8000000000000000', '0x10000000000000000')"
    )
    assert selector(2, 4) == (
        "shardRange(object.metadata.namespace, '0x8000000000000000', '0xc000000000000000')"
    )
    # 16 hex digits where 2^64 / n does not divide: the API server compares strings.
    assert selector(0, 3) == (
        "shardRange(object.metadata.namespace, '0x0000000000000000', '0x5555555555555555')"
    )


@pytest.mark.parametrize(
    ("shard", "shards", "message"),
    [
        (0, 0, "shards must be between 1 and 256, not 0"),
        (0, 257, "shards must be between 1 and 256, not 257"),
        (2, 2, "shard must be between 0 and 1, not 2"),
        (-1, 2, "shard must be between 0 and 1, not -1"),
    ],
)
def test_bad_shards_are_refused(shard: int, shards: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bounds(shard, shards)


def test_lease_names() -> None:
    assert lease_name("cronwarden", 3) == "cronwarden-shard-3"
