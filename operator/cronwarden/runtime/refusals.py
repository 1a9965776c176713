"""Why a run's pods are refused: the Job controller's `FailedCreate` Events.

When the API server refuses a Job's pods (Pod Security `enforce`, a ResourceQuota,
a LimitRange, a webhook), the only place that says why is the Warning Event the
Job controller posts on the Job, for example `Error creating: pods "x" is
forbidden: violates PodSecurity "restricted:latest": ...`. One watch of Events in
the watched namespaces, selected on the server by FIELD_SELECTOR, brings exactly
those (Jobs whose pods are admitted cause none), and this map keeps the newest
message per Job uid for core/admission.py to quote.

Bounded by what the API server holds: an entry goes when its Event expires (Events
live about an hour after their last update; the Job controller keeps posting while
it retries), when its Job gets a pod, finishes or is deleted, and beyond
MAX_REFUSALS the oldest goes first. Jobs of ours without a pod are indexed by uid
(bounded the same way) so that an Event that arrives after its Job's watch event
still wakes the task at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from cronwarden.core.runs import pod_count
from cronwarden.runtime.cache import Body, Key, is_finished, uid_of

FIELD_SELECTOR = "reason=FailedCreate,involvedObject.kind=Job"
MAX_REFUSALS = 2_000


@dataclass(frozen=True, slots=True)
class Refusal:
    event_uid: str
    when: str  # the Event's lastTimestamp (RFC 3339, comparable as text)
    message: str


def podless(job: Body) -> bool:
    """An unfinished Job for which the Job controller counts no pod (or no count yet)."""
    return not is_finished(job) and not pod_count(job.get("status") or {})


class Refusals:
    def __init__(self, limit: int = MAX_REFUSALS) -> None:
        self._limit = limit
        self._by_job: dict[str, Refusal] = {}  # Job uid -> newest refusal, oldest first
        self._podless: dict[str, Key] = {}  # uid of a Job of ours without a pod -> its task

    def event(self, type_: str | None, body: Body) -> Key | None:
        """Take a watch event of a FailedCreate Event; returns the task to reconcile when
        the refusal is news about a Job of ours without a pod."""
        regarding = body.get("involvedObject") or {}
        job = str(regarding.get("uid") or "")
        if not job or regarding.get("kind") != "Job" or body.get("reason") != "FailedCreate":
            return None
        held = self._by_job.get(job)
        if type_ == "DELETED":
            if held is not None and held.event_uid == uid_of(body):
                del self._by_job[job]
            return None
        when = str(body.get("lastTimestamp") or body.get("eventTime") or "")
        message = str(body.get("message") or "")
        if not message or (held is not None and held.when > when):
            return None
        self._by_job.pop(job, None)
        self._by_job[job] = Refusal(uid_of(body), when, message)
        if len(self._by_job) > self._limit:
            del self._by_job[next(iter(self._by_job))]
        return self._podless.get(job)

    def job(self, type_: str | None, body: Body, task: Key | None) -> None:
        """Follow a Job of ours: index it while it has no pod, forget its refusal once it
        has one, finished, or is gone."""
        uid = uid_of(body)
        if type_ != "DELETED" and task is not None and podless(body):
            self._podless[uid] = task
            if len(self._podless) > self._limit:  # Jobs deleted while no watch looked
                del self._podless[next(iter(self._podless))]
            return
        self._podless.pop(uid, None)
        self._by_job.pop(uid, None)

    def of(self, jobs: list[Body]) -> dict[str, str]:
        """The refusals of these Jobs, by Job uid (what a reconcile reads)."""
        out = {}
        for job in jobs:
            held = self._by_job.get(uid_of(job))
            if held is not None:
                out[uid_of(job)] = held.message
        return out

    def __len__(self) -> int:
        return len(self._by_job)
