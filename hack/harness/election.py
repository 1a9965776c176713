"""Scenario `leader-election`: two replicas as the chart runs them with high
availability (its --leader-election arguments and its RBAC, harness/accounts.py),
each as a ServiceAccount of its own so that the API server's audit log names the
replica behind every request. The leader is killed (kill -9) 5 times (--small:
once), half of them just after a minute boundary; the killed replica comes back
0-5 s later, as a Deployment's pod would, and stands by. Then the leader is frozen
(SIGSTOP) just after a minute boundary, kept frozen until 15 s after another replica
took the Lease over, and continued (SIGCONT).

A kill's fault lasts until another replica holds the Lease, the freeze's until the
frozen replica is continued. Right after each, a task is created, so that the new
leader has something to write at once.

Judged from sources other than the operator: who held the Lease when (the
recorder's watch on Leases, `lease` records), and every write of each replica (the
API server's audit log, harness/audit.py). Figures: writes by a replica outside its
own terms (target 0: no standby writes, no write after losing the Lease), and per
fault the seconds from the leader's death or freeze until another replica took the
Lease and until the new leader's first write.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from typing import Any

from harness import audit
from harness.accounts import operator_users
from harness.analysis import parse_record
from harness.chaosrun import ChaosRun
from harness.load import chaos_task
from harness.setup import BenchError, kubectl, log

REPLICAS = ("r1", "r2")
TAKEOVER_DEADLINE = 90.0  # seconds for another replica to take the Lease


def start(run: ChaosRun) -> None:
    run.accounts = accounts = operator_users(run.kc, run.ns, list(REPLICAS), run.out_dir)
    run.operator_args = tuple(accounts.election)
    lease = lease_name(run)
    since, offset = time.time(), audit.size(audit.AUDIT_LOG)
    deaths: list[tuple[float, str]] = []
    run.extra["deaths"] = deaths
    run.start_operator("r1", env={"POD_NAME": "r1"}, kc=accounts.kubeconfigs["r1"])
    wait_holder(run, lambda h: h.startswith("r1_"), "r1 to take the Lease")
    run.start_operator("r2", env={"POD_NAME": "r2"}, kc=accounts.kubeconfigs["r2"])
    run.at_finish.append(lambda: thaw_all(run))
    run.at_finish.append(lambda: figures(run, lease, since, offset, deaths))


def leader_election(run: ChaosRun, times: int) -> None:
    deaths: list[tuple[float, str]] = run.extra["deaths"]
    for i in range(times):
        if i % 2 == 0:
            run.wait_until(run.next_minute(run.rng.uniform(0.5, 4.0)))
        else:
            run.wait_until(run.random_moment())
        holder = wait_holder(run, bool, "a leader")
        replica = holder.rsplit("_", 1)[0]
        with run.fault(f"leader-kill-{i + 1}"):
            deaths.append((time.time(), holder))
            run.kill_operator(replica)
            probe(run, f"probe-kill-{i + 1}")
            run.wait_until(time.time() + run.rng.uniform(0, 5))
            run.restart_operator(replica)
            wait_holder(run, lambda h, old=holder: h not in ("", old), "another replica to lead")
        run.settle()
    run.wait_until(run.next_minute(run.rng.uniform(1.0, 3.0)))
    holder = wait_holder(run, bool, "a leader")
    op = run.ops[holder.rsplit("_", 1)[0]]
    with run.fault("leader-freeze"):
        deaths.append((time.time(), holder))
        os.kill(op.pid, signal.SIGSTOP)
        try:
            wait_holder(run, lambda h, old=holder: h not in ("", old), "another replica to lead")
            run.wait_until(time.time() + 15)
        finally:
            os.kill(op.pid, signal.SIGCONT)
        probe(run, "probe-freeze")
    run.settle()


def lease_name(run: ChaosRun) -> str:
    assert run.accounts is not None
    return next(
        a.split("=", 1)[1] for a in run.accounts.election if a.startswith("--leader-election-id=")
    )


def holder_now(run: ChaosRun) -> str:
    with contextlib.suppress(Exception):
        lease: Any = run.custom.get_namespaced_custom_object(
            "coordination.k8s.io", "v1", run.ns, "leases", lease_name(run), _request_timeout=10
        )
        return str((lease.get("spec") or {}).get("holderIdentity") or "")
    return ""


def wait_holder(run: ChaosRun, ok: Any, what: str) -> str:
    end = time.time() + TAKEOVER_DEADLINE
    while time.time() < end:
        holder = holder_now(run)
        if ok(holder):
            return holder
        run.wait_until(time.time() + 0.2)
    raise BenchError(f"no Lease holder fits after {TAKEOVER_DEADLINE:.0f}s: {what}")


def probe(run: ChaosRun, name: str) -> None:
    """A new task: the next leader has something to write as soon as it leads."""
    kubectl(run.kc, "create", "-f", "-", input=json.dumps(chaos_task(name, run.ns, "never")))


def thaw_all(run: ChaosRun) -> dict[str, Any]:
    for op in run.ops.values():
        if op.alive():
            os.kill(op.pid, signal.SIGCONT)
    return {}


def figures(
    run: ChaosRun, lease: str, since: float, offset: int, deaths: list[tuple[float, str]]
) -> dict[str, Any]:
    assert run.accounts is not None
    users = run.accounts.users
    requests = audit.read(audit.AUDIT_LOG, set(users), since, offset)
    if not requests:
        raise BenchError(
            f"no request of the replicas in the audit log {audit.AUDIT_LOG}: a cluster "
            "created before hack/cluster.sh audited the chaos namespaces? Recreate it."
        )
    records = parse_record(run.record_text())
    terms = audit.terms([r for r in records if r["kind"] == "lease"], lease)
    foreign = audit.foreign_writes(requests, terms, users)
    failovers = audit.failovers(deaths, terms, requests, users)
    writes = sum(1 for r in requests if r.write())
    log(
        f"leader election: {len(terms)} terms, {writes} writes audited, "
        f"{len(foreign)} outside the writer's terms"
    )
    taken = [f["lease_taken_seconds"] for f in failovers]
    first = [f["first_write_seconds"] for f in failovers]
    return {
        "deaths": [{"at": at, "holder": h} for at, h in deaths],
        "election": {
            "terms": [
                {"holder": t.holder, "start": t.start, "end": t.end if t.end < 1e18 else None}
                for t in terms
            ],
            "writes_audited": writes,
            "failovers": failovers,
        },
        "writes_outside_lease": len(foreign),
        "writes_outside_lease_examples": foreign[:8],
        "failover_lease_max_seconds": max((t for t in taken if t is not None), default=None),
        "failover_first_write_max_seconds": max((t for t in first if t is not None), default=None),
        "failovers_without_new_leader": sum(1 for t in taken if t is None),
    }
