#!/usr/bin/env python3
"""`make bench`: how cronwarden scales, measured on the local control plane.

Phases, in this order (each with a deadline; a phase that runs out is reported
as partial and the next one still runs):

1. direct   `kubectl apply --server-side` of N plain CronJobs (never due) in
            bench-direct: T_direct. They are deleted again before phase 2.
2. tasks    the operator runs; N equivalent ScheduledTasks are applied in
            bench-tasks, the same way; T_tasks lasts until every task is
            Ready=True at observedGeneration 1 and its CronJob exists, as seen
            by watches.
3. rest     nothing else happens for --rest-seconds (default: the longer of
            the resync and the audit period, + 10 s, so both run once): the API
            server's request counters (whole server, by verb and resource), the
            operator's own requests (the audit's lists), CPU and RSS at rest.
4. metrics  the operator's /metrics: median scrape time of 5, and size.
5. latency  M tasks on "* * * * *" in bench-latency: for each task's first
            reflected Job, the time from the Job being seen Complete to the
            task's status.lastRun.job naming it.
6. restart  the operator stopped and started again on the N + M converged tasks,
            as a rollout does: the time until it exports every task again, its
            CPU, its requests and its peak RSS (the chart's memory limit must
            hold this peak, not only the one of a fresh start).

Catch-up mode (--catch-up) runs phase 1, then instead of phase 2 applies the N
tasks while no operator runs and starts it after: T_catchup, from its start until
every task is Ready with its CronJob, is the operator's throughput apart from the
API server's cost of taking the apply; its CPU and own requests per task too.
Phases 3 to 5 are not run.

Burst mode (--burst N) runs instead only the midnight burst, in bench-burst: N
tasks scheduled for one minute (the first full minute --burst-lead seconds ahead,
so that all are Ready before it; startingDeadlineSeconds and missedRunGraceSeconds
3600, so the CronJob controller's pace is not counted as misses). From the watches'
sub-second times, relative to the slot: the last Job created by the CronJob controller, the last
Job Complete, the last status naming its run; per task, the lag from its Job
Complete to its status (p50, p99, max; target p99 <= 1 s); the operator's CPU
over the burst and per run (target <= 10 ms), its peak RSS, the Events it
posted and its own API requests (cronwarden_api_requests_total) per second.
--tasks and the other phases' options are then ignored.

Results are printed as a table and written as JSON. The operator is started
from --operator-root (its operator/ directory on PYTHONPATH), so an older
checkout can be measured with this same script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.burst import NS_BURST, default_lead, phase_burst
from harness.load import NAMESPACES, NS_LATENCY, NS_TASKS
from harness.measure import proc_memory, scrape
from harness.phases import (
    phase_catchup,
    phase_direct,
    phase_latency,
    phase_rest,
    phase_restart,
    phase_tasks,
)
from harness.report import bench_report, burst_report
from harness.setup import (
    KUBECTL,
    OUT_DIR,
    ROOT,
    STATE_DIR,
    BenchError,
    Operator,
    apply_crd,
    cleanup,
    ensure_cluster,
    log,
    prepare_namespaces,
)


class Done(Exception):
    """The mode's last phase has run."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", type=int, default=10000, help="N, tasks and CronJobs to apply")
    p.add_argument("--latency-tasks", type=int, default=200, help="M, per-minute tasks")
    p.add_argument("--json", type=Path, help="output (default .state/bench/bench-N.json)")
    p.add_argument(
        "--operator-root",
        type=Path,
        default=ROOT,
        help="checkout whose operator/ and crds/ are run (default: this one)",
    )
    p.add_argument(
        "--kubeconfig",
        type=Path,
        help="use this running cluster; else $STATE_DIR/kubeconfig, "
        "started with hack/cluster.sh up (and stopped after) if not running",
    )
    p.add_argument("--resync-seconds", type=int, default=60, help="the operator's resync")
    p.add_argument(
        "--audit-seconds",
        type=int,
        default=180,
        help="the operator's audit period (its default; ignored by operators without one)",
    )
    p.add_argument(
        "--rest-seconds",
        type=float,
        help="at-rest window (default: the longer of resync and audit, + 10 s, so that "
        "both run once in it)",
    )
    p.add_argument(
        "--burst",
        type=int,
        default=0,
        metavar="N",
        help="burst mode: only N tasks all due in the same minute (see above)",
    )
    p.add_argument(
        "--burst-lead",
        type=float,
        help="seconds from applying the burst's tasks to their slot, rounded up to a "
        "full minute (default 60 + 0.1 s per task)",
    )
    p.add_argument(
        "--catch-up",
        action="store_true",
        help="convergence mode: after the direct phase, the N tasks are applied with no "
        "operator running, then it starts (T_catchup); the other phases do not run",
    )
    p.add_argument("--chunk", type=int, default=500, help="objects per kubectl apply")
    p.add_argument("--phase-timeout", type=float, default=1800, help="deadline of each phase")
    args = p.parse_args(argv)
    args.operator_root = args.operator_root.resolve()
    if args.burst < 0:
        p.error("--burst must be positive")
    if args.burst_lead is None:
        args.burst_lead = default_lead(args.burst)
    name = f"burst-{args.burst}" if args.burst else str(args.tasks)
    name += "-catchup" if args.catch_up and not args.burst else ""
    args.json = args.json or OUT_DIR / f"bench-{name}.json"
    if args.rest_seconds is None:
        args.rest_seconds = max(args.resync_seconds, args.audit_seconds) + 10
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not KUBECTL.exists():
        raise SystemExit(f"bench: {KUBECTL} is missing: run 'make tools' first")
    if not (args.operator_root / "operator" / "cronwarden").is_dir():
        raise SystemExit(f"bench: {args.operator_root}/operator/cronwarden does not exist")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "-C", str(args.operator_root), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if args.burst:
        return main_burst(args, commit)
    op_log = OUT_DIR / f"operator-{args.tasks}.log"
    r: dict[str, Any] = {
        "meta": {
            "tasks": args.tasks,
            "latency_tasks": args.latency_tasks,
            "chunk": args.chunk,
            "operator_root": str(args.operator_root),
            "operator_commit": commit or "unknown",
            "resync_seconds": args.resync_seconds,
            "rest_seconds": args.rest_seconds,
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "json": str(args.json),
            "operator_log": str(op_log),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "errors": [],
        "loadavg": {},
    }
    wall = time.monotonic()
    kc = args.kubeconfig or STATE_DIR / "kubeconfig"
    started_cluster = False
    op: Operator | None = None
    try:
        started_cluster = ensure_cluster(kc, given=args.kubeconfig is not None)
        r["meta"]["kubeconfig"] = str(kc)
        apply_crd(kc, args.operator_root)
        prepare_namespaces(kc, NAMESPACES)

        log(f"direct: applying {args.tasks} CronJobs")
        r["direct"] = phase_direct(kc, args.tasks, args.chunk, args.phase_timeout)
        r["loadavg"]["direct"] = os.getloadavg()

        def start_operator(append_log: bool = False) -> Operator:
            return Operator(
                args.operator_root,
                kc,
                op_log,
                args.resync_seconds,
                args.audit_seconds,
                namespaces=(NS_TASKS, NS_LATENCY),
                append_log=append_log,
            )

        if args.catch_up:
            log(f"catch-up: applying {args.tasks} tasks with no operator running")
            r["catchup"], op = phase_catchup(
                kc, start_operator, args.tasks, args.chunk, args.phase_timeout
            )
            r["catchup_ratio"] = r["catchup"]["seconds"] / r["direct"]["seconds"]
            if not r["catchup"].get("complete"):
                r["errors"].append(f"catch-up incomplete: {r['catchup'].get('error', 'deadline')}")
            if op is not None:
                r["operator_rss_peak_after_tasks_kib"] = proc_memory(op.pid)["VmHWM"]
            raise Done
        op = start_operator()
        r["meta"]["audit_seconds"] = args.audit_seconds if op.audits else None
        log(f"operator pid {op.pid} live (log {op_log}); tasks: applying {args.tasks}")
        r["tasks"] = phase_tasks(kc, op, args.tasks, args.chunk, args.phase_timeout)
        r["ratio"] = r["tasks"]["seconds"] / r["direct"]["seconds"]
        r["operator_rss_peak_after_tasks_kib"] = proc_memory(op.pid)["VmHWM"]
        r["loadavg"]["tasks"] = os.getloadavg()
        if not r["tasks"]["complete"]:
            r["errors"].append(f"tasks phase incomplete: {r['tasks'].get('error', 'deadline')}")

        log(f"rest: {args.rest_seconds:.0f}s with nothing to do")
        r["rest"] = phase_rest(kc, op, args.rest_seconds)
        r["loadavg"]["rest"] = os.getloadavg()
        r["metrics_scrape"] = scrape(op.metrics_url)

        log(f"latency: {args.latency_tasks} per-minute tasks")
        r["latency"] = phase_latency(kc, op, args.latency_tasks, args.chunk, args.phase_timeout)
        r["loadavg"]["latency"] = os.getloadavg()
        if r["latency"]["count"] < args.latency_tasks:
            r["errors"].append(f"latency phase: {r['latency'].get('error', 'deadline')}")

        log("restart: the operator stopped and started again on the converged tasks")
        r["operator_rss_peak_kib"] = proc_memory(op.pid)["VmHWM"]
        r["restart"], op = phase_restart(
            op, lambda: start_operator(append_log=True), args.phase_timeout
        )
        r["loadavg"]["restart"] = os.getloadavg()
        if "error" in r["restart"]:
            r["errors"].append(f"restart phase: {r['restart']['error']}")
    except Done:
        pass
    except (BenchError, subprocess.SubprocessError, OSError) as err:
        r["errors"].append(str(err))
    except Exception as err:
        traceback.print_exc()
        r["errors"].append(f"{type(err).__name__}: {err}")
    except KeyboardInterrupt:
        r["errors"].append("interrupted")
    finally:
        if op is not None:
            if not op.alive():
                r["errors"].append(f"the operator died ({op.proc.returncode}); see {op_log}")
            elif "restart" not in r:
                r["operator_rss_peak_kib"] = proc_memory(op.pid)["VmHWM"]
            op.stop()
            r["operator_log"] = op.log_summary()
        cleanup(kc, started_cluster, r, NAMESPACES)
    r["wall_seconds"] = time.monotonic() - wall
    args.json.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print("\n" + bench_report(r))
    return 1 if r["errors"] else 0


def main_burst(args: argparse.Namespace, commit: str) -> int:
    op_log = OUT_DIR / f"operator-burst-{args.burst}.log"
    r: dict[str, Any] = {
        "meta": {
            "burst": args.burst,
            "burst_lead_seconds": args.burst_lead,
            "chunk": args.chunk,
            "operator_root": str(args.operator_root),
            "operator_commit": commit or "unknown",
            "resync_seconds": args.resync_seconds,
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "json": str(args.json),
            "operator_log": str(op_log),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "errors": [],
    }
    wall = time.monotonic()
    kc = args.kubeconfig or STATE_DIR / "kubeconfig"
    started_cluster = False
    op: Operator | None = None
    try:
        started_cluster = ensure_cluster(kc, given=args.kubeconfig is not None)
        r["meta"]["kubeconfig"] = str(kc)
        apply_crd(kc, args.operator_root)
        prepare_namespaces(kc, (NS_BURST,))
        op = Operator(
            args.operator_root,
            kc,
            op_log,
            args.resync_seconds,
            args.audit_seconds,
            namespaces=(NS_BURST,),
        )
        log(f"operator pid {op.pid} live (log {op_log}); burst: {args.burst} tasks")
        r["burst"] = phase_burst(
            kc, {"operator": op}, args.burst, args.chunk, args.burst_lead, args.phase_timeout
        )
        r["errors"] += r["burst"]["errors"]
        r["meta"]["loadavg_end"] = os.getloadavg()
    except (BenchError, subprocess.SubprocessError, OSError) as err:
        r["errors"].append(str(err))
    except Exception as err:
        traceback.print_exc()
        r["errors"].append(f"{type(err).__name__}: {err}")
    except KeyboardInterrupt:
        r["errors"].append("interrupted")
    finally:
        if op is not None:
            if not op.alive():
                r["errors"].append(f"the operator died ({op.proc.returncode}); see {op_log}")
            op.stop()
            r["operator_log"] = op.log_summary()
        cleanup(kc, started_cluster, r, (NS_BURST,))
    r["wall_seconds"] = time.monotonic() - wall
    args.json.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print("\n" + burst_report(r))
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
