"""Operator settings: the single source of the operator's defaults.

`cronwarden run` (cli.py) builds them from options and environment variables, and
its --help shows these defaults; the chart and hack/run.sh pass options only where
they differ.
"""

from __future__ import annotations

import fnmatch
import os
import socket
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from cronwarden.core import sharding

DEFAULT_WORKERS = 8
DEFAULT_RESYNC_SECONDS = 300
# How often the cache is compared with a full list (runtime/audit.py).
DEFAULT_AUDIT_SECONDS = 180
DEFAULT_LIVENESS_PORT = 8080
DEFAULT_METRICS_PORT = 9090
DEFAULT_BIND_ADDRESS = "0.0.0.0"
DEFAULT_LEADER_ELECTION_ID = "cronwarden"
# Objects per page when a watch (re)lists: bounded memory and request size.
LIST_CHUNK_SIZE = 500
# Delays (s) between kopf's retries of a failed watch or list request (kopf's own
# default, 1 ... 21 s, left the operator blind for up to 21 s after the API server
# came back), each with +-RETRY_JITTER so that watches do not retry in step. After
# the last, it repeats (runtime/handlers.RetryBackoffs).
API_RETRY_BACKOFFS = (0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0)
API_RETRY_JITTER = 0.2
# 0: no limit on ScheduledTasks per namespace (the chart sets one).
DEFAULT_MAX_TASKS_PER_NAMESPACE = 0
# One shard: one active replica for every task (docs/sharding.md).
DEFAULT_SHARDS = 1
# Namespaces whose Settings.watches answer is remembered (a bound, not a working set).
WATCHED_MEMO = 65_536
# How a shard's objects are selected: "auto" asks the API server for a shard selector
# where it has the ShardedListAndWatch gate on, "client" always filters locally.
SHARD_FILTERS = ("auto", "client")


def default_lease_namespace() -> str:
    return os.environ.get("POD_NAMESPACE") or "default"


def default_excluded_namespaces() -> list[str]:
    """kube-system, and the operator's own namespace when it runs in a pod: a task
    there could run pods under the operator's ServiceAccount."""
    own = os.environ.get("POD_NAMESPACE")
    return ["kube-system", *([own] if own and own != "kube-system" else [])]


def pod_name() -> str:
    return os.environ.get("POD_NAME") or socket.gethostname()


@dataclass(frozen=True)
class Settings:
    namespaces: list[str] = field(default_factory=list)
    all_namespaces: bool = False
    kubeconfig: str | None = None
    liveness_port: int = DEFAULT_LIVENESS_PORT
    metrics_port: int = DEFAULT_METRICS_PORT
    bind_address: str = DEFAULT_BIND_ADDRESS
    log_format: str = "plain"
    verbose: bool = False
    workers: int = DEFAULT_WORKERS
    resync_seconds: float = DEFAULT_RESYNC_SECONDS
    audit_seconds: float = DEFAULT_AUDIT_SECONDS
    leader_election: bool = False
    leader_election_namespace: str = field(default_factory=default_lease_namespace)
    leader_election_id: str = DEFAULT_LEADER_ELECTION_ID
    identity: str = field(default_factory=pod_name)
    excluded_namespaces: list[str] = field(default_factory=default_excluded_namespaces)
    max_tasks_per_namespace: int = DEFAULT_MAX_TASKS_PER_NAMESPACE
    shards: int = DEFAULT_SHARDS
    shard_filter: str = "auto"
    # The shard this replica holds (runtime/shards.py sets it once it holds the Lease);
    # None with one shard.
    shard: int | None = None

    @property
    def sharded(self) -> bool:
        return self.shards > 1

    @property
    def lease_name(self) -> str:
        """The Lease this replica's term is held by: one per shard when sharded."""
        if self.sharded and self.shard is not None:
            return sharding.lease_name(self.leader_election_id, self.shard)
        return self.leader_election_id

    @cached_property
    def globs(self) -> bool:
        """Whether any namespace is a pattern: then the operator watches cluster-wide and
        keeps what matches, so that a namespace created at any moment is followed."""
        return not self.all_namespaces and any(set(ns) & set("*?[]!") for ns in self.namespaces)

    @property
    def clusterwide(self) -> bool:
        return self.all_namespaces or self.globs

    @cached_property
    def _watched(self) -> dict[str, bool]:
        return {}

    def watches(self, namespace: str) -> bool:
        """Whether objects in `namespace` are the operator's to look at: a namespace it
        follows, and when sharded, one that hashes into this replica's shard. Asked for
        every watch event and listed object: each namespace's answer is remembered."""
        known = self._watched.get(namespace)
        if known is None:
            known = self._decide(namespace)
            if len(self._watched) < WATCHED_MEMO:
                self._watched[namespace] = known
        return known

    def _decide(self, namespace: str) -> bool:
        if self.shard is not None and _shard_of(namespace, self.shards) != self.shard:
            return False
        if self.all_namespaces:
            return True
        if not self.globs:
            return namespace in self.namespaces
        excluded = [p[1:] for p in self.namespaces if p.startswith("!")]
        included = [p for p in self.namespaces if not p.startswith("!")] or ["*"]
        return any(fnmatch.fnmatchcase(namespace, p) for p in included) and not any(
            fnmatch.fnmatchcase(namespace, p) for p in excluded
        )

    def scopes(self) -> list[str | None]:
        """What a full listing and the watches cover: each watched namespace (of this
        shard), or all of them (None)."""
        return [None] if self.clusterwide else list(self.namespaces_watched())

    def namespaces_watched(self) -> list[str]:
        """The namespaces named (no patterns) that this replica watches: when sharded, its
        shard's only (at least one: kopf given none would watch the whole cluster;
        whatever it sees there is filtered out)."""
        names = list(dict.fromkeys(self.namespaces))
        return [n for n in names if self.watches(n)] or names[:1]


@lru_cache(maxsize=65536)
def _shard_of(namespace: str, shards: int) -> int:
    return sharding.shard_of(namespace, shards)
