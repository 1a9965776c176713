"""Monitor mode's reads: CronJobs that tasks reference (spec.cronJobRef) and the
Jobs they control carry no label of ours, so the label-selected watches do not
see them. One shared poll per namespace that holds monitored tasks lists its
CronJobs and Jobs (from the API server's watch cache) every MONITOR_POLL, keeps
only the referenced CronJobs and their Jobs, and names the tasks whose inputs
changed: two requests per namespace per poll, whatever the number of tasks.
"""

from __future__ import annotations

from datetime import timedelta

from cronwarden.runtime.cache import Body, Key, controller_uid, slim, uid_of

# How often a namespace with monitored tasks is read.
MONITOR_POLL = timedelta(seconds=15)

Monitored = tuple[Body | None, list[Body]]  # the referenced CronJob (None: absent), its Jobs


class Monitors:
    def __init__(self) -> None:
        self._refs: dict[Key, str] = {}  # task -> the CronJob it references
        self._polled: set[str] = set()  # namespaces read at least once
        self._seen: dict[tuple[str, str], Monitored] = {}  # (namespace, CronJob) -> reads
        self._fingerprints: dict[tuple[str, str], tuple[object, ...]] = {}

    def track(self, key: Key, ref: str | None) -> bool:
        """Record which CronJob a task references (None: not monitored); true when a
        task starts being monitored in a namespace not read yet."""
        if ref is None:
            self._refs.pop(key, None)
            return False
        self._refs[key] = ref
        return key[0] not in self._polled

    def namespaces(self) -> list[str]:
        return sorted({ns for ns, _ in self._refs})

    def polled(self, namespace: str) -> bool:
        return namespace in self._polled

    def view(self, key: Key) -> Monitored | None:
        """What the task's reconcile reads; None until its namespace was read."""
        ref = self._refs.get(key)
        if ref is None or key[0] not in self._polled:
            return None
        return self._seen.get((key[0], ref), (None, []))

    def apply(self, namespace: str, cronjobs: list[Body], jobs: list[Body]) -> set[Key]:
        """Take one read of a namespace; returns the monitored tasks whose CronJob or
        Jobs changed since the last read (all of them the first time)."""
        wanted = {ref for (ns, _), ref in self._refs.items() if ns == namespace}
        found = {
            (cj.get("metadata") or {}).get("name"): cj
            for cj in cronjobs
            if (cj.get("metadata") or {}).get("name") in wanted
        }
        by_owner: dict[str, list[Body]] = {}
        uids = {uid_of(cj) for cj in found.values()}
        for job in jobs:
            owner = controller_uid(job)
            if owner in uids:
                by_owner.setdefault(owner, []).append(slim(job, keep_spec=False))
        first = namespace not in self._polled
        self._polled.add(namespace)
        changed: set[str] = set()
        for ref in wanted:
            cronjob = found.get(ref)
            own = by_owner.get(uid_of(cronjob), []) if cronjob is not None else []
            fingerprint = (
                _rv(cronjob),
                tuple(sorted((j["metadata"]["name"], _rv(j)) for j in own)),
            )
            if first or self._fingerprints.get((namespace, ref)) != fingerprint:
                changed.add(ref)
            self._fingerprints[(namespace, ref)] = fingerprint
            self._seen[(namespace, ref)] = (slim(cronjob) if cronjob else None, own)
        for gone in [k for k in self._seen if k[0] == namespace and k[1] not in wanted]:
            del self._seen[gone]
            self._fingerprints.pop(gone, None)
        return {key for key, ref in self._refs.items() if key[0] == namespace and ref in changed}

    def forget(self, key: Key) -> None:
        self._refs.pop(key, None)
        if not any(ns == key[0] for ns, _ in self._refs):
            self._polled.discard(key[0])
            for gone in [k for k in self._seen if k[0] == key[0]]:
                del self._seen[gone]
                self._fingerprints.pop(gone, None)


def reference(task: Body) -> str | None:
    """The name in spec.cronJobRef, if the task monitors a CronJob."""
    ref = (task.get("spec") or {}).get("cronJobRef")
    return str(ref.get("name")) if isinstance(ref, dict) and ref.get("name") else None


def _rv(body: Body | None) -> str:
    return str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")
