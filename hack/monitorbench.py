#!/usr/bin/env python3
"""`make bench-monitor`: what monitor mode costs, measured on the local control plane.

M plain CronJobs made with kubectl (no label of cronwarden's; L of them run every
minute, the rest never), then M ScheduledTasks that reference them
(spec.cronJobRef), in bench-latency. Reported: the time until every task is
Ready, the operator's own API requests per second at rest (its
cronwarden_api_requests_total over --rest-seconds), its CPU at rest, and the
reconcile lag of the per-minute ones: from a Job seen Complete to the task's
status.lastRun naming it, for the first Job of each that finishes after every
task is Ready. --operator-root measures another checkout with the
same script, so two versions can be compared side by side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.load import NEVER, NS_LATENCY, apply_chunked, pod_spec
from harness.measure import (
    JOBS,
    TASKS,
    Latency,
    Watcher,
    operator_requests,
    proc_cpu_seconds,
    proc_memory,
    start_watchers,
    wait_event,
)
from harness.setup import (
    GROUP,
    OUT_DIR,
    ROOT,
    STATE_DIR,
    VERSION,
    BenchError,
    Operator,
    apply_crd,
    cleanup,
    cluster_ready,
    log,
    prepare_namespaces,
)

NS = NS_LATENCY


def plain_cronjob(name: str, schedule: str) -> dict[str, Any]:
    labels = {"cronwarden.io/task": name}  # routes the bench's own Job watch only
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 0,
                    "template": {"spec": {**pod_spec(), "restartPolicy": "Never"}},
                },
            },
        },
    }


def monitoring(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ScheduledTask",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"cronJobRef": {"name": name}},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", type=int, default=500, help="M, monitored CronJobs and tasks")
    p.add_argument("--per-minute", type=int, default=50, help="L of them run every minute")
    p.add_argument("--rest-seconds", type=float, default=90, help="at-rest window")
    p.add_argument("--operator-root", type=Path, default=ROOT)
    p.add_argument("--kubeconfig", type=Path, help="a running cluster (default: .state's)")
    p.add_argument("--json", type=Path, help="output (default .state/bench/monitor-M.json)")
    p.add_argument("--timeout", type=float, default=900, help="deadline of each phase")
    args = p.parse_args(argv)
    root = args.operator_root.resolve()
    out_path = args.json or OUT_DIR / f"monitor-{args.tasks}.json"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    kc = args.kubeconfig or STATE_DIR / "kubeconfig"
    r: dict[str, Any] = {"meta": vars(args) | {"operator_root": str(root)}, "errors": []}
    op = None
    watchers: list[Watcher] = []
    try:
        if not cluster_ready(kc):
            raise BenchError(f"no cluster answers with {kc}: run make cluster-up")
        apply_crd(kc, root)
        prepare_namespaces(kc, (NS,))
        names = [f"m-{i:04d}" for i in range(args.tasks)]
        cronjobs = [
            plain_cronjob(n, "* * * * *" if i < args.per_minute else NEVER)
            for i, n in enumerate(names)
        ]
        apply_chunked(kc, cronjobs, 500, time.monotonic() + args.timeout)
        op = Operator(
            root, kc, OUT_DIR / f"operator-monitor-{args.tasks}.log", 300, namespaces=(NS,)
        )
        lat = Latency(args.per_minute)
        watchers = [
            Watcher(kc, TASKS, NS, lat.on_task),
            Watcher(kc, JOBS, NS, lat.on_job),
        ]
        start_watchers(watchers, time.monotonic() + 120)
        start = time.monotonic()
        deadline = start + args.timeout
        apply_chunked(kc, [monitoring(n) for n in names], 500, deadline)
        while len(lat.ready) < args.tasks:
            if time.monotonic() > deadline:
                raise BenchError(f"only {len(lat.ready)} of {args.tasks} tasks Ready")
            time.sleep(0.5)
        r["ready_seconds"] = time.monotonic() - start
        lat.restart()  # the lag of runs that finish once every task is judged
        log(f"monitor: {args.tasks} tasks Ready in {r['ready_seconds']:.1f}s; at rest")
        before = operator_requests(op.metrics_url) or {}
        cpu, t0 = proc_cpu_seconds(op.pid), time.monotonic()
        time.sleep(args.rest_seconds)  # the measurement window itself, not a synchronisation
        after = operator_requests(op.metrics_url) or {}
        seconds = time.monotonic() - t0
        own = {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}
        r["rest"] = {
            "seconds": seconds,
            "requests": own,
            "requests_per_second": sum(own.values()) / seconds,
            "operator_cpu_percent": 100 * (proc_cpu_seconds(op.pid) - cpu) / seconds,
            "operator_rss_kib": proc_memory(op.pid)["VmRSS"],
        }
        wait_event(lat.done, deadline, op, lambda: f"{len(lat.first)} tasks reflect a run")
        r["latency"] = lat.summary()
    except (BenchError, OSError, subprocess.SubprocessError) as err:
        r["errors"].append(str(err))
    finally:
        for w in watchers:
            w.stop()
        if op is not None:
            op.stop()
            r["operator_log"] = op.log_summary()
        cleanup(kc, False, r, (NS,))
    out_path.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print(report(r))
    return 1 if r["errors"] else 0


def report(r: dict[str, Any]) -> str:
    m, rest, lat = r["meta"], r.get("rest") or {}, r.get("latency") or {}
    lines = [
        f"monitor mode: {m['tasks']} monitored CronJobs ({m['per_minute']} per minute), "
        f"operator {m['operator_root']}",
        f"  all Ready after           {r.get('ready_seconds', float('nan')):.1f} s",
        f"  requests at rest          {rest.get('requests_per_second', float('nan')):.2f}/s "
        f"({', '.join(f'{k} {int(v)}' for k, v in sorted(rest.get('requests', {}).items()))})",
        f"  operator CPU at rest      {rest.get('operator_cpu_percent', float('nan')):.1f} %",
        f"  reconcile lag             p50 {lat.get('p50', float('nan')):.2f} s, "
        f"p99 {lat.get('p99', float('nan')):.2f} s, max {lat.get('max', float('nan')):.2f} s "
        f"({lat.get('count', 0)} runs)",
    ]
    lines += [f"  error: {e}" for e in r["errors"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
