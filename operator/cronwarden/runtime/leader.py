"""Leader election with a coordination.k8s.io Lease, as client-go does it.

Of several replicas, the one holding the Lease is active: only it runs workers,
timers and the resync, writes status, CronJobs and Events, and exports task
metrics. The others watch (their caches stay warm) and take over when the
Lease is not renewed for its duration. Expiry is judged by this replica's own
monotonic clock from when it last saw the Lease change, never by comparing
clocks across machines.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cronwarden.runtime.kube import ApiError, Kube

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    duration: float = 15.0  # how long a Lease holds without renewal
    renew_deadline: float = 10.0  # the leader steps down if it cannot renew for this long
    retry_period: float = 2.0  # how often to try to acquire or renew


def identity(pod_name: str) -> str:
    """The pod's name plus a random suffix: a restarted pod is a new candidate."""
    return f"{pod_name}_{secrets.token_hex(4)}"


def micro_time(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        config: LeaseConfig,
        on_start: Callable[[], Awaitable[None]],
        on_stop: Callable[[], Awaitable[None]],
    ) -> None:
        self.kube = kube
        self.config = config
        self.on_start = on_start
        self.on_stop = on_stop
        self.leading = False
        self._observed: tuple[Any, ...] | None = None  # (holder, renewTime, resourceVersion)
        self._observed_at = 0.0  # monotonic time of the last change seen
        self._renewed_at = 0.0

    def active(self) -> bool:
        """Leading, with a renewal recent enough that no other replica can have taken
        over: checked before every write (a replica frozen past its lease writes nothing)."""
        return self.leading and time.monotonic() - self._renewed_at < self.config.renew_deadline

    async def run(self) -> None:
        """Acquire and renew until cancelled; step down when renewal fails."""
        try:
            while True:
                started = time.monotonic()
                try:
                    holder = await asyncio.to_thread(self.try_acquire_or_renew)
                except ApiError as err:
                    log.warning("leader election: lease %s: %s", self._where(), err)
                    holder = None
                if holder == self.config.identity:
                    self._renewed_at = started
                    if not self.leading:
                        self.leading = True
                        log.info("became the leader (lease %s)", self._where())
                        await self.on_start()
                elif self.leading and (
                    holder is not None or started - self._renewed_at > self.config.renew_deadline
                ):
                    await self._step_down(
                        f"the lease is held by {holder}"
                        if holder
                        else "could not renew the lease in time"
                    )
                await asyncio.sleep(self.config.retry_period)
        finally:
            if self.leading:
                await self._step_down("shutting down")
                await asyncio.to_thread(self._release)

    async def _step_down(self, why: str) -> None:
        self.leading = False
        log.warning("stopped leading (%s); standing by", why)
        await self.on_stop()

    def _where(self) -> str:
        return f"{self.config.namespace}/{self.config.name}"

    def try_acquire_or_renew(self) -> str | None:
        """One round: returns the holder afterwards (this replica's identity when it holds
        the Lease), or None when that is unknown (a lost race)."""
        cfg = self.config
        now = datetime.now(UTC)
        lease = self.kube.get_lease(cfg.namespace, cfg.name)
        if lease is None:
            self.kube.create_lease(self._lease(None, now, transitions=0, acquired=now))
            return cfg.identity
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), lease["metadata"].get("resourceVersion"))
        mono = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, mono
        duration = float(spec.get("leaseDurationSeconds") or cfg.duration)
        if holder and holder != cfg.identity and mono < self._observed_at + duration:
            return str(holder)  # someone else holds a live lease
        transitions = int(spec.get("leaseTransitions") or 0)
        acquired = spec.get("acquireTime")
        if holder != cfg.identity:
            transitions, acquired = transitions + 1, micro_time(now)
        try:
            updated = self.kube.update_lease(self._lease(lease, now, transitions, acquired))
        except ApiError as err:
            if err.status == 409:
                return None  # another replica wrote first
            raise
        self._observed = (cfg.identity, updated["spec"].get("renewTime"), None)
        return cfg.identity

    def _lease(
        self, lease: dict[str, Any] | None, now: datetime, transitions: int, acquired: Any
    ) -> dict[str, Any]:
        cfg = self.config
        metadata: dict[str, Any] = {"name": cfg.name, "namespace": cfg.namespace}
        if lease is not None:
            metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": cfg.identity,
                "leaseDurationSeconds": int(cfg.duration),
                "acquireTime": acquired if isinstance(acquired, str) else micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": transitions,
            },
        }

    def _release(self) -> None:
        """Give the Lease up on shutdown, so a standby takes over at once."""
        try:
            lease = self.kube.get_lease(self.config.namespace, self.config.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != (
                self.config.identity
            ):
                return
            lease["spec"]["holderIdentity"] = None
            lease["spec"]["leaseDurationSeconds"] = 1
            self.kube.update_lease(lease)
            log.info("released the lease %s", self._where())
        except ApiError as err:
            log.warning("could not release the lease %s: %s", self._where(), err)
