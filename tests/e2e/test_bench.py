"""`make bench` at a small N, as a smoke test: it runs every phase against the shared
control plane and reports complete figures. Nothing about speed is asserted (speed is
measured by `make bench` itself, not by tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.support import ROOT


@pytest.mark.long(65)
def test_bench_runs_every_phase_at_a_small_n(kubeconfig: Path, crd: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "hack" / "bench.py"),
            "--tasks=20",
            "--latency-tasks=5",
            "--resync-seconds=10",
            "--rest-seconds=12",
            f"--kubeconfig={kubeconfig}",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["errors"] == []
    assert report["tasks"]["complete"] is True
    assert report["tasks"]["ready_with_cronjob"] == 20
    assert report["rest"]["operator_own_requests"] is not None  # the operator counts its own
    assert report["metrics_scrape"]["bytes"] > 0
    assert report["latency"]["count"] == 5
    assert "ratio T_tasks / T_direct" in proc.stdout


def test_bench_catch_up_mode_at_a_small_n(kubeconfig: Path, crd: str, tmp_path: Path) -> None:
    """--catch-up: the tasks are applied before the operator starts; it then creates
    each CronJob with one request, sending no GET per task before it (the "never adopt"
    check is the create's 409), and writes each status once."""
    out = tmp_path / "catchup.json"
    n = 20
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "hack" / "bench.py"),
            f"--tasks={n}",
            "--catch-up",
            f"--kubeconfig={kubeconfig}",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
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
    assert "ratio T_catchup / T_direct" in proc.stdout
    assert "operator API requests per new task" in proc.stdout


@pytest.mark.long(150)
def test_bench_shards_burst_mode_at_a_small_n(kubeconfig: Path, crd: str, tmp_path: Path) -> None:
    """`make bench-shards BENCH_ARGS="--burst N"`: the midnight burst on 1 shard and then
    on 2, each replica's CPU and peak RSS reported, every status naming its run."""
    out = tmp_path / "burst.json"
    n = 20
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "hack" / "shardbench.py"),
            f"--burst={n}",
            "--namespaces=4",
            "--burst-lead=20",
            f"--kubeconfig={kubeconfig}",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
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
    assert "2 shard(s): 20 tasks" in proc.stdout
