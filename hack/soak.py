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
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import setup
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", type=int, default=300, help="per-minute tasks")
    p.add_argument("--minutes", type=float, default=30, help="how long they run")
    p.add_argument("--warmup-minutes", type=float, default=5, help="left out of the slope")
    p.add_argument("--sample-seconds", type=float, default=30, help="RSS sampling period")
    p.add_argument("--operator-root", type=Path, default=ROOT)
    p.add_argument("--kubeconfig", type=Path, help="a running cluster (default: .state's)")
    p.add_argument("--json", type=Path, help="output (default .state/bench/soak-N.json)")
    args = p.parse_args(argv)
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
        log_path = OUT_DIR / f"operator-soak-{args.tasks}.log"
        op = Operator(args.operator_root, kc, log_path, 300)
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
            time.sleep(min(args.sample_seconds, max(end - time.monotonic(), 0)))
        warm = [(t, m) for t, m in samples if t >= args.warmup_minutes * 60]
        r["samples"] = samples
        r["rss_start_kib"] = samples[0][1] if samples else None
        r["rss_end_kib"] = samples[-1][1] if samples else None
        r["rss_peak_kib"] = proc_memory(op.pid)["VmHWM"]
        r["slope_mb_per_hour"] = slope_mb_per_hour(warm)
        r["runs_recorded"] = runs_recorded(kc)
        r["operator_cpu_seconds"] = proc_cpu_seconds(op.pid)
    except (BenchError, OSError, subprocess.SubprocessError) as err:
        r["errors"].append(str(err))
    finally:
        if op is not None:
            op.stop()
            r["operator_log"] = op.log_summary()
        setup.cleanup(kc, started_cluster, r, NAMESPACES)
    args.json.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print(soak_report(r))
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
