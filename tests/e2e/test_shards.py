"""Shards against the real control plane: three `cronwarden run --shards 2` replicas
over four namespaces of their own (two per shard, by the namespace's hash) split the
tasks with none lost and none double-owned, on the client-side filter and on the API
server's shard selector (hack/cluster.sh turns the ShardedListAndWatch gate on); and
a shard whose holder is killed moves to the standby within the Lease's duration,
with no run lost: the runs that finished while nobody held the shard are recorded.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
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
    stop_operator,
    wait_for,
    watching,
)
from tests.e2e.test_scheduledtask import every_minute

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
    return {
        pod: launch_operator(args, kubeconfig, f"{namespaces[0]}-{pod}", env={"POD_NAME": pod})
        for pod in PODS
    }


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
    for names in chosen.values():
        for ns in names:
            for name in TASKS:
                Cluster(kubectl, ns).apply(every_minute(name, successfulJobsHistoryLimit=10))


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
        for op in replicas.values():
            stop_operator(op)


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

        # Kill shard 1's holder a few seconds before a minute's slot, so that the
        # slot's runs finish while nobody holds the shard.
        wait_for(
            lambda: 50 <= datetime.now(UTC).second <= 54,
            timeout=70,
            what="a few seconds before the next slot",
        )
        victim = replicas[held[1]]
        victim.process.kill()
        victim.process.wait(timeout=30)
        victim.stopped = True
        killed = datetime.now(UTC)
        started = time.monotonic()
        wait_for(
            lambda: (holders(kubectl, lease_ns) or {}).get(1) == standby,
            timeout=LEASE.duration + 2 * LEASE.retry_period + 15,
            what="the standby to take shard 1",
        )
        taken = time.monotonic() - started
        record_property("shard_takeover_seconds", round(taken, 1))
        # Within the Lease's duration from when it was last renewed, plus the standby's
        # retry period and the time to notice (the kill follows a renewal by <= 2 s).
        assert taken <= LEASE.duration + 2 * LEASE.retry_period + 3, taken
        acquired = datetime.fromisoformat(
            str(lease(kubectl, lease_ns, 1)["acquireTime"]).replace("Z", "+00:00")
        )

        unseen = 0
        for ns in chosen[1]:
            cluster = Cluster(kubectl, ns)
            for name in TASKS:

                def every_run(task: dict[str, Any], c: Cluster = cluster, n: str = name) -> bool:
                    return recorded_every_run(c, n, task)

                cluster.wait_task(
                    name,
                    every_run,
                    timeout=60,
                    what=f"{ns}/{name}: every finished Job recorded after the takeover",
                )
                assert status_managers(kubectl, ns, name) == {"cronwarden-shard-1"}
                unseen += sum(
                    1 for done in completions(cluster, name).values() if killed < done < acquired
                )
        print(f"shard 1 taken over {taken:.1f}s after its holder was killed; {unseen} runs")
        # The test means something only if runs finished while the shard had no holder.
        assert unseen >= 1, "no run finished between the kill and the takeover"
        assert task_namespaces(replicas[standby]) == set(chosen[1])
        # Shard 0's tasks stay with their holder.
        assert task_namespaces(replicas[held[0]]) == set(chosen[0])
    finally:
        for op in replicas.values():
            if op.stopped:
                op.process.poll()
            stop_operator(op)


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
