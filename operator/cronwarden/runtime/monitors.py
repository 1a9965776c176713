"""Monitor mode's view: CronJobs that tasks reference (spec.cronJobRef) and the
Jobs they control. They carry no label of ours, so kopf's label-selected
watches do not see them: a watch per namespace that holds monitored tasks
(runtime/monitorwatch.py) lists and watches its CronJobs and Jobs, and feeds
them through here, which keeps only the CronJobs named by tasks and the Jobs
whose controlling ownerReference is one of those CronJobs (the API server cannot
select Jobs by owner), and names the tasks to reconcile: only those that name the
CronJob that changed.

What is kept lives in a Cache of its own (MonitorCache), with the managed
cache's rules: newer wins, a deletion marker hides only what is older, a
finished Job that is deleted stays *departed* until its task's status covers it,
and every listing replaces the namespace's content (`listed`, `sweep`).
"""

from __future__ import annotations

from cronwarden.runtime.cache import CRONJOBS, Body, Cache, Key, Listing, key_of

Monitored = tuple[Body | None, list[Body]]  # the referenced CronJob (None: absent), its Jobs


class MonitorCache(Cache):
    """A Cache of monitored CronJobs (keyed by their own name, not a task's) and their
    Jobs, watched without a label selector: a DELETED is always a deletion, and a
    change to a Job touches its CronJob's key."""

    def deletes(self, body: Body) -> bool:
        return True

    def _task_of(self, cronjob_uid: str | None) -> list[Key]:
        key = self._cronjob_keys.get(cronjob_uid or "")
        return [key] if key is not None else []

    def evict(self, key: Key) -> None:
        """Forget a CronJob that no task names any more, and every Job held for a
        CronJob of that name, as if never seen: no deletion marker, so a later
        listing takes them in again if a task names the CronJob again."""
        packed = self.cronjobs.pop(key, None)
        if packed is not None:
            self._cronjob_keys.pop(packed.uid, None)
        for owner, live in list(self._jobs.items()):
            if any(cronjob_of(job) == key for job in live.values()):
                del self._jobs[owner]
                self._departed.pop(owner, None)
        if packed is not None:
            self._departed.pop(packed.uid, None)


class Monitors:
    def __init__(self) -> None:
        self.cache = MonitorCache()
        self._refs: dict[Key, str] = {}  # task -> the CronJob it references
        self._named: dict[Key, set[Key]] = {}  # (namespace, CronJob) -> tasks naming it
        self._listed: set[Key] = set()  # (namespace, CronJob) read by a complete listing

    # Tasks

    def track(self, key: Key, ref: str | None) -> bool:
        """Record which CronJob a task references (None: not monitored, or deleted).
        True when it is a CronJob that no task of the namespace named before: its
        namespace must be listed again to read it and its Jobs."""
        old = self._refs.get(key)
        if old == ref:
            return False
        if old is not None:
            del self._refs[key]
            self._unname(key, (key[0], old))
        if ref is None:
            return False
        self._refs[key] = ref
        tasks = self._named.setdefault((key[0], ref), set())
        tasks.add(key)
        return len(tasks) == 1

    def forget(self, key: Key) -> None:
        self.track(key, None)

    def _unname(self, key: Key, target: Key) -> None:
        tasks = self._named.get(target, set())
        tasks.discard(key)
        if not tasks:
            self._named.pop(target, None)
            self._listed.discard(target)
            self.cache.evict(target)

    def namespaces(self) -> set[str]:
        """The namespaces that hold monitored tasks: each needs a watch."""
        return {ns for ns, _ in self._named}

    def wanted(self, namespace: str) -> set[str]:
        """The CronJobs that tasks of `namespace` name."""
        return {name for ns, name in self._named if ns == namespace}

    def view(self, key: Key) -> Monitored | None:
        """What the task's reconcile reads; None until a listing read its CronJob."""
        ref = self._refs.get(key)
        if ref is None or (key[0], ref) not in self._listed:
            return None
        view = self.cache.view((key[0], ref))
        return view.cronjob, view.jobs

    # The watch: each returns the tasks to reconcile

    def event(self, resource: str, type_: str, body: Body) -> set[Key]:
        """A watch event of `resource` (CRONJOBS or JOBS) in a watched namespace."""
        target = self._target(resource, body)
        if target is None:
            return set()
        if resource == CRONJOBS:
            changed = self.cache.cronjob_event(type_, body)
        else:
            changed = self.cache.job_event(type_, body)
        return set(self._named.get(target, ())) if changed else set()

    def listed(self, resource: str, body: Body, out: Listing) -> None:
        """One object of a complete listing of `resource` in a namespace."""
        if self._target(resource, body) is not None:
            self.cache.listed(resource, body, out)

    def sweep(self, resource: str, namespace: str, seen: set[str], version: str) -> Listing:
        """The end of that listing: what it did not hold (`seen`: the uids of every
        object listed, kept or not) was deleted."""
        return self.cache.sweep(resource, namespace, seen, version)

    def synced(self, namespace: str, names: set[str], listing: Listing) -> set[Key]:
        """Both listings of `namespace` are complete and read the CronJobs `names` (the
        ones wanted when they started): the tasks naming those can be judged now.
        Returns them (the first time) and the tasks whose inputs the listing changed."""
        fresh = {(namespace, n) for n in names if (namespace, n) in self._named} - self._listed
        self._listed |= fresh
        return self.tasks_of(fresh | listing.touched)

    def tasks_of(self, cronjobs: set[Key]) -> set[Key]:
        return {task for target in cronjobs for task in self._named.get(target, ())}

    def _target(self, resource: str, body: Body) -> Key | None:
        """The named CronJob `body` is (or whose Job it is), or None: not kept."""
        target = key_of(body) if resource == CRONJOBS else cronjob_of(body)
        return target if target in self._named else None


def cronjob_of(job: Body) -> Key | None:
    """(namespace, name) of the CronJob that controls `job`, by its ownerReference."""
    meta = job.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "CronJob":
            return (str(meta.get("namespace") or ""), str(ref.get("name") or ""))
    return None


def reference(task: Body) -> str | None:
    """The name in spec.cronJobRef, if the task monitors a CronJob."""
    ref = (task.get("spec") or {}).get("cronJobRef")
    return str(ref.get("name")) if isinstance(ref, dict) and ref.get("name") else None
