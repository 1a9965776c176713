#!/usr/bin/env python3
"""`make bench-shards`: one shard against two, measured on the local control plane.

1. apply    2 x N ScheduledTasks (never due) with no operator running, in two sets
            of K namespaces each: set a for one shard, set b for two. Set b's
            namespace names are picked so that K/2 hash into each shard.
2. 1 shard  two replicas with --leader-election (the leader and a warm standby),
            watching set a: the time from their start until every task is Ready at
            generation 1 with its CronJob (as the harness's own watches see it);
            CPU and peak RSS of each replica.
3. 2 shards three replicas with --shards 2 (two holders and a cold standby),
            watching set b: the same figures.
4. failover in each, the active replica of one shard is killed (SIGKILL): the
            time until the standby holds the Lease, and until it exports the
            series of every task of that shard (it has reconciled them all).

--burst N measures the midnight burst instead (harness/burst.py, as `make bench
BENCH_ARGS="--burst N"` does for one replica): 1 shard (leader and warm standby)
on set a, then 2 shards (two holders and a cold standby) on set b, each with N
tasks spread over its namespaces and all due in one minute. Per run: when the
CronJob controller created the last Job, when the last status named its run, the
lag from each Job's completion to its status (p50, p99, max), and each replica's
CPU over the burst and peak RSS. The first run's tasks stay while the second runs
(deleting them would load the control plane during the second burst).

Results are printed and written as JSON (.state/bench/bench-shards-N.json, or
bench-shards-burst-N.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from harness.burst import TARGET_CPU_PER_RUN, TARGET_P99_LAG, default_lead, phase_burst
from harness.load import NEVER, apply_chunked, task
from harness.measure import (
    CRONJOBS,
    TASKS,
    Convergence,
    Watcher,
    proc_cpu_seconds,
    proc_memory,
    start_watchers,
    task_series,
)
from harness.setup import (
    OUT_DIR,
    ROOT,
    STATE_DIR,
    BenchError,
    Operator,
    apply_crd,
    cleanup,
    ensure_cluster,
    kubectl,
    log,
    prepare_namespaces,
)

from cronwarden.core.sharding import lease_name, shard_of

# The replicas of each run: a leader and a warm standby for one shard; two holders and
# a cold standby for two.
PODS = {1: ["a0", "a1"], 2: ["b0", "b1", "b2"]}


def names(prefix: str, k: int, shards: int) -> list[str]:
    """k namespace names, k/shards of them hashing into each shard."""
    per = k // shards
    chosen: dict[int, list[str]] = {s: [] for s in range(shards)}
    i = 0
    while any(len(v) < per for v in chosen.values()):
        name = f"{prefix}-{i:03d}"
        if len(chosen[s := shard_of(name, shards)]) < per:
            chosen[s].append(name)
        i += 1
    return sorted(n for v in chosen.values() for n in v)


def holder(kc: Path, ns: str, lease: str) -> str:
    out = kubectl(kc, "-n", ns, "get", "lease", lease, "-o", "json", "--ignore-not-found")
    spec = json.loads(out).get("spec") or {} if out.strip() else {}
    return str(spec.get("holderIdentity") or "").split("_")[0]


def start_replicas(
    kc: Path, namespaces: list[str], shards: int, pods: list[str], tag: str
) -> dict[str, Operator]:
    """One operator process per pod name, all started at once as in a Deployment's
    rollout: leader election for one shard, --shards for more; Leases in the first
    namespace."""
    args = [f"--leader-election-namespace={namespaces[0]}", "--workers=8"]
    args += [f"--shards={shards}"] if shards > 1 else ["--leader-election"]

    def launch(pod: str) -> Operator:
        return Operator(
            ROOT,
            kc,
            STATE_DIR / "logs" / f"bench-{tag}-{pod}.log",
            resync=300,
            namespaces=namespaces,
            extra_args=args,
            env={"POD_NAME": pod},
        )

    with ThreadPoolExecutor(len(pods)) as pool:
        return dict(zip(pods, pool.map(launch, pods), strict=True))


def leases_of(shards: int) -> list[str]:
    return [lease_name("cronwarden", s) for s in range(shards)] if shards > 1 else ["cronwarden"]


def run(
    kc: Path,
    namespaces: list[str],
    n: int,
    shards: int,
    pods: list[str],
    timeout: float,
) -> dict[str, Any]:
    tag = f"{shards}shard"
    conv = Convergence(n)
    watchers = [
        Watcher(kc, gvr, ns, on)
        for ns in namespaces
        for gvr, on in ((TASKS, conv.on_task), (CRONJOBS, conv.on_cronjob))
    ]
    start_watchers(watchers, time.monotonic() + 120)
    lease_ns = namespaces[0]
    started = time.monotonic()  # the clock runs from the replicas' start
    ops = start_replicas(kc, namespaces, shards, pods, tag)
    r: dict[str, Any] = {"shards": shards, "replicas": len(pods), "tasks": n}
    try:
        deadline = started + timeout
        while not conv.done.wait(2):
            if time.monotonic() > deadline:
                raise BenchError(f"{tag}: {len(conv.both)} of {n} converged in {timeout:.0f}s")
        r["convergence_seconds"] = time.monotonic() - started
        log(f"{tag}: {n} tasks converged {r['convergence_seconds']:.1f}s after the start")
        leases = leases_of(shards)
        held = {lease: holder(kc, lease_ns, lease) for lease in leases}
        r["replica"] = {
            pod: {
                "holds": next((lease for lease, h in held.items() if h == pod), None),
                "task_series": task_series(op.metrics_url),
                "cpu_seconds": proc_cpu_seconds(op.pid),
                "rss_mib": proc_memory(op.pid)["VmRSS"] / 1024,
                "peak_rss_mib": proc_memory(op.pid)["VmHWM"] / 1024,
            }
            for pod, op in ops.items()
        }
        r["failover"] = failover(kc, lease_ns, leases[-1], held, ops, deadline)
    finally:
        for w in watchers:
            w.stop()
        for op in ops.values():
            op.stop()
    return r


def failover(
    kc: Path,
    lease_ns: str,
    lease: str,
    held: dict[str, str],
    ops: dict[str, Operator],
    deadline: float,
) -> dict[str, Any]:
    """Kill the holder of `lease`; time the standby's takeover and its full export."""
    victim = held[lease]
    standby = next(pod for pod in ops if pod not in held.values())
    expected = task_series(ops[victim].metrics_url)
    ops[victim].proc.kill()
    killed = time.monotonic()
    out: dict[str, Any] = {"killed": victim, "standby": standby, "tasks_moved": expected}
    while holder(kc, lease_ns, lease) != standby:
        if time.monotonic() > deadline:
            raise BenchError(f"{standby} did not take {lease}")
        time.sleep(0.2)
    out["lease_taken_seconds"] = time.monotonic() - killed
    while task_series(ops[standby].metrics_url) < expected:
        if time.monotonic() > deadline:
            raise BenchError(f"{standby} did not export the {expected} tasks of {lease}")
        time.sleep(0.5)
    out["all_tasks_exported_seconds"] = time.monotonic() - killed
    out["standby_peak_rss_mib"] = proc_memory(ops[standby].pid)["VmHWM"] / 1024
    log(
        f"failover of {lease}: {out['lease_taken_seconds']:.1f}s to the Lease, "
        f"{out['all_tasks_exported_seconds']:.1f}s to every task of it"
    )
    return out


