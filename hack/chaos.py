#!/usr/bin/env python3
"""`make chaos`: faults injected under churn, figures from an independent recorder.

For each scenario (hack/harness/scenarios.py), in a fresh namespace:

1. the recorder (hack/harness/recorder.py, its own process, no cronwarden code)
   lists and watches Jobs, CronJobs, Pods, Events and ScheduledTasks and logs what
   happens, with the slots each CronJob should fire;
2. the operator starts; the chaos mix is applied (per-minute tasks that succeed,
   fail, keep no history, have TTL 0, or hang under Forbid; the rest never fire),
   and every per-minute task runs once;
3. the scenario injects its faults; after each one the harness measures how long
   until every task converges, and lets the checkpoint (end + 30 s) pass;
4. the operator and the recorder stop, and the figures are computed from the
   recorder's log (hack/harness/analysis.py): duplicates, runs lost or counted
   twice, phantom active Jobs, regressions, false and missed Late/Blocked.

A table goes to stdout and JSON to .state/chaos/ (with each scenario's record and
logs). Exit status 1 when a figure misses its target or a scenario fails.
Full run: 1,000 tasks (200 per-minute) and each scenario's full repetitions;
--small: 30 tasks (12 per-minute), one repetition, for CI; --together runs the
chosen scenarios on one set-up, one after another, as CI does to save time.
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

from harness import setup
from harness.analysis import Fault, analyse, parse_record
from harness.chaosrun import GRACE_SECONDS, ChaosRun
from harness.report import chaos_markdown, chaos_misses, chaos_report
from harness.scenarios import SCENARIOS, STARTERS
from harness.setup import ROOT, STATE_DIR, BenchError, log

OUT_DIR = STATE_DIR / "chaos"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run this scenario (repeat for more; default: all, in order)",
    )
    p.add_argument(
        "--together",
        action="store_true",
        help="run the scenarios one after another on one load, recorder and operator,\n"
        "judged as one (CI: shared set-up); default: each in a namespace of its own",
    )
    p.add_argument("--small", action="store_true", help="30 tasks, one repetition (CI)")
    p.add_argument("--tasks", type=int, help="tasks (default 1000, or 30 with --small)")
    p.add_argument("--per-minute", type=int, help="of which per-minute (default 200 / 12)")
    p.add_argument("--repeat", type=int, help="repetitions of each fault (default: full / 1)")
    p.add_argument("--seed", type=int, default=17, help="random moments are drawn from it")
    p.add_argument("--operator-root", type=Path, default=ROOT, help="checkout to run")
    p.add_argument("--kubeconfig", type=Path, help="a running cluster (default: .state's)")
    p.add_argument("--json", type=Path, help="output (default .state/chaos/chaos.json)")
    p.add_argument("--keep", action="store_true", help="keep the namespaces afterwards")
    p.add_argument(
        "--report",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="run nothing: print the table, and a Markdown one, of these earlier runs'\n"
        "JSON (their scenarios side by side), and exit 1 if a figure missed",
    )
    p.add_argument(
        "--rejudge",
        type=Path,
        metavar="JSON",
        help="run nothing: judge an earlier run's records again with this checkout's\n"
        "analysis (after a fix of it), writing --json; the records are read from\n"
        "--records, named <scenario>-record.jsonl as the run wrote them",
    )
    p.add_argument(
        "--records", type=Path, default=None, help="for --rejudge (default .state/chaos)"
    )
    args = p.parse_args(argv)
    if args.rejudge and args.json is None:
        p.error("--rejudge needs --json for the re-judged run")
    args.tasks = args.tasks or (30 if args.small else 1000)
    args.per_minute = args.per_minute or (12 if args.small else 200)
    args.scenario = args.scenario or list(SCENARIOS)
    args.json = args.json or OUT_DIR / "chaos.json"
    args.operator_root = args.operator_root.resolve()
    return args


def run_scenario(args: argparse.Namespace, kc: Path, names: list[str]) -> dict[str, Any]:
    """Run these scenarios one after another on one load, judged as one."""
    name = "+".join(names)
    ns = f"chaos-{name}" if len(names) == 1 else "chaos-" + "-".join(n.split("-")[0] for n in names)
    started = time.time()
    setup.prepare_namespaces(kc, (ns,))
    run = ChaosRun(kc, args.operator_root, OUT_DIR, name, ns, args.seed, small=args.small)
    result: dict[str, Any] = {}
    errors: list[str] = []
    try:
        run.start_recorder()
        # Most scenarios run one replica with the admin kubeconfig; some start their own.
        STARTERS.get(name, lambda run: run.start_operator())(run)
        run.apply_load(args.tasks, args.per_minute)
        for each in names:
            scenario, full = SCENARIOS[each]
            repeat = args.repeat or (1 if args.small else full)
            log(f"{each}: {repeat} repetition(s)")
            scenario(run, repeat)
        run.tail()
    except (BenchError, subprocess.SubprocessError, OSError) as err:
        errors.append(str(err))
    except Exception as err:
        traceback.print_exc()
        errors.append(f"{type(err).__name__}: {err}")
    finally:
        result = run.finish(started)
        if not args.keep:
            setup.cleanup(kc, False, result, (ns,))
    result["errors"] = errors + result.get("errors", [])
    result["repetitions"] = {
        each: args.repeat or (1 if args.small else SCENARIOS[each][1]) for each in names
    }
    return result


def report(paths: list[Path]) -> int:
    runs = [json.loads(path.read_text()) for path in paths]
    results = [r for run in runs for r in run["scenarios"]]
    meta = dict(runs[0]["meta"])
    meta["wall_seconds"] = sum(run["meta"]["wall_seconds"] for run in runs)
    meta["json"] = " ".join(str(p) for p in paths)
    print(chaos_report(results, meta))
    print(f"  ({len(runs)} runs; wall time summed)\n")
    print(chaos_markdown(results))
    return 1 if any(r["errors"] or chaos_misses(r) for r in results) else 0


def rejudge(path: Path, records: Path, out: Path) -> int:
    """The figures of an earlier run, judged again from its records by this checkout's
    analysis. What only the run itself could measure (convergence, restarts, RSS,
    blind windows, the audit log's figures) is kept as it was."""
    run = json.loads(path.read_text())
    for result in run["scenarios"]:
        record = records / f"{result['scenario']}-record.jsonl"
        lines = parse_record(record.read_text())
        faults = [Fault(f["name"], f["start"], f["end"]) for f in result["fault_windows"]]
        # Runs before this field: the record's own end, a second or so after the stop.
        until = result.get("operators_stopped")
        result.update(analyse(lines, faults, GRACE_SECONDS, until=until))
    run["meta"]["rejudged"] = {"from": str(path), "records": str(records), "by": commit_of(ROOT)}
    run["meta"]["json"] = str(out)
    out.write_text(json.dumps(run, indent=2) + "\n")
    print(chaos_report(run["scenarios"], run["meta"]))
    return 1 if any(r["errors"] or chaos_misses(r) for r in run["scenarios"]) else 0


def commit_of(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    if args.rejudge:
        return rejudge(args.rejudge, args.records or OUT_DIR, args.json)
    setup.TOOL = "chaos"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    wall = time.monotonic()
    kc = args.kubeconfig or STATE_DIR / "kubeconfig"
    commit = commit_of(args.operator_root)
    meta: dict[str, Any] = {
        "tasks": args.tasks,
        "per_minute": args.per_minute,
        "small": args.small,
        "seed": args.seed,
        "operator_root": str(args.operator_root),
        "operator_commit": commit,
        "cpus": os.cpu_count(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "json": str(args.json),
    }
    results: list[dict[str, Any]] = []
    started_cluster = False
    try:
        started_cluster = setup.ensure_cluster(kc, given=args.kubeconfig is not None)
        setup.apply_crd(kc, args.operator_root)
        groups = [args.scenario] if args.together else [[name] for name in args.scenario]
        for names in groups:
            log(f"scenario {'+'.join(names)}")
            results.append(run_scenario(args, kc, names))
    finally:
        if started_cluster:
            setup.cleanup(kc, True, {"errors": []}, ())
    meta["wall_seconds"] = time.monotonic() - wall
    args.json.write_text(json.dumps({"meta": meta, "scenarios": results}, indent=2) + "\n")
    print("\n" + chaos_report(results, meta))
    return 1 if any(r["errors"] or chaos_misses(r) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
