#!/usr/bin/env python3
"""`make soak`: does the operator's memory stay flat while runs keep finishing?

Starts the operator (from --operator-root, as `make bench` does), applies N
per-minute ScheduledTasks with the default history limits (3 successful, 1
failed) in bench-tasks, lets them run for --minutes, samples the operator's RSS
every --sample-seconds, and reports the least-squares slope of RSS over time
after --warmup-minutes, in MB per hour, next to the runs recorded meanwhile.
Every run is a Job that is created, finishes and is deleted by the history
limit a few minutes later: memory held per finished run shows up as a slope.
Target: <= 2 MB per hour. Writes JSON under .state/bench/.

--tracemalloc (an operator with runtime/memtrace.py) traces the operator's
allocations and asks it for snapshots at --snapshot-minutes (SIGUSR2), then reports
what grew between the first and the last snapshot, by traceback and by object type
(harness/memdiff.py). Tracing slows the operator and adds to its RSS: the slope of
such a run is not the product's figure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import memdiff, setup
from harness.load import NAMESPACES, NS_TASKS, apply_chunked, task
from harness.measure import proc_cpu_seconds, proc_memory
from harness.report import soak_report
from harness.setup import OUT_DIR, ROOT, STATE_DIR, BenchError, Operator, kubectl, log


def slope_mb_per_hour(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, RSS KiB) samples, in MB (10^6 bytes) per hour."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var * 1024 * 3600 / 1e6


def runs_recorded(kc: Path) -> int:
    out = kubectl(kc, "-n", NS_TASKS, "get", "st", "-o", "json", timeout=120)
    return sum(((t.get("status") or {}).get("succeeded") or 0) for t in json.loads(out)["items"])


def trace_diff(directory: Path) -> dict[str, Any] | None:
    """What grew between the first and the last snapshot the operator wrote (it writes
    them in a thread: wait up to a minute for the last)."""
    deadline = time.monotonic() + 60
    while True:
        taken = sorted(int(p.stem.split("-")[1]) for p in directory.glob("objects-*.json"))
        if len(taken) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(2)
    if len(taken) < 2:
        raise BenchError(f"the operator wrote {len(taken)} memory snapshots in {directory}")
    return memdiff.diff(directory, taken[0], taken[-1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", type=int, default=300, help="per-minute tasks")
    p.add_argument("--minutes", type=float, default=30, help="how long they run")
    p.add_argument("--warmup-minutes", type=float, default=5, help="left out of the slope")
    p.add_argument("--sample-seconds", type=float, default=30, help="RSS sampling period")
    p.add_argument("--operator-root", type=Path, default=ROOT)
    p.add_argument("--kubeconfig", type=Path, help="a running cluster (default: .state's)")
    p.add_argument("--json", type=Path, help="output (default .state/bench/soak-N.json)")
    p.add_argument(
        "--audit-seconds", type=int, help="the operator's audit period (default its own)"
    )
    p.add_argument("--tracemalloc", action="store_true", help="trace allocations (see above)")
    p.add_argument(
        "--trace-frames", type=int, default=25, help="frames per traced allocation; 0: none"
    )
    p.add_argument(
        "--snapshot-minutes",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[10.0, 25.0],
        help="when to take the snapshots, comma-separated (default 10,25)",
    )
    args = p.parse_args(argv)
    if args.tracemalloc and len(args.snapshot_minutes) < 2:
        p.error("--snapshot-minutes: give at least two times to compare")
    args.operator_root = args.operator_root.resolve()
    args.json = args.json or OUT_DIR / f"soak-{args.tasks}.json"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    kc = args.kubeconfig or STATE_DIR / "kubeconfig"
    started_cluster = False
    r: dict[str, Any] = {
        "meta": {
            "tasks": args.tasks,
            "minutes": args.minutes,
            "warmup_minutes": args.warmup_minutes,
            "operator_root": str(args.operator_root),
            "cpus": os.cpu_count(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "errors": [],
    }
    op = None
    try:
        started_cluster = setup.ensure_cluster(kc, given=args.kubeconfig is not None)
        setup.apply_crd(kc, args.operator_root)
        setup.prepare_namespaces(kc, NAMESPACES)
        log_path = args.json.with_name(f"operator-{args.json.stem}.log")
        trace_dir = args.json.with_name(f"memtrace-{args.json.stem}")
        env: dict[str, str] = {}
        if args.tracemalloc:
            trace_dir.mkdir(exist_ok=True)
            for old in trace_dir.iterdir():
                old.unlink()
            env["CRONWARDEN_TRACEMALLOC"] = str(trace_dir)
            env["CRONWARDEN_TRACEMALLOC_FRAMES"] = str(args.trace_frames)
        op = Operator(args.operator_root, kc, log_path, 300, audit=args.audit_seconds, env=env)
        due = sorted(m * 60 for m in args.snapshot_minutes) if args.tracemalloc else []
        tasks = [task(f"s-{i:04d}", NS_TASKS, "* * * * *") for i in range(args.tasks)]
        apply_chunked(kc, tasks, 500, time.monotonic() + 600)
        start = time.monotonic()
        end = start + args.minutes * 60
        samples: list[tuple[float, int]] = []
        while time.monotonic() < end:
            if not op.alive():
                raise BenchError(f"the operator died; see {log_path}")
            samples.append((time.monotonic() - start, proc_memory(op.pid)["VmRSS"]))
            log(f"soak: {samples[-1][0]:.0f}s, RSS {samples[-1][1] / 1024:.1f} MiB")
            if due and samples[-1][0] >= due[0]:
                due.pop(0)
                os.kill(op.pid, signal.SIGUSR2)
                log("soak: asked the operator for a memory snapshot")
            time.sleep(min(args.sample_seconds, max(end - time.monotonic(), 0)))
        warm = [(t, m) for t, m in samples if t >= args.warmup_minutes * 60]
        r["samples"] = samples
        r["rss_start_kib"] = samples[0][1] if samples else None
        r["rss_end_kib"] = samples[-1][1] if samples else None
        r["rss_peak_kib"] = proc_memory(op.pid)["VmHWM"]
        r["slope_mb_per_hour"] = slope_mb_per_hour(warm)
        r["runs_recorded"] = runs_recorded(kc)
        r["operator_cpu_seconds"] = proc_cpu_seconds(op.pid)
        if args.tracemalloc:
            r["memtrace"] = trace_diff(trace_dir)
    except (BenchError, OSError, subprocess.SubprocessError) as err:
        r["errors"].append(str(err))
    finally:
        if op is not None:
            op.stop()
            r["operator_log"] = op.log_summary()
        setup.cleanup(kc, started_cluster, r, NAMESPACES)
    args.json.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print(soak_report(r))
    if r.get("memtrace"):
        print(memdiff.report(r["memtrace"]))
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
