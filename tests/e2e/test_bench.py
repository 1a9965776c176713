"""`make bench` at a small N, as a smoke test: it runs every phase against the shared
control plane and reports complete figures. Nothing about speed is asserted (speed is
measured by `make bench` itself, not by tests)."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import ROOT, STATE_DIR

sys.path.insert(0, str(ROOT / "hack"))

from floor import STEPS as FLOOR_STEPS  # hack/floor.py


@pytest.fixture
def bench_namespaces() -> Iterator[None]:
    """hack/bench.py always uses the namespaces bench-direct, bench-tasks and
    bench-latency, and deletes them at its end: one run at a time on the shared
    cluster, since the workers may take both of its tests at once."""
    with open(STATE_DIR / "bench-namespaces.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def bench(script: str, *args: str, out: Path, kubeconfig: Path) -> tuple[str, dict[str, Any]]:
    """Run hack/SCRIPT with ARGS on the shared cluster; its stdout and its JSON report,
    once it has exited 0."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "hack" / script), *args, f"--kubeconfig={kubeconfig}",
         f"--json={out}"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


@pytest.mark.long(65)
@pytest.mark.usefixtures("bench_namespaces")
def test_bench_runs_every_phase_at_a_small_n(kubeconfig: Path, crd: str, tmp_path: Path) -> None:
    stdout, report = bench(
        "bench.py",
        "--tasks=20",
        "--latency-tasks=5",
        "--resync-seconds=10",
        "--rest-seconds=12",
        out=tmp_path / "bench.json",
        kubeconfig=kubeconfig,
    )
    assert report["errors"] == []
    assert report["tasks"]["complete"] is True
    assert report["tasks"]["ready_with_cronjob"] == 20
    assert report["rest"]["operator_own_requests"] is not None  # the operator counts its own
    assert report["metrics_scrape"]["bytes"] > 0
    assert report["latency"]["count"] == 5
    assert "ratio T_tasks / T_direct" in stdout
    # The restart: every task of both namespaces exported again by the new process,
    # which creates no CronJob (each exists and is in sync).
    restart = report["restart"]
    assert restart["tasks"] == 25, restart
    assert restart["operator_rss_peak_kib"] > 0
    assert restart["operator_own_requests"].get("PATCH cronjobs", 0) == 0, restart
    assert "restart on 25 converged tasks" in stdout


@pytest.mark.usefixtures("bench_namespaces")
def test_bench_catch_up_mode_at_a_small_n(kubeconfig: Path, crd: str, tmp_path: Path) -> None:
    """--catch-up: the tasks are applied before the operator starts; it then creates
    each CronJob with one request, sending no GET per task before it (the "never adopt"
    check is the create's 409), and writes each status once."""
    n = 20
    stdout, report = bench(
        "bench.py",
        f"--tasks={n}",
        "--catch-up",
        out=tmp_path / "catchup.json",
        kubeconfig=kubeconfig,
    )
    assert report["errors"] == []
    catchup = report["catchup"]
    assert catchup["complete"] is True
    assert catchup["ready_with_cronjob"] == n
    own = catchup["operator_own_requests"]
    assert own["PATCH cronjobs"] == n, own  # one create each
    # The start-up listings, not a GET per task: in each of the two namespaces the
    # operator watches (hack/bench.py: bench-tasks and bench-latency), the reflector's
    # listing (runtime/reflector.py) and the first audit's (runtime/audit.py).
    listings = 2 * 2
    assert own.get("GET cronjobs", 0) <= listings, own
    assert own.get("GET jobs", 0) <= listings, own
    assert "ratio T_catchup / T_direct" in stdout
    assert "operator API requests per new task" in stdout


@pytest.mark.long(150)
def test_bench_shards_burst_mode_at_a_small_n(kubeconfig: Path, crd: str, tmp_path: Path) -> None:
    """`make bench-shards BENCH_ARGS="--burst N"`: the midnight burst on 1 shard and then
    on 2, each replica's CPU and peak RSS reported, every status naming its run."""
    n = 20
    stdout, report = bench(
        "shardbench.py",
        f"--burst={n}",
        "--namespaces=4",
        "--burst-lead=20",
        out=tmp_path / "burst.json",
        kubeconfig=kubeconfig,
    )
    assert report["errors"] == []
    assert [b["shards"] for b in report["bursts"]] == [1, 2]
    for b in report["bursts"]:
        assert b["tasks_reflecting"] == n, b
        assert b["lag_count"] == n, b
        replicas = b["replicas"]
        assert len(replicas) == b["shards"] + 1  # the holders and one standby
        holders = sorted(r["holds"] for r in replicas.values() if r["holds"])
        assert len(holders) == b["shards"], replicas
        assert all(r["rss_peak_kib"] > 0 for r in replicas.values())
        assert b["operator_cpu_seconds"] > 0
    assert "2 shard(s): 20 tasks" in stdout


def test_bench_floor_times_each_step_of_a_new_task(
    kubeconfig: Path, crd: str, tmp_path: Path
) -> None:
    """hack/floor.py (`make bench-floor`) does for each task what any operator on this
    stack must: its CronJob is created and its status written, for real."""
    n = 10
    stdout, report = bench("floor.py", f"--tasks={n}", out=tmp_path / "floor.json",
                           kubeconfig=kubeconfig)  # fmt: skip
    assert report["errors"] == []
    assert report["cronjobs_created"] == n
    assert set(report["steps_ms"]) == set(FLOOR_STEPS)
    assert all(ms > 0 for ms in report["steps_ms"].values()), report["steps_ms"]
    assert report["floor_ms"] == pytest.approx(sum(report["steps_ms"].values()))
    assert report["status_bytes"] > 500  # a real status: conditions and all
    assert "sum: the floor per new task" in stdout
