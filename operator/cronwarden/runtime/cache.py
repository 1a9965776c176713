"""The in-memory view of the cluster that every reconcile reads.

It is fed by the watch events kopf delivers (tasks; CronJobs and Jobs selected
on the server by app.kubernetes.io/managed-by=cronwarden), by the answers to
cronwarden's own writes, and by complete listings (start-up and the periodic
audit, runtime/audit.py), so a reconcile sends no GET or LIST.

The rules that keep it true to the cluster (docs/detection.md: the cache):

- Newer wins. An event or answer older than what is held (by resourceVersion,
  compared as etcd's integers) changes nothing.
- A deletion is a marker keyed by uid and the resourceVersion of the deletion.
  It hides only what is older: anything later about the same uid (a watch event,
  a write answer) revives the object.
- A DELETED from a label-filtered watch for an object that still exists, but
  lost our label (a hand edit, a policy engine), is not a deletion: the object
  is kept as it now is, so the reconcile sees the missing label and restores it.
- Every listing of a scope replaces it: what the list does not hold, and the
  cache holds at or before the list's resourceVersion, was deleted.

Jobs are indexed by the uid of the CronJob that controls them: a Job belongs to
a task only through ownerReferences (Job -> CronJob uid -> task uid), never by
label. A finished Job that is deleted (history limit, ttlSecondsAfterFinished)
is kept as *departed* until the task's recorded watermark covers it, so a run
is not lost because its Job lived for less than a moment, and nothing is kept
longer than that.

Bodies are stored slimmed: without managedFields, the last-applied annotation
and (for Jobs) the pod template, which nothing here reads.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cronwarden.core.builder import MANAGED_BY, MANAGED_BY_LABEL
from cronwarden.core.runs import SCHEDULED_TIMESTAMP_ANNOTATION, TRIGGERED_BY_ANNOTATION

Body = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Departed Jobs kept per CronJob at most, a safety bound: the active replica drops
# them as soon as the task's status covers them.
MAX_DEPARTED = 50
# Deletion markers remembered, oldest dropped first, and for this long at most: long
# enough for what was read before a deletion to arrive after it (a watch event in
# flight, an audit page). An object revived by something older still is removed by
# the next audit. Without the time bound, 300 per-minute tasks kept 18,000 markers an
# hour (about 3 MB) until the count bound, which `make soak` showed as a slope.
MAX_TOMBSTONES = 20_000
TOMBSTONE_SECONDS = 300.0
# The resources the cache holds, as the audit names them.
TASKS, CRONJOBS, JOBS = "scheduledtasks", "cronjobs", "jobs"


def key_of(body: Body) -> Key:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def uid_of(body: Body) -> str:
    return str((body.get("metadata") or {}).get("uid") or "")


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


def labelled(body: Body) -> bool:
    """Whether the object carries the label our CronJob and Job watches select on."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY)


def version(obj: Body | Packed | None) -> int | None:
    """The resourceVersion as etcd's integer, or None when absent or opaque."""
    if obj is None:
        return None
    rv = (
        obj.resource_version
        if isinstance(obj, Packed)
        else str((obj.get("metadata") or {}).get("resourceVersion") or "")
    )
    return int(rv) if rv.isdigit() else None


def newer(old: Body | Packed | None, new: Body) -> bool:
    """Whether `new` is at least as recent as `old`. resourceVersions are opaque, but
    etcd's are integers: only then are they compared, to keep a watch event that was
    already in flight from replacing the answer to a later write of ours."""
    a, b = version(old), version(new)
    return a is None or b is None or b >= a


def at_or_before(obj: Body | Packed, list_version: int | None) -> bool:
    """Whether a listing at `list_version` would hold `obj` if it still existed."""
    v = version(obj)
    return v is None or list_version is None or v <= list_version


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
    # Monitor mode: the referenced CronJob and its Jobs (runtime/monitors.py).
    monitored: tuple[Body | None, list[Body]] | None = None
    # Why the API server refuses the pods of these Jobs, by Job uid (runtime/refusals.py).
    refusals: dict[str, str] = field(default_factory=dict)
    # The engine's count of stalls when this was read (runtime/stall.py).
    stalls: int = 0


@dataclass
class Listing:
    """What applying a complete listing changed: keys of tasks to reconcile again, and
    corrections counted by kind (added, updated, deleted)."""

    touched: set[Key] = field(default_factory=set)
    corrections: dict[str, int] = field(default_factory=dict)
    deleted: list[Body] = field(default_factory=list)  # task bodies that vanished

    def count(self, kind: str, n: int = 1) -> None:
        self.corrections[kind] = self.corrections.get(kind, 0) + n

    def merge(self, other: Listing) -> None:
        self.touched |= other.touched
        self.deleted += other.deleted
        for kind, n in other.corrections.items():
            self.count(kind, n)


