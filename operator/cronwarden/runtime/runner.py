"""Start kopf with the handlers in cronwarden.runtime.handlers."""

from __future__ import annotations

import logging
import os

import kopf

from cronwarden.runtime import allocator, memtrace
from cronwarden.settings import Settings


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
    kopf.run(
        # One active replica is decided by our own Lease (runtime/leader.py), which stops
        # workers, timers and metrics too; kopf's peering would pause only its handlers.
        standalone=True,
        # Namespace patterns are followed with cluster-wide watches that the engine
        # filters: kopf's per-namespace watches can miss a namespace created while it
        # lists namespaces (settings.Settings.globs).
        clusterwide=settings.clusterwide,
        namespaces=[] if settings.clusterwide else settings.namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(settings=settings),
    )
    return 0
