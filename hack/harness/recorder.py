#!/usr/bin/env python3
"""The chaos recorder: what the cluster did, seen on its own, never through cronwarden.

A process of its own (the harness starts it; `make chaos` reads its log), with its
own watches on Jobs, CronJobs, Pods, Events, ScheduledTasks and Leases in the given
namespaces, writing one JSON object per line with a sub-second `t` (Unix time):

- `slot`: every slot each CronJob should fire, computed here from its schedule
  with croniter (UTC only: croniter and Kubernetes differ on daylight-saving days,
  so a CronJob in another zone is logged as `slot_unsupported`), once the slot has
  passed, for slots after the CronJob's creation;
- `job_created`, `job_started`, `job_finished` (result, completion time),
  `job_deleted`; `cronjob_added`, `cronjob_changed`, `cronjob_status`,
  `cronjob_deleted`; `pod_phase`; `event`; `task` (a status summary whenever it
  changes) and `task_deleted`;
- `lease`: a Lease's holder, whenever it (or its acquireTime) changes; its
  renewals are not logged;
- `watch_error` when one of its own watches breaks, and `watch_gap` (from, to,
  relisted) when it is back: the recorder survives the faults it records. A
  watch that cannot resume lists again with replace semantics: what the list
  lacks is logged deleted (`via: relist`).

It imports nothing from cronwarden, nor from the rest of the harness: only the
standard library, the kubernetes client and croniter (tests/unit/test_harness.py
checks it). Stop it with SIGTERM.
"""

from __future__ import annotations

import sys
from pathlib import Path

# No cronwarden code on the import path (the dev venv's editable install adds it).
sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "cronwarden").is_dir()]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for its sibling, recorded.py

import argparse  # noqa: E402 - after the path is cleaned of cronwarden
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

from croniter import croniter  # noqa: E402
from kubernetes import client, config, watch  # noqa: E402
from recorded import SUMMARIES, Summary, parse_time  # noqa: E402

UTC_ZONES = (None, "", "UTC", "Etc/UTC")
GROUP, TASKS = "cronwarden.io", "scheduledtasks"


class Log:
    """JSON lines, one per record, flushed at once (the harness reads while it runs)."""

    def __init__(self, path: Path) -> None:
        self.out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
        self.lock = threading.Lock()

    def __call__(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"t": round(time.time(), 3), "kind": kind, **fields}, default=str)
        with self.lock:
            self.out.write(line + "\n")


CRONJOB_SPEC = ("schedule", "time_zone", "suspend", "policy", "managed_by", "task_uid")
CRONJOB_STATUS = ("last_schedule", "last_success", "active")


