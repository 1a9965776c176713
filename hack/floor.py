#!/usr/bin/env python3
"""`make bench-floor`: the least CPU a new task can cost with this project's stack.

Whatever the runtime around it (kopf, the cache, the work queue, threads), an
operator built on the design card's libraries does at least this for each new
ScheduledTask: parse it (pydantic), build its CronJob, create it (server-side apply
through the official client), compute the status, write it (merge patch through the
official client), and decode the watch events the task causes (its own ADDED, its
CronJob's ADDED, its status write coming back). This script does exactly that, one
task after the other in one thread with the operator's own functions and request
path, and nothing else, and reports the CPU of each step per task, measured with
this process's CPU clock (time.process_time). The sum is a floor under
`make bench`'s "operator CPU per converged task" (issue 20's target: <= 2 ms).

For comparison it also times the status write through the kubectl plugin's bare
http.client transport (the same request without urllib3's pool), so the share of
the client library can be told from the share of TLS and JSON.

The tasks are applied by kubectl first (not counted), in the namespace bench-floor,
which is deleted at the end. Writes JSON to .state/bench/floor-N.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import setup
from harness.load import apply_chunked, task
from harness.setup import OUT_DIR, STATE_DIR, BenchError, log

from cronwarden.api.models import ScheduledTask
from cronwarden.core.builder import build_cronjob
from cronwarden.core.status import compute_status
from cronwarden.plugin.client import connect
from cronwarden.runtime.controller import status_body
from cronwarden.runtime.kube import TASKS, Kube, load_api_client

NAMESPACE = "bench-floor"
TARGET_MS = 2.0
# The steps, in the order a reconcile takes them; each is timed over all tasks.
STEPS = (
    "parse the task (pydantic)",
    "build the CronJob",
    "create it (server-side apply, official client)",
    "compute the status",
    "write it (merge patch, official client)",
    "decode 3 watch events (json)",
)


def cpu_ms_per(n: int, fn: Callable[[], None]) -> float:
    """Run fn once and return the CPU it took, in ms per task."""
    started = time.process_time()
    fn()
    return (time.process_time() - started) * 1000 / n


def measure(kc: Path, n: int) -> dict[str, Any]:
    apply_chunked(
        kc, [task(f"f-{i:05d}", NAMESPACE, "0 0 1 1 *") for i in range(n)], 500,
        time.monotonic() + 600,
    )  # fmt: skip
    kube = Kube(load_api_client(str(kc)))
    listed = kube.list_cached(TASKS, NAMESPACE)
    if len(listed) != n:
        raise BenchError(f"listed {len(listed)} tasks in {NAMESPACE}, applied {n}")
    raw = [json.dumps(body).encode() for body in listed]  # as a watch delivers them
    now = datetime.now(UTC)
    tasks: list[ScheduledTask] = []
    cronjobs: list[dict[str, Any]] = []
    stored: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    written: list[dict[str, Any]] = []

    def parse() -> None:
        tasks.extend(ScheduledTask.model_validate(json.loads(b)) for b in raw)

    def build() -> None:
        cronjobs.extend(build_cronjob(t) for t in tasks)

    def create() -> None:
        stored.extend(kube.apply_cronjob(c, None)[0] for c in cronjobs)

    def compute() -> None:
        statuses.extend(
            status_body(compute_status(t, cj, [], now).status)
            for t, cj in zip(tasks, stored, strict=True)
        )

    def write() -> None:
        for body, status in zip(listed, statuses, strict=True):
            meta = body["metadata"]
            written.append(
                kube.patch_task_status(NAMESPACE, meta["name"], status, meta["resourceVersion"])
            )

    events: list[bytes] = []  # the three watch events of each task, as sent

    def decode() -> None:
        for line in events:
            json.loads(line)

    steps = {}
    for name, fn in zip(STEPS, (parse, build, create, compute, write, decode), strict=True):
        if fn is decode:
            events.extend(
                json.dumps({"type": kind, "object": obj}).encode()
                for trio in zip(listed, stored, written, strict=True)
                for kind, obj in zip(("ADDED", "ADDED", "MODIFIED"), trio, strict=True)
            )
        steps[name] = cpu_ms_per(n, fn)
        log(f"floor: {name}: {steps[name]:.3f} ms CPU per task")

    # The same status write through the plugin's http.client transport (no urllib3).
    plain = connect(str(kc), None).api

    def write_plain() -> None:
        for body, status in zip(listed, statuses, strict=True):
            plain.exchange(
                "PATCH",
                f"{TASKS.format(ns=NAMESPACE)}/{body['metadata']['name']}/status",
                body={"status": status},
                query={"fieldManager": "cronwarden-floor"},
                content_type="application/merge-patch+json",
            )

    bare = cpu_ms_per(n, write_plain)
    return {
        "steps_ms": steps,
        "floor_ms": sum(steps.values()),
        "writes_ms": steps[STEPS[2]] + steps[STEPS[4]],
        "status_write_bare_http_ms": bare,
        "status_bytes": len(json.dumps(statuses[0])),
        "cronjobs_created": sum(1 for s in stored if s.get("metadata", {}).get("uid")),
    }


def report(r: dict[str, Any]) -> str:
    lines = [f"floor: the least CPU per new task, {r['meta']['tasks']} tasks, one thread"]
    for name, ms in r["steps_ms"].items():
        lines.append(f"  {name:<48} {ms:7.3f} ms")
    lines.append(
        f"  {'sum: the floor per new task':<48} {r['floor_ms']:7.3f} ms (target <= {TARGET_MS:g})"
    )
    lines.append(f"  {'of which the two writes':<48} {r['writes_ms']:7.3f} ms")
    lines.append(
        f"  {'status write by bare http.client instead':<48} "
        f"{r['status_write_bare_http_ms']:7.3f} ms ({r['status_bytes']} bytes of status)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", type=int, default=1000, help="new tasks to time (default 1000)")
    p.add_argument("--kubeconfig", type=Path, help="a running cluster (default: .state's)")
    p.add_argument("--json", type=Path, help="output (default .state/bench/floor-N.json)")
    args = p.parse_args(argv)
    if args.tasks < 1:
        p.error("--tasks: give at least 1")
    out = args.json or OUT_DIR / f"floor-{args.tasks}.json"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    kc = args.kubeconfig or STATE_DIR / "kubeconfig"
    r: dict[str, Any] = {
        "meta": {"tasks": args.tasks, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        "errors": [],
    }
    started_cluster = False
    try:
        started_cluster = setup.ensure_cluster(kc, given=args.kubeconfig is not None)
        setup.apply_crd(kc, setup.ROOT)
        setup.prepare_namespaces(kc, (NAMESPACE,))
        r.update(measure(kc, args.tasks))
    except (BenchError, OSError, subprocess.SubprocessError) as err:
        r["errors"].append(str(err))
    finally:
        setup.cleanup(kc, started_cluster, r, (NAMESPACE,))
        out.write_text(json.dumps(r, indent=2))
    if r["errors"]:
        print("floor: " + "; ".join(r["errors"]), file=sys.stderr)
        return 1
    print(report(r))
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
