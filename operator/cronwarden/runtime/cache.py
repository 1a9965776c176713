"""The in-memory view of the cluster that every reconcile reads.

It is fed only by the watch events kopf already delivers (tasks; CronJobs and
Jobs selected on the server by app.kubernetes.io/managed-by=cronwarden) and by
the responses to cronwarden's own writes, so a reconcile sends no GET or LIST.

Jobs are indexed by the uid of the CronJob that controls them: a Job belongs to
a task only through ownerReferences (Job -> CronJob uid -> task uid), never by
label. A finished Job that is deleted (history limit, ttlSecondsAfterFinished)
is kept as *departed* until a reconcile has recorded its run, so a run is not
lost because its Job lived for less than a moment.

Bodies are stored slimmed: without managedFields, the last-applied annotation
and (for Jobs) the pod template, which nothing here reads.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from typing import Any

Body = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Departed Jobs kept per CronJob at most (a reconcile normally records them at once).
MAX_DEPARTED = 200
# uids of deleted objects remembered, so that a list answer older than the deletion
# cannot bring them back.
MAX_TOMBSTONES = 20_000


def key_of(body: Body) -> Key:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def controller_uid(body: Body) -> str | None:
    """The uid of the object's controller (the ownerReference with controller: true)."""
    for ref in (body.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def is_finished(job: Body) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


@dataclass(frozen=True, slots=True)
class Packed:
    """A task or CronJob as the cache holds it: the slimmed body as compact JSON (a
    third of the memory of the parsed dict), plus what the indexes need. A reconcile
    unpacks the two it reads, which costs tens of microseconds."""

    uid: str
    resource_version: str
    age: tuple[str, str]  # (creationTimestamp, name)
    data: bytes

    def body(self) -> Body:
        loaded: Body = json.loads(self.data)
        return loaded


def pack(body: Body) -> Packed:
    meta = body.get("metadata") or {}
    return Packed(
        str(meta.get("uid") or ""),
        str(meta.get("resourceVersion") or ""),
        _age(body),
        json.dumps(slim(body), separators=(",", ":")).encode(),
    )


def _version(obj: Body | Packed) -> str:
    if isinstance(obj, Packed):
        return obj.resource_version
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def newer(old: Body | Packed | None, new: Body) -> bool:
    """Whether `new` is at least as recent as `old`. resourceVersions are opaque, but
    etcd's are integers: only then are they compared, to keep a watch event that was
    already in flight from replacing the answer to a later write of ours."""
    if old is None:
        return True
    a, b = _version(old), _version(new)
    if a.isdigit() and b.isdigit():
        return int(b) >= int(a)
    return True


def slim(body: Body, *, keep_spec: bool = True) -> Body:
    meta = dict(body.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    out = {k: v for k, v in body.items() if k != "metadata" and (keep_spec or k != "spec")}
    out["metadata"] = meta
    return out


@dataclass
class View:
    """What one reconcile of one task reads, taken from the cache at one moment."""

    key: Key
    task: Body | None
    cronjob: Body | None
    jobs: list[Body] = field(default_factory=list)
    rank: int = 0  # position among the namespace's tasks, oldest first


class Cache:
    def __init__(self) -> None:
        self.tasks: dict[Key, Packed] = {}
        # Per namespace, its tasks as (creationTimestamp, name), oldest first.
        self._order: dict[str, list[tuple[str, str]]] = {}
        self.cronjobs: dict[Key, Packed] = {}
        self._cronjob_keys: dict[str, Key] = {}  # CronJob uid -> its key
        self._jobs: dict[str, dict[str, Body]] = {}  # CronJob uid -> Job name -> body
        self._departed: dict[str, dict[str, Body]] = {}  # the same, for deleted finished Jobs
        self._tombstones: dict[str, None] = {}  # uids of deleted objects, oldest first

    def _buried(self, type_: str | None, body: Body) -> bool:
        """Record a deletion; true for any other event about an object already deleted."""
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if not uid:
            return False
        if type_ == "DELETED":
            self._tombstones[uid] = None
            if len(self._tombstones) > MAX_TOMBSTONES:
                del self._tombstones[next(iter(self._tombstones))]
            return False
        return uid in self._tombstones

    # Watch events (and write responses) in

    def task_event(self, type_: str | None, body: Body) -> Key:
        key = key_of(body)
        if self._buried(type_, body):
            return key
        if type_ == "DELETED":
            old = self.tasks.pop(key, None)
            if old is not None:
                order = self._order.get(key[0], [])
                entry = old.age
                at = bisect.bisect_left(order, entry)
                if at < len(order) and order[at] == entry:
                    del order[at]
        elif newer(old := self.tasks.get(key), body):
            self.tasks[key] = pack(body)
            if old is None:
                bisect.insort(self._order.setdefault(key[0], []), _age(body))
        return key

    def namespaces(self) -> list[str]:
        return [ns for ns, order in self._order.items() if order]

    def namespace_size(self, namespace: str) -> int:
        return len(self._order.get(namespace, []))

    def task_at(self, namespace: str, rank: int) -> Key | None:
        """The key of the namespace's task at `rank` (oldest first), if any."""
        order = self._order.get(namespace, [])
        return (namespace, order[rank][1]) if 0 <= rank < len(order) else None

    def cronjob_event(self, type_: str | None, body: Body) -> None:
        key = key_of(body)
        if self._buried(type_, body):
            return
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if type_ == "DELETED":
            if self._cronjob_keys.pop(uid, None) is not None:
                self._departed.pop(uid, None)
            old = self.cronjobs.get(key)
            if old is not None and old.uid == uid:
                del self.cronjobs[key]
        elif newer(self.cronjobs.get(key), body):
            old = self.cronjobs.get(key)
            if old is not None and old.uid != uid:
                self._cronjob_keys.pop(old.uid, None)
            self.cronjobs[key] = pack(body)
            self._cronjob_keys[uid] = key

    def job_event(self, type_: str | None, body: Body) -> None:
        owner = controller_uid(body)
        if owner is None or self._buried(type_, body):
            return  # not started by a CronJob (never a task's run), or already deleted
        name = str(body["metadata"]["name"])
        live = self._jobs.setdefault(owner, {})
        if type_ == "DELETED":
            live.pop(name, None)
            if not live:
                del self._jobs[owner]
            if is_finished(body) and owner in self._cronjob_keys:
                departed = self._departed.setdefault(owner, {})
                departed[name] = slim(body, keep_spec=False)
                if len(departed) > MAX_DEPARTED:
                    oldest = min(departed, key=lambda n: finish_order(departed[n]))
                    del departed[oldest]
        elif newer(live.get(name), body):
            live[name] = slim(body, keep_spec=False)

    # Reads

    def view(self, key: Key) -> View:
        packed = self.cronjobs.get(key)
        jobs: list[Body] = []
        if packed is not None:
            uid = packed.uid
            departed = self._departed.get(uid, {})
            live = self._jobs.get(uid, {})
            jobs = [*live.values(), *(b for n, b in departed.items() if n not in live)]
        task = self.tasks.get(key)
        rank = 0
        if task is not None:
            rank = bisect.bisect_left(self._order.get(key[0], []), task.age)
        return View(
            key,
            task.body() if task is not None else None,
            packed.body() if packed is not None else None,
            jobs,
            rank,
        )

    def forget_departed(self, cronjob_uid: str, names: set[str]) -> None:
        """Drop departed Jobs whose runs are recorded in the task's status."""
        departed = self._departed.get(cronjob_uid)
        if departed:
            for name in names:
                departed.pop(name, None)
            if not departed:
                del self._departed[cronjob_uid]

    def counts(self) -> dict[str, int]:
        return {
            "tasks": len(self.tasks),
            "cronjobs": len(self.cronjobs),
            "jobs": sum(len(j) for j in self._jobs.values()),
            "departed": sum(len(j) for j in self._departed.values()),
        }


def _age(task: Body) -> tuple[str, str]:
    meta = task.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def finish_order(job: Body) -> str:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond.get("lastTransitionTime") or "")
    return ""