def burst_run(
    kc: Path, namespaces: list[str], shards: int, pods: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """The midnight burst of args.burst tasks over `namespaces`, on `shards` shards."""
    tag = f"{shards}shard-burst"
    ops = start_replicas(kc, namespaces, shards, pods, tag)
    try:
        r = phase_burst(
            kc, ops, args.burst, args.chunk, args.burst_lead, args.timeout, namespaces=namespaces
        )
        held = {lease: holder(kc, namespaces[0], lease) for lease in leases_of(shards)}
        for pod, rep in (r.get("replicas") or {}).items():
            rep["holds"] = next((lease for lease, h in held.items() if h == pod), None)
    finally:
        for op in ops.values():
            op.stop()
    r.update(shards=shards)
    return r


def burst_lines(b: dict[str, Any]) -> list[str]:
    def secs(key: str) -> str:
        v = b.get(key)
        return "-" if v is None else f"{v:.1f}s"

    lag = b.get("lag") or {}
    lines = [
        f"{b['shards']} shard(s): {b['tasks']} tasks on {b.get('slot', '-')}: last Job created "
        f"{secs('last_job_created_after_slot')} after the slot, last Complete "
        f"{secs('last_job_complete_after_slot')}, last status naming its run "
        f"{secs('last_status_after_slot')} ({b.get('tasks_reflecting', 0)} of {b['tasks']})",
    ]
    if lag:
        lines.append(
            f"  lag Job Complete -> status p50 {lag['p50']:.2f}s, p99 {lag['p99']:.2f}s, "
            f"max {lag['max']:.2f}s (target p99 <= {TARGET_P99_LAG:g}s)"
        )
    if "operator_cpu_seconds" in b:
        lines.append(
            f"  CPU of all replicas over the burst {b['operator_cpu_seconds']:.1f}s, "
            f"{1000 * b['operator_cpu_per_run']:.1f} ms per run "
            f"(target <= {1000 * TARGET_CPU_PER_RUN:g} ms); "
            f"{b.get('operator_requests_per_second', 0):.1f} requests/s"
        )
    for pod, rep in (b.get("replicas") or {}).items():
        lines.append(
            f"  {pod}: holds {rep.get('holds') or '(standby)'}, CPU {rep['cpu_seconds']:.1f}s, "
            f"peak RSS {rep['rss_peak_kib'] / 1024:.0f} MiB"
        )
    lines += [f"  ERROR: {e}" for e in b.get("errors", [])]
    return lines


def report(r: dict[str, Any]) -> str:
    if "bursts" in r:
        head = [
            f"shards, midnight burst: N={r['burst']} in {r['namespaces']} namespaces per run",
            "",
        ]
        return "\n".join(head + [line for b in r["bursts"] for line in burst_lines(b)])
    lines = [f"shards: N={r['tasks']} in {r['namespaces']} namespaces per run", ""]
    for run_ in r["runs"]:
        lines.append(
            f"{run_['shards']} shard(s), {run_['replicas']} replicas: converged in "
            f"{run_.get('convergence_seconds', float('nan')):.1f}s"
        )
        for pod, rep in run_.get("replica", {}).items():
            lines.append(
                f"  {pod}: holds {rep['holds'] or '(standby)'}, {rep['task_series']} tasks, "
                f"CPU {rep['cpu_seconds']:.1f}s, RSS {rep['rss_mib']:.0f} MiB "
                f"(peak {rep['peak_rss_mib']:.0f})"
            )
        if f := run_.get("failover"):
            lines.append(
                f"  failover: {f['killed']} killed; {f['standby']} held the Lease after "
                f"{f['lease_taken_seconds']:.1f}s and exported all {f['tasks_moved']} tasks "
                f"after {f['all_tasks_exported_seconds']:.1f}s (peak RSS "
                f"{f['standby_peak_rss_mib']:.0f} MiB)"
            )
    return "\n".join(lines)


def convergence_runs(
    kc: Path, sets: dict[int, list[str]], args: argparse.Namespace, r: dict[str, Any]
) -> None:
    """Apply N tasks for each run, then converge them on 1 shard and on 2 (into r)."""
    for shards, nss in sets.items():
        objs = [task(f"t-{i:05d}", nss[i % len(nss)], NEVER) for i in range(args.tasks)]
        begun = time.monotonic()
        apply_chunked(kc, objs, args.chunk, begun + args.timeout)
        log(f"applied {args.tasks} tasks for {shards} shard(s) in {time.monotonic() - begun:.0f}s")
    r["split"] = {
        str(s): sum(1 for i in range(args.tasks) if shard_of(sets[2][i % len(sets[2])], 2) == s)
        for s in range(2)
    }
    for shards, pods in PODS.items():
        r["runs"].append(run(kc, sets[shards], args.tasks, shards, pods, args.timeout))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", type=int, default=10000, help="N, tasks per run")
    p.add_argument("--namespaces", type=int, default=16, help="K, namespaces per run (even)")
    p.add_argument("--chunk", type=int, default=500, help="objects per kubectl apply")
    p.add_argument("--timeout", type=float, default=1800, help="deadline of each run")
    p.add_argument("--kubeconfig", type=Path, help="an existing cluster (default: start one)")
    p.add_argument("--json", type=Path, help="output (default .state/bench/bench-shards-N.json)")
    p.add_argument(
        "--burst",
        type=int,
        default=0,
        metavar="N",
        help="measure the midnight burst of N tasks instead (see above)",
    )
    p.add_argument(
        "--burst-lead",
        type=float,
        help="seconds from applying the burst's tasks to their slot (default 60 + 0.1 N)",
    )
    args = p.parse_args(argv)
    if args.burst < 0:
        p.error("--burst must be positive")
    if args.burst_lead is None:
        args.burst_lead = default_lead(args.burst)
    kc = args.kubeconfig or STATE_DIR / "kubeconfig"
    started_cluster = ensure_cluster(kc, args.kubeconfig is not None)
    sets = {
        1: names("bench-shard-a", args.namespaces, 2),
        2: names("bench-shard-b", args.namespaces, 2),
    }
    every = tuple(ns for v in sets.values() for ns in v)
    r: dict[str, Any] = {
        "tasks": args.tasks,
        "namespaces": args.namespaces,
        "runs": [],
        "errors": [],
    }
    try:
        apply_crd(kc, ROOT)
        prepare_namespaces(kc, every)
        if args.burst:
            r.update(burst=args.burst, bursts=[])
            for shards, pods in PODS.items():
                r["bursts"].append(b := burst_run(kc, sets[shards], shards, pods, args))
                r["errors"] += b["errors"]
        else:
            convergence_runs(kc, sets, args, r)
    except BenchError as err:
        r["errors"].append(str(err))
        log(f"error: {err}")
    finally:
        cleanup(kc, started_cluster, r, every)
    name = f"burst-{args.burst}" if args.burst else str(args.tasks)
    out = args.json or OUT_DIR / f"bench-shards-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2) + "\n")
    print(report(r))
    print(f"\nJSON: {out}")
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
