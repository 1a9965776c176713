"""Shards against the real control plane: three `cronwarden run --shards 2` replicas
over four namespaces of their own (two per shard, by the namespace's hash) split the
tasks with none lost and none double-owned, on the client-side filter and on the API
server's shard selector (hack/cluster.sh turns the ShardedListAndWatch gate on); and
a shard whose holder is killed moves to the standby within the Lease's duration,
with no run lost: manual runs that finished while nobody held the shard (the standby
frozen meanwhile) are recorded once it takes over.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from kubernetes.client import ApiClient
from prometheus_client.parser import text_string_to_metric_families

from cronwarden.core.sharding import lease_name, selector, shard_of
from cronwarden.runtime.leader import LeaseConfig
from tests.e2e.conftest import _namespace
from tests.e2e.support import (
    Cluster,
    Kubectl,
    Operator,
    launch_operator,
    wait_for,
    watching,
)
from tests.e2e.test_ownership import NEVER_SOON
from tests.e2e.test_scheduledtask import RUN_TIMEOUT, nightly

SHARDS = 2
PODS = ("r0", "r1", "r2")  # two holders and a standby
TASKS = ("t0", "t1")  # in every namespace
LEASE = LeaseConfig("", "", "")  # the defaults: duration and retry period


@pytest.fixture
def shard_namespaces(api: ApiClient) -> Iterator[dict[int, list[str]]]:
    """Two fresh namespaces per shard: names tried in turn until each shard has two."""
    base = f"e2e-shard-{uuid.uuid4().hex[:6]}"
    chosen: dict[int, list[str]] = {shard: [] for shard in range(SHARDS)}
    i = 0
    while any(len(names) < 2 for names in chosen.values()):
        name = f"{base}-{i}"
        if len(chosen[shard_of(name, SHARDS)]) < 2:
            chosen[shard_of(name, SHARDS)].append(name)
        i += 1
    with contextlib.ExitStack() as stack:
        for names in chosen.values():
            for name in names:
                stack.enter_context(contextlib.contextmanager(_namespace)(api, name))
        yield chosen


def launch(
    kubeconfig: Path, chosen: dict[int, list[str]], shard_filter: str
) -> dict[str, Operator]:
    namespaces = [ns for names in chosen.values() for ns in names]
    # A pattern: cluster-wide watches, where a shard selector (or filter) matters; the
    # namespaces of other tests are seen and dropped too.
    args = watching(namespaces[0].rsplit("-", 1)[0] + "-*")
    args += [
        f"--shards={SHARDS}",
        f"--shard-filter={shard_filter}",
        f"--leader-election-namespace={namespaces[0]}",
    ]
    replicas: dict[str, Operator] = {}
    try:
        for pod in PODS:
            tag = f"{namespaces[0]}-{pod}"
            replicas[pod] = launch_operator(args, kubeconfig, tag, env={"POD_NAME": pod})
    except BaseException:
        for op in replicas.values():  # none left running when one fails to start
            op.process.kill()
        raise
    return replicas


def stop_all(replicas: dict[str, Operator]) -> None:
    """SIGTERM to every replica at once (a holder's release would otherwise hand its
    shard to a standby about to stop too); each must have been alive, exit within 30 s
    and have logged no traceback."""
    live = [op for op in replicas.values() if not op.stopped]
    died = [op.log_path.name for op in live if op.process.poll() is not None]
    for op in live:
        if op.process.poll() is None:
            op.process.terminate()
    slow = []
    for op in live:
        try:
            op.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            op.process.kill()
            slow.append(op.log_path.name)
        op.stopped = True
    assert not died, f"replicas died during the test: {died}"
    assert not slow, f"replicas did not stop within 30 s of SIGTERM: {slow}"
    for op in replicas.values():
        assert "Traceback" not in op.log(), f"a traceback in {op.log_path}"


def lease(kubectl: Kubectl, namespace: str, shard: int) -> dict[str, object]:
    got = kubectl("-n", namespace, "get", "lease", lease_name("cronwarden", shard), "-o", "json")
    spec: dict[str, object] = json.loads(got.stdout).get("spec") or {}
    return spec


def holders(kubectl: Kubectl, namespace: str) -> dict[int, str] | None:
    """shard -> the POD_NAME of its holder, once every shard is held."""
    out = {}
    for shard in range(SHARDS):
        found = kubectl(
            "-n", namespace, "get", "lease", lease_name("cronwarden", shard), check=False
        )
        if found.returncode != 0:
            return None
        holder = str(lease(kubectl, namespace, shard).get("holderIdentity") or "")
        if not holder:
            return None
        out[shard] = holder.split("_")[0]
    return out if len(set(out.values())) == SHARDS else None


def task_namespaces(op: Operator) -> set[str]:
    """The namespaces of the task series a replica exports."""
    return {
        sample.labels["namespace"]
        for family in text_string_to_metric_families(op.metrics())
        for sample in family.samples
        if sample.name.startswith("cronwarden_task_")
    }


def shard_flags(op: Operator) -> dict[str, float]:
    return {
        sample.labels["shard"]: sample.value
        for family in text_string_to_metric_families(op.metrics())
        for sample in family.samples
        if sample.name == "cronwarden_operator_shard_active"
    }


def status_managers(kubectl: Kubectl, namespace: str, name: str) -> set[str]:
    shown = ("-n", namespace, "get", "st", name, "-o", "json", "--show-managed-fields")
    task = json.loads(kubectl(*shown).stdout)
    return {
        m["manager"]
        for m in task["metadata"].get("managedFields") or []
        if m.get("subresource") == "status"
    }


def apply_tasks(kubectl: Kubectl, chosen: dict[int, list[str]]) -> None:
    """Tasks that never run on their own: the tests start their runs by hand."""
    for names in chosen.values():
        for ns in names:
            for name in TASKS:
                Cluster(kubectl, ns).apply(nightly(name, schedule=NEVER_SOON))


def check_split(
    kubectl: Kubectl, chosen: dict[int, list[str]], replicas: dict[str, Operator]
) -> dict[int, str]:
    """Every task's status written by its own shard's holder and by no one else; each
    holder exports exactly its shard's tasks; the standby exports none. Returns the
    holders."""
    lease_ns = chosen[0][0]
    held = holders(kubectl, lease_ns)
    assert held is not None
    for shard, names in chosen.items():
        for ns in names:
            for name in TASKS:
                Cluster(kubectl, ns).wait_ready(name)
                assert status_managers(kubectl, ns, name) == {f"cronwarden-shard-{shard}"}
    standby = next(pod for pod in PODS if pod not in held.values())
    for shard, pod in held.items():

        def exports_its_shard(p: str = pod, s: int = shard) -> bool:
            return task_namespaces(replicas[p]) == set(chosen[s])

        wait_for(
            exports_its_shard,
            timeout=30,
            what=f"{pod} to export the tasks of shard {shard} and only those",
        )
        assert shard_flags(replicas[pod]) == {str(s): float(s == shard) for s in range(SHARDS)}
    assert task_namespaces(replicas[standby]) == set()
    assert shard_flags(replicas[standby]) == {str(s): 0.0 for s in range(SHARDS)}
    assert "standing by" in replicas[standby].log()
    return held


def selected_by_server(op: Operator) -> str:
    line = next(x for x in op.log().splitlines() if "the API server selects" in x)
    return line.split("the API server selects ", 1)[1].split(";", 1)[0]


def test_two_shards_split_the_tasks_on_the_client_side(
    kubectl: Kubectl, shard_namespaces: dict[int, list[str]], kubeconfig: Path, crd: str
) -> None:
    chosen = shard_namespaces
    replicas = launch(kubeconfig, chosen, "client")
    try:
        wait_for(lambda: holders(kubectl, chosen[0][0]), timeout=30, what="both shards held")
        apply_tasks(kubectl, chosen)
        held = check_split(kubectl, chosen, replicas)
        for pod in held.values():
            assert selected_by_server(replicas[pod]) == "nothing"
    finally:
        stop_all(replicas)


def test_a_killed_holder_hands_its_shard_to_the_standby_with_no_run_lost(
    kubectl: Kubectl,
    shard_namespaces: dict[int, list[str]],
    kubeconfig: Path,
    crd: str,
    record_property: pytest.RecordProperty,
) -> None:
    chosen = shard_namespaces
    lease_ns = chosen[0][0]
    replicas = launch(kubeconfig, chosen, "auto")
    try:
        wait_for(lambda: holders(kubectl, lease_ns), timeout=30, what="both shards held")
        apply_tasks(kubectl, chosen)
        held = check_split(kubectl, chosen, replicas)
        # The API server's selector, for the custom resource as for the built-in kinds.
        for pod in held.values():
            assert selected_by_server(replicas[pod]) == "scheduledtasks/cronjobs/jobs/events"
        # A custom resource's list is filtered by it too (its answer does not say so).
        for shard, names in chosen.items():
            query = quote(selector(shard, SHARDS))
            path = f"/apis/cronwarden.io/v1alpha1/scheduledtasks?shardSelector={query}"
            listed = json.loads(kubectl("get", "--raw", path).stdout)["items"]
            ours = {t["metadata"]["namespace"] for t in listed} & {
                n for v in chosen.values() for n in v
            }
            assert ours == set(names), (shard, ours)
        standby = next(pod for pod in PODS if pod not in held.values())

        # Shard 1's holder dies (SIGKILL) and, at the same moment, the standby freezes
        # (SIGSTOP): nobody can record the manual runs started now. Once they have
        # finished, the standby thaws and must take the shard and record them all.
        standby_pid = replicas[standby].process.pid
        os.kill(standby_pid, signal.SIGSTOP)
        victim = replicas[held[1]]
        victim.process.kill()
        killed = datetime.now(UTC)
        try:
            victim.process.wait(timeout=30)
            victim.stopped = True
            runs = {}
            for ns in chosen[1]:
                for name in TASKS:
                    job = f"{name}-gap"
                    kubectl("-n", ns, "create", "job", job, f"--from=cronjob/{name}")
                    runs[ns, name] = job
            for (ns, name), job in runs.items():
                cluster = Cluster(kubectl, ns)

                def finished(c: Cluster = cluster, j: str = job, n: str = name) -> bool:
                    return j in completions(c, n)

                wait_for(
                    finished,
                    timeout=RUN_TIMEOUT,
                    what=f"{ns}/{job} to finish while shard 1 has no holder",
                )
        finally:
            os.kill(standby_pid, signal.SIGCONT)
        thawed = datetime.now(UTC)
        wait_for(
            lambda: (holders(kubectl, lease_ns) or {}).get(1) == standby,
            timeout=LEASE.duration + 2 * LEASE.retry_period + 30,
            what="the standby to take shard 1",
        )
        acquired = datetime.fromisoformat(
            str(lease(kubectl, lease_ns, 1)["acquireTime"]).replace("Z", "+00:00")
        )
        # The standby takes the Lease once it has seen it unrenewed for its duration,
        # by its own clock (which ran while it was frozen): within the duration of the
        # kill (or at once after the thaw, if the runs took longer), plus up to two
        # retry periods to notice, plus slack for a loaded machine (its requests too).
        expired = max(thawed, killed + timedelta(seconds=LEASE.duration))
        late = (acquired - expired).total_seconds()
        taken = (acquired - killed).total_seconds()
        record_property("shard_takeover_seconds", round(taken, 1))
        print(f"shard 1 taken {taken:.1f}s after the kill, {late:.1f}s after it could be")
        assert late <= 2 * LEASE.retry_period + 8, (taken, late)

        for ns in chosen[1]:
            cluster = Cluster(kubectl, ns)
            for name in TASKS:
                done = completions(cluster, name)
                # The run finished while nobody held the shard.
                assert killed < done[runs[ns, name]] < acquired, (done, killed, acquired)

                def every_run(task: dict[str, Any], c: Cluster = cluster, n: str = name) -> bool:
                    return recorded_every_run(c, n, task)

                cluster.wait_task(
                    name,
                    every_run,
                    timeout=60,
                    what=f"{ns}/{name}: every finished Job recorded after the takeover",
                )
                assert status_managers(kubectl, ns, name) == {"cronwarden-shard-1"}
        assert task_namespaces(replicas[standby]) == set(chosen[1])
        # Shard 0's tasks stay with their holder.
        assert task_namespaces(replicas[held[0]]) == set(chosen[0])
    finally:
        stop_all(replicas)


def completions(cluster: Cluster, name: str) -> dict[str, datetime]:
    """Job name -> completion time of the task's successful Jobs (history limit 10)."""
    out = {}
    for job in cluster.list("job", f"cronwarden.io/task={name}"):
        status = job.get("status") or {}
        if status.get("completionTime") and status.get("succeeded"):
            done = datetime.fromisoformat(status["completionTime"].replace("Z", "+00:00"))
            out[job["metadata"]["name"]] = done
    return out


def recorded_every_run(cluster: Cluster, name: str, task: dict[str, Any]) -> bool:
    """The task counts every successful Job of its CronJob, and its last run is the
    latest of them."""
    status = task.get("status") or {}
    done = completions(cluster, name)
    last = (status.get("lastRun") or {}).get("job")
    return (
        bool(done)
        and status.get("succeeded") == len(done)
        and last == max(done.items(), key=lambda kv: kv[1])[0]
    )
