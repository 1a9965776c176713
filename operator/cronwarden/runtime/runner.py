"""Start kopf with the handlers in cronwarden.runtime.handlers."""

from __future__ import annotations

import asyncio
import logging
import os

import kopf

from cronwarden.runtime import allocator, memtrace
from cronwarden.settings import Settings

log = logging.getLogger(__name__)


def run(settings: Settings) -> int:
    allocator.configure()  # freed response buffers go back to the system (allocator.py)
    memtrace.install()  # only with CRONWARDEN_TRACEMALLOC=DIR (make soak --tracemalloc)
    if settings.kubeconfig:
        # kopf logs in through the kubernetes client, which reads KUBECONFIG.
        os.environ["KUBECONFIG"] = settings.kubeconfig
    kopf.configure(
        verbose=settings.verbose,
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    # Quiet the per-request chatter of the HTTP libraries unless asked for.
    logging.getLogger("urllib3").setLevel(logging.DEBUG if settings.verbose else logging.WARNING)
    # kopf logs every watch event's handler at INFO; the controller logs what matters.
    logging.getLogger("kopf.objects").setLevel(
        logging.DEBUG if settings.verbose else logging.WARNING
    )
    import cronwarden.runtime.handlers  # noqa: F401  (registers the handlers)

    liveness = (
        f"http://{settings.bind_address}:{settings.liveness_port}/healthz"
        if settings.liveness_port
        else None
    )
    memo = kopf.Memo(settings=settings)
    if settings.sharded:
        settings = take_shard(settings, memo)
    kopf.run(
        # One active replica is decided by our own Lease (runtime/leader.py), which stops
        # workers, timers and metrics too; kopf's peering would pause only its handlers.
        standalone=True,
        # Namespace patterns are followed with cluster-wide watches that the engine
        # filters: kopf's per-namespace watches can miss a namespace created while it
        # lists namespaces (settings.Settings.globs).
        clusterwide=settings.clusterwide,
        namespaces=[] if settings.clusterwide else settings.namespaces_watched(),
        liveness_endpoint=liveness,
        memo=memo,
        stop_flag=memo.get("stop_flag"),
    )
    if settings.shard is not None and memo.stop_flag.is_set():  # not set on shutdown
        log.warning(
            "no longer holding shard %d: exiting, to start again as a standby", settings.shard
        )
    return 0


def take_shard(settings: Settings, memo: kopf.Memo) -> Settings:
    """Wait as a standby until this replica holds a shard (runtime/shards.py), serving
    /metrics and /healthz meanwhile; the operator then starts for that shard."""
    from cronwarden.runtime import shards
    from cronwarden.runtime.kube import Kube, load_api_client
    from cronwarden.runtime.metrics import TaskMetrics, serve

    metrics = TaskMetrics(settings.shards)
    if settings.metrics_port:
        serve(metrics, settings.bind_address, settings.metrics_port)
    standby = (
        shards.Standby(settings.bind_address, settings.liveness_port)
        if settings.liveness_port
        else None
    )
    try:
        shard = shards.claim(settings, Kube(load_api_client(settings.kubeconfig, connections=2)))
    finally:
        if standby is not None:
            standby.close()
    assert shard is not None
    metrics.shard = shard
    settings = shards.with_shard(settings, shard)
    # An asyncio.Event: kopf would wait for a threading.Event in an executor thread,
    # which then holds up the interpreter's exit until the flag is set.
    memo.settings, memo.metrics, memo.stop_flag = settings, metrics, asyncio.Event()
    return settings
