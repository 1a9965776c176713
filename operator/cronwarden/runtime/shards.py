"""Taking a shard (--shards N): a Lease per shard, held by the first free replica.

Before it watches anything, a replica tries the Leases `<id>-shard-0` .. `-<N-1>` in
turn, every retry period, until it holds one (runtime/leader.py judges expiry by
this replica's own clock, as for the single Lease). Until then it is a standby: it
serves /healthz and /metrics (every cronwarden_operator_shard_active 0) and holds no
cache at all. Once it holds shard i, the operator starts with that shard fixed: its
watches and audit lists carry the API server's shard selector where the
ShardedListAndWatch gate is on, and Settings.watches drops every object of another
shard in any case. A replica that loses its shard's Lease stops writing at once and
exits, to start again as a standby (as kube-controller-manager does), since its
watches are the old shard's. docs/sharding.md argues the design.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cronwarden.api import models
from cronwarden.core import sharding
from cronwarden.runtime.kube import CRONJOBS, EVENTS, JOBS, TASKS, ApiError, Kube
from cronwarden.runtime.leader import LeaderElector, LeaseConfig
from cronwarden.settings import Settings

log = logging.getLogger(__name__)

# What a shard selects: each watched resource as kopf names it, and its list path.
RESOURCES = (
    ((models.GROUP, models.PLURAL), TASKS),
    (("batch", "cronjobs"), CRONJOBS),
    (("batch", "jobs"), JOBS),
    (("v1", "events"), EVENTS),
)


async def _nothing() -> None:
    return None


def claim(settings: Settings, kube: Kube, stop: threading.Event | None = None) -> int | None:
    """Block until this replica holds a shard's Lease; returns the shard (None when
    `stop` was set first)."""
    electors = [
        LeaderElector(
            kube,
            LeaseConfig(
                settings.leader_election_namespace,
                sharding.lease_name(settings.leader_election_id, shard),
                settings.identity,
            ),
            _nothing,
            _nothing,
        )
        for shard in range(settings.shards)
    ]
    retry = electors[0].config.retry_period
    announced = False
    while stop is None or not stop.is_set():
        for shard, elector in enumerate(electors):
            try:
                holder = elector.try_acquire_or_renew()
            except ApiError as err:
                log.warning("shard %d: lease %s: %s", shard, elector.config.name, err)
                continue
            if holder == settings.identity:
                log.info(
                    "took shard %d of %d (lease %s)", shard, settings.shards, elector.config.name
                )
                return shard
        if not announced:
            log.info("every shard of %d is held: standing by", settings.shards)
            announced = True
        if stop is None:
            time.sleep(retry)
        else:
            stop.wait(retry)
    return None


def selectors(settings: Settings, kube: Kube) -> dict[tuple[str, str], str]:
    """The server-side shard selector of each watched resource, when the API server
    applies them (its ShardedListAndWatch gate is on), else none: the operator then
    filters alone (Settings.watches, which filters in any case).

    The gate is told by a list of CronJobs, which echoes the selector in
    metadata.shardInfo. Lists of custom resources are filtered by the same code
    (the generic registry store) but do not echo it in 1.36 (UnstructuredList has no
    shardInfo), so a ScheduledTask list cannot tell."""
    assert settings.shard is not None
    selector = sharding.selector(settings.shard, settings.shards)
    applied = False
    if settings.shard_filter == "auto":
        try:
            applied = kube.selects_shards(CRONJOBS, settings.scopes()[0], selector)
        except ApiError as err:
            log.warning("could not tell whether the API server selects shards: %s", err)
    out = {resource: selector for resource, _ in RESOURCES} if applied else {}
    log.info(
        "shard %d: the API server selects %s; the operator filters every object too",
        settings.shard,
        "/".join(r[1] for r in out) or "nothing",
    )
    return out


def list_paths(chosen: dict[tuple[str, str], str]) -> dict[str, str]:
    """The same selectors by list path, for the audit's lists (Kube.shard_selectors)."""
    return {template: chosen[resource] for resource, template in RESOURCES if resource in chosen}


def with_shard(settings: Settings, shard: int) -> Settings:
    return dataclasses.replace(settings, shard=shard)


class Standby:
    """Answers /healthz on the liveness port while the replica waits for a shard
    (kopf serves it once the operator starts)."""

    def __init__(self, address: str, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/healthz":
                    self.send_error(404)
                    return
                body = b'{"standby": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="standby", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