class Cache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.tasks: dict[Key, Packed] = {}
        # Per namespace, its tasks as (creationTimestamp, name), oldest first.
        self._order: dict[str, list[tuple[str, str]]] = {}
        self.cronjobs: dict[Key, Packed] = {}
        self._cronjob_keys: dict[str, Key] = {}  # CronJob uid -> its key
        self._jobs: dict[str, dict[str, Body]] = {}  # CronJob uid -> Job name -> body
        self._departed: dict[str, dict[str, Body]] = {}  # the same, for deleted finished Jobs
        # uid -> (resourceVersion of its deletion, -1 when opaque; when it was buried),
        # oldest first.
        self._tombstones: dict[str, tuple[int, float]] = {}

    # Deletion markers

    def _bury(self, body: Body, at: int | None = None) -> None:
        uid = uid_of(body)
        if not uid:
            return
        now = self._clock()
        self._tombstones.pop(uid, None)
        self._tombstones[uid] = (at if at is not None else (version(body) or -1), now)
        tombstones, horizon = self._tombstones, now - TOMBSTONE_SECONDS
        while len(tombstones) > MAX_TOMBSTONES or tombstones[next(iter(tombstones))][1] < horizon:
            del tombstones[next(iter(tombstones))]

    def _buried(self, body: Body) -> bool:
        """Whether `body` is older than the deletion of its uid. A newer one revives it:
        the marker is dropped."""
        uid = uid_of(body)
        marker = self._tombstones.get(uid) if uid else None
        if marker is None:
            return False
        deleted_at = marker[0]
        v = version(body)
        if v is not None and deleted_at >= 0 and v > deleted_at:
            del self._tombstones[uid]
            return False
        return True

    # Watch events (and write answers) in. Each returns whether the cache changed.

    def task_event(self, type_: str | None, body: Body) -> bool:
        key = key_of(body)
        if type_ == "DELETED":
            self._bury(body)
            return self._drop_task(key, uid_of(body))
        if self._buried(body) or not newer(old := self.tasks.get(key), body):
            return False
        if old is not None and old.resource_version == _rv(body) and old.uid == uid_of(body):
            return False
        if old is not None and old.uid != uid_of(body):
            self._drop_task(key, old.uid)
            old = None
        self.tasks[key] = pack(body)
        if old is None:
            bisect.insort(self._order.setdefault(key[0], []), _age(body))
        return True

    def _drop_task(self, key: Key, uid: str) -> bool:
        old = self.tasks.get(key)
        if old is None or (uid and old.uid and old.uid != uid):
            return False
        del self.tasks[key]
        order = self._order.get(key[0], [])
        at = bisect.bisect_left(order, old.age)
        if at < len(order) and order[at] == old.age:
            del order[at]
        return True

    def namespaces(self) -> list[str]:
        return [ns for ns, order in self._order.items() if order]

    def namespace_size(self, namespace: str) -> int:
        return len(self._order.get(namespace, []))

    def task_at(self, namespace: str, rank: int) -> Key | None:
        """The key of the namespace's task at `rank` (oldest first), if any."""
        order = self._order.get(namespace, [])
        return (namespace, order[rank][1]) if 0 <= rank < len(order) else None

    def deletes(self, body: Body) -> bool:
        """Whether a DELETED event for `body` deletes it (and not only its label)."""
        return labelled(body)

    def cronjob_event(self, type_: str | None, body: Body) -> bool:
        key = key_of(body)
        uid = uid_of(body)
        if type_ == "DELETED" and self.deletes(body):
            self._bury(body)
            return self._drop_cronjob(key, uid)
        # A DELETED for a label change: the CronJob exists as it now is (unlabelled).
        if self._buried(body) or not newer(old := self.cronjobs.get(key), body):
            return False
        if old is not None and old.resource_version == _rv(body) and old.uid == uid:
            return False
        if old is not None and old.uid != uid:
            self._cronjob_keys.pop(old.uid, None)
        self.cronjobs[key] = pack(body)
        self._cronjob_keys[uid] = key
        return True

    def _drop_cronjob(self, key: Key, uid: str) -> bool:
        if self._cronjob_keys.pop(uid, None) is not None:
            self._departed.pop(uid, None)
        old = self.cronjobs.get(key)
        if old is not None and old.uid == uid:
            del self.cronjobs[key]
            return True
        return False

    def job_event(self, type_: str | None, body: Body) -> bool:
        owner = controller_uid(body)
        if owner is None:
            return False  # not started by a CronJob: never a task's run
        name = str(body["metadata"]["name"])
        live = self._jobs.get(owner, {})
        if type_ == "DELETED" and self.deletes(body):
            self._bury(body)
            return self._drop_job(owner, body)
        if self._buried(body) or not newer(old := live.get(name), body):
            return False
        if old is not None and _rv(old) == _rv(body):
            return False
        self._jobs.setdefault(owner, {})[name] = slim(body, keep_spec=False)
        return True

    def job(self, body: Body) -> Body | None:
        """The Job held under `body`'s controller and name, if any."""
        owner = controller_uid(body)
        name = (body.get("metadata") or {}).get("name")
        return self._jobs.get(owner, {}).get(str(name)) if owner is not None else None

    def _drop_job(self, owner: str, body: Body) -> bool:
        name = str(body["metadata"]["name"])
        live = self._jobs.get(owner, {})
        held = live.pop(name, None)
        if not live:
            self._jobs.pop(owner, None)
        if is_finished(body) and owner in self._cronjob_keys:
            departed = self._departed.setdefault(owner, {})
            departed[name] = departed_form(body)
            if len(departed) > MAX_DEPARTED:
                oldest = min(departed, key=lambda n: finish_order(departed[n]))
                del departed[oldest]
        return held is not None

    # Complete listings in: what is missing was deleted. A listing arrives in pages:
    # each listed object is applied as it comes (`listed`), then what the listing did
    # not hold is swept (`sweep`).

    def listed(self, resource: str, body: Body, out: Listing) -> None:
        """Apply one object of a complete listing of `resource` (TASKS, CRONJOBS, JOBS)."""
        key = key_of(body)
        if resource == TASKS:
            had = key in self.tasks
            if self.task_event(None, body):
                out.touched.add(key)
                out.count("updated" if had else "added")
        elif resource == CRONJOBS:
            had = key in self.cronjobs
            if self.cronjob_event(None, body):
                out.touched.add(key)
                out.count("updated" if had else "added")
        else:
            owner = controller_uid(body)
            had = owner is not None and key[1] in self._jobs.get(owner, {})
            if self.job_event(None, body):
                out.touched.update(self._task_of(owner))
                out.count("updated" if had else "added")

    def sweep(
        self, resource: str, namespace: str | None, seen: set[str], list_version: str
    ) -> Listing:
        """Delete what a complete listing of `resource` in `namespace` (None: all) at
        `list_version` did not hold, but the cache holds at or before it."""
        out = Listing()
        at = _int(list_version)

        def gone(key: Key, obj: Body | Packed, uid: str) -> bool:
            in_scope = namespace is None or key[0] == namespace
            return in_scope and uid not in seen and at_or_before(obj, at)

        if resource == TASKS:
            for key, packed in list(self.tasks.items()):
                if gone(key, packed, packed.uid):
                    body = packed.body()
                    self._bury(body, at)
                    self._drop_task(key, packed.uid)
                    out.deleted.append(body)
                    out.count("deleted")
        elif resource == CRONJOBS:
            for key, packed in list(self.cronjobs.items()):
                if gone(key, packed, packed.uid):
                    self._bury(packed.body(), at)
                    self._drop_cronjob(key, packed.uid)
                    out.touched.add(key)
                    out.count("deleted")
        else:
            for owner, live in list(self._jobs.items()):
                for body in list(live.values()):
                    if gone(key_of(body), body, uid_of(body)):
                        self._bury(body, at)
                        self._drop_job(owner, body)
                        out.touched.update(self._task_of(owner))
                        out.count("deleted")
        return out

    def replace(
        self, resource: str, namespace: str | None, items: Iterable[Body], list_version: str
    ) -> Listing:
        """Apply a complete listing in one call (the audit applies it page by page)."""
        out = Listing()
        seen: set[str] = set()
        for body in items:
            seen.add(uid_of(body))
            self.listed(resource, body, out)
        out.merge(self.sweep(resource, namespace, seen, list_version))
        return out

    def _task_of(self, cronjob_uid: str | None) -> list[Key]:
        key = self._cronjob_keys.get(cronjob_uid or "")
        return [key] if key is not None and key in self.tasks else []

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
        """Drop departed Jobs whose runs the task's status covers."""
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
            "tombstones": len(self._tombstones),
        }


def departed_form(job: Body) -> Body:
    """A deleted finished Job, cut to what recording its run reads (core/runs.run_of)."""
    meta = job.get("metadata") or {}
    status = job.get("status") or {}
    return {
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        }
        | {"annotations": _run_annotations(meta)},
        "status": {
            k: status[k] for k in ("startTime", "completionTime", "conditions") if k in status
        },
    }


def _run_annotations(meta: Body) -> dict[str, str]:
    annotations = meta.get("annotations") or {}
    keep = (SCHEDULED_TIMESTAMP_ANNOTATION, TRIGGERED_BY_ANNOTATION)
    return {k: annotations[k] for k in keep if k in annotations}


def _rv(body: Body) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _age(task: Body) -> tuple[str, str]:
    meta = task.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def finish_order(job: Body) -> str:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond.get("lastTransitionTime") or "")
    return ""
