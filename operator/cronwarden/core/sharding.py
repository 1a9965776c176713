"""Which shard a namespace belongs to: pure, and the same as the API server's.

Tasks are split among shards by the 64-bit FNV-1a hash of their namespace, so that
a task, its CronJob, its Jobs and the Events about them (all in that namespace)
meet in one shard. Shard i of n owns the hashes in [i * 2^64 / n, (i+1) * 2^64 / n).
That is exactly what Kubernetes' alpha server-side shard selector computes
(k8s.io/apimachinery/pkg/sharding, feature gate ShardedListAndWatch, 1.36+):
`shardRange(object.metadata.namespace, '0x<start>', '0x<end>')` keeps an object when
start <= fnv1a64(namespace) < end. The client-side filter and the server-side
selector therefore agree object for object. docs/sharding.md argues the choice.
"""

from __future__ import annotations

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
SPACE = 1 << 64
KEY = "object.metadata.namespace"
# A Lease name is at most 253 characters; more shards than this would be a mistake.
MAX_SHARDS = 256


def fnv1a64(value: str) -> int:
    """Go's hash/fnv New64a over the UTF-8 bytes of `value`."""
    h = FNV_OFFSET
    for byte in value.encode():
        h = ((h ^ byte) * FNV_PRIME) % SPACE
    return h


def bounds(shard: int, shards: int) -> tuple[int, int]:
    """The hash range [start, end) that `shard` of `shards` owns."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be between 1 and {MAX_SHARDS}, not {shards}")
    if not 0 <= shard < shards:
        raise ValueError(f"shard must be between 0 and {shards - 1}, not {shard}")
    return shard * SPACE // shards, (shard + 1) * SPACE // shards


def shard_of(namespace: str, shards: int) -> int:
    """The shard that owns `namespace` (the one whose range holds its hash)."""
    return shard_of_hash(fnv1a64(namespace), shards)


def shard_of_hash(h: int, shards: int) -> int:
    shard = h * shards // SPACE  # or one less than the owner, where bounds rounded down
    if shard + 1 < shards and h >= bounds(shard + 1, shards)[0]:
        shard += 1
    return shard


def selector(shard: int, shards: int) -> str:
    """The server-side shardSelector for `shard` of `shards`. The bounds are written
    with 16 hex digits (17 for 2^64), as the API server compares them as strings of
    equal length."""
    start, end = bounds(shard, shards)
    return f"shardRange({KEY}, '{_hex(start)}', '{_hex(end)}')"


def _hex(value: int) -> str:
    return f"0x{value:016x}"


def lease_name(base: str, shard: int) -> str:
    """The Lease that shard `shard` is held by."""
    return f"{base}-shard-{shard}"