class Recorder:
    def __init__(self, log: Log, api: client.ApiClient, namespaces: list[str]) -> None:
        self.log = log
        self.api = api
        self.namespaces = namespaces
        self.lock = threading.Lock()
        self.held: dict[tuple[str, str], dict[str, Summary]] = {}  # (resource, ns) -> uid -> s
        self.slots_done: dict[str, float] = {}  # cronjob uid -> last slot logged (epoch)
        self.stopping = threading.Event()
        self.streams: list[Stream] = []

    # What happened to one object

    def changed(self, resource: str, ns: str, type_: str, obj: dict[str, Any], via: str) -> None:
        uid = obj["metadata"]["uid"]
        with self.lock:
            held = self.held.setdefault((resource, ns), {})
            before = held.get(uid)
            if type_ == "DELETED":
                held.pop(uid, None)
                after = None
            else:
                after = held[uid] = SUMMARIES[resource](obj)
            self.emit(resource, ns, before, after, via)

    def replace(self, resource: str, ns: str, items: list[dict[str, Any]]) -> None:
        """A complete list: what it lacks was deleted meanwhile."""
        listed = {i["metadata"]["uid"] for i in items}
        with self.lock:
            held = self.held.setdefault((resource, ns), {})
            for uid in [u for u in held if u not in listed]:
                self.emit(resource, ns, held.pop(uid), None, "relist")
        for item in items:
            self.changed(resource, ns, "ADDED", item, "list")

    def emit(
        self, resource: str, ns: str, before: Summary | None, after: Summary | None, via: str
    ) -> None:
        if resource == "jobs":
            self.emit_job(ns, before, after, via)
        elif resource == "cronjobs":
            self.emit_cronjob(ns, before, after, via)
        elif resource == "scheduledtasks":
            if after is None and before is not None:
                self.log("task_deleted", ns=ns, task=before["task"], uid=before["uid"], via=via)
            elif after is not None and after != before:
                self.log("task", ns=ns, via=via, **after)
        elif resource == "pods":
            if after is not None and (before is None or before["phase"] != after["phase"]):
                self.log("pod_phase", ns=ns, via=via, **after)
        elif resource == "events" and after is not None and after != before:
            self.log("event", ns=ns, via=via, **after)
        elif resource == "leases" and after is not None and after != before:
            self.log("lease", ns=ns, via=via, **after)

    def emit_job(self, ns: str, before: Summary | None, after: Summary | None, via: str) -> None:
        if after is None:
            if before is not None:
                self.log("job_deleted", ns=ns, via=via, **before)
            return
        if before is None:
            self.log("job_created", ns=ns, via=via, **after)
        if after["start"] and not (before or {}).get("start"):
            self.log("job_started", ns=ns, via=via, **after)
        if after["result"] and not (before or {}).get("result"):
            self.log("job_finished", ns=ns, via=via, **after)

    def emit_cronjob(
        self, ns: str, before: Summary | None, after: Summary | None, via: str
    ) -> None:
        if after is None:
            if before is not None:
                self.log("cronjob_deleted", ns=ns, via=via, **before)
            return
        if before is None:
            self.log("cronjob_added", ns=ns, via=via, **after)
            return
        if any(before[k] != after[k] for k in CRONJOB_SPEC):
            self.log("cronjob_changed", ns=ns, via=via, **after)
        if any(before[k] != after[k] for k in CRONJOB_STATUS):
            self.log("cronjob_status", ns=ns, via=via, **after)

    # Slots

    def tick_slots(self, now: float) -> None:
        """Log every slot that has passed since the last tick, for each live CronJob."""
        with self.lock:
            cronjobs = [
                (ns, s)
                for (res, ns), held in self.held.items()
                if res == "cronjobs"
                for s in held.values()
            ]
        for ns, cj in cronjobs:
            if cj["suspend"] or not cj["schedule"]:
                continue
            if cj["time_zone"] not in UTC_ZONES:
                if cj["uid"] not in self.slots_done:
                    self.log("slot_unsupported", ns=ns, cronjob=cj["cronjob"], zone=cj["time_zone"])
                    self.slots_done[cj["uid"]] = now
                continue
            since = self.slots_done.get(cj["uid"]) or parse_time(cj["created"]) or now
            try:
                it = croniter(cj["schedule"], datetime.fromtimestamp(since, UTC))
                while (slot := it.get_next(float)) <= now:
                    iso = datetime.fromtimestamp(slot, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                    self.log("slot", ns=ns, cronjob=cj["cronjob"], uid=cj["uid"], slot=iso)
                    since = slot
            except (ValueError, KeyError) as err:
                self.log("slot_unsupported", ns=ns, cronjob=cj["cronjob"], error=str(err))
                since = now + 10**9
            self.slots_done[cj["uid"]] = since

    def run(self) -> None:
        core, custom = client.CoreV1Api(self.api), client.CustomObjectsApi(self.api)
        objects = custom.list_namespaced_custom_object
        for ns in self.namespaces:
            self.streams += [
                Stream(self, "jobs", ns, objects, ("batch", "v1", ns, "jobs")),
                Stream(self, "cronjobs", ns, objects, ("batch", "v1", ns, "cronjobs")),
                Stream(self, "scheduledtasks", ns, objects, (GROUP, "v1alpha1", ns, TASKS)),
                Stream(self, "pods", ns, core.list_namespaced_pod, (ns,), raw=True),
                Stream(self, "events", ns, core.list_namespaced_event, (ns,), raw=True),
                Stream(self, "leases", ns, objects, ("coordination.k8s.io", "v1", ns, "leases")),
            ]
        for s in self.streams:
            s.start()
        for s in self.streams:
            s.synced.wait()
            if self.stopping.is_set():
                return
        self.log("synced", streams=len(self.streams))
        while not self.stopping.wait(timeout=1.0 - time.time() % 1.0):
            self.tick_slots(time.time())


class Stream(threading.Thread):
    """List then watch one resource in one namespace; resume from the last
    resourceVersion, relist (replacing) when that is too old, and log every gap."""

    def __init__(
        self,
        rec: Recorder,
        resource: str,
        ns: str,
        lister: Callable[..., Any],
        args: tuple[str, ...],
        raw: bool = False,
    ) -> None:
        super().__init__(name=f"record-{ns}-{resource}", daemon=True)
        self.rec, self.resource, self.ns, self.lister, self.args = rec, resource, ns, lister, args
        # Core API calls return models unless asked for the raw JSON.
        self.extra: dict[str, Any] = {"_preload_content": False} if raw else {}
        self.raw = raw
        self.synced = threading.Event()
        self.gap_since: float | None = None
        self.gap_error = ""

    def list_all(self) -> str:
        items: list[dict[str, Any]] = []
        cont: str | None = None
        while True:
            page: Any = self.lister(
                *self.args, limit=500, _continue=cont, _request_timeout=60, **self.extra
            )
            if self.raw:
                page = json.loads(page.data)
            items += page["items"]
            cont = page["metadata"].get("continue")
            if not cont:
                break
        self.rec.replace(self.resource, self.ns, items)
        return str(page["metadata"]["resourceVersion"])

    def broken(self, error: str) -> None:
        if self.gap_since is None:
            self.gap_since = time.time()
            self.gap_error = error
            self.rec.log("watch_error", resource=self.resource, ns=self.ns, error=error[:300])

    def resumed(self, relisted: bool) -> None:
        if self.gap_since is not None:
            self.rec.log(
                "watch_gap",
                resource=self.resource,
                ns=self.ns,
                start=round(self.gap_since, 3),
                end=round(time.time(), 3),
                relisted=relisted,
                error=self.gap_error[:300],
            )
            self.gap_since = None

    def run(self) -> None:
        rv: str | None = None
        while not self.rec.stopping.is_set():
            try:
                if rv is None:
                    rv = self.list_all()
                    self.resumed(relisted=True)
                    self.synced.set()
                w = watch.Watch()
                for event in w.stream(
                    self.lister,
                    *self.args,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=60,
                    _request_timeout=(5, 90),
                ):
                    obj = event["raw_object"]
                    if event["type"] == "ERROR":
                        raise client.ApiException(status=obj.get("code"), reason=obj.get("reason"))
                    self.resumed(relisted=False)
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.rec.changed(self.resource, self.ns, event["type"], obj, "watch")
                    if self.rec.stopping.is_set():
                        w.stop()
            except client.ApiException as err:
                if err.status == 410:
                    self.broken("410 Gone: resourceVersion too old")
                    rv = None
                else:
                    self.broken(f"{err.status} {err.reason}")
                    self.rec.stopping.wait(0.5)
            except Exception as err:
                self.broken(f"{type(err).__name__}: {err}")
                self.rec.stopping.wait(0.5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--namespace", action="append", required=True, help="repeat for more")
    p.add_argument("--out", type=Path, required=True, help="JSON lines, appended")
    args = p.parse_args(argv)
    log = Log(args.out)
    api = config.new_client_from_config(config_file=str(args.kubeconfig))
    rec = Recorder(log, api, args.namespace)

    def stop(signum: int, _frame: object) -> None:
        rec.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("recorder_started", namespaces=args.namespace, pid=os.getpid())
    rec.run()
    log("recorder_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
