"""`make chaos --small`, scenario by scenario, on the shared control plane: each
scenario's faults under a small churn (30 tasks, 12 per-minute, one repetition),
and the figures from the independent recorder must meet the README's targets, or
miss them only by what a known, reported cause explains in full (README,
"Reliability"). The run's JSON is kept in .state/chaos/ci-*.json; its table is
printed, and in the failure message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.support import ROOT, STATE_DIR

sys.path.insert(0, str(ROOT / "hack"))

from harness.report import chaos_misses


def chaos(scenarios: list[str], kubeconfig: Path) -> dict[str, object]:
    """Run the scenarios on one set-up (--together), judged as one. The JSON is kept
    beside the record in .state/chaos/, and the table printed (pytest -rA shows it)."""
    out = STATE_DIR / "chaos" / f"ci-{'+'.join(scenarios)}.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "hack" / "chaos.py"),
            "--small",
            "--together",
            *(f"--scenario={name}" for name in scenarios),
            f"--kubeconfig={kubeconfig}",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    table = proc.stdout[-6000:] + proc.stderr[-3000:]
    print(table)
    assert out.exists(), table
    (result,) = json.loads(out.read_text())["scenarios"]
    assert result["errors"] == [], table
    assert chaos_misses(result) == [], table
    assert proc.returncode == 0, table
    # The saved JSON gives the same verdict, and the README's Markdown table.
    again = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "chaos.py"), "--report", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"| figure | `{result['scenario']}` | target |" in again.stdout
    # Judged again from the record left beside it, by the same analysis: the same.
    rejudged = out.with_name(f"{out.stem}-rejudged.json")
    judged = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "chaos.py"), f"--rejudge={out}", f"--json={rejudged}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert judged.returncode == 0, judged.stdout + judged.stderr
    (same,) = json.loads(rejudged.read_text())["scenarios"]
    figures = ("runs_lost", "counted_twice", "phantoms", "missed_alerts", "false_alerts", "slots")
    assert {k: same[k] for k in figures} == {k: result[k] for k in figures}
    return dict(result)


def faults(result: dict[str, object]) -> list[str]:
    return [str(f["name"]) for f in result["fault_windows"]]  # type: ignore[attr-defined]


@pytest.mark.long(330)
def test_operator_kill_and_hand_edits(kubeconfig: Path, crd: str) -> None:
    """kill -9 of the operator just after the minute's runs finished, restarted; then
    a burst of hand edits (managed-by labels stripped, CronJobs' schedule or suspend
    changed, CronJobs and Jobs deleted): nothing lost, counted twice or regressed,
    every CronJob put back, and converged within 30 s of each."""
    result = chaos(["operator-kill", "hand-edits"], kubeconfig)
    assert faults(result) == ["kill-1", "edits-1"]
    assert result["restarts"] == 1
    assert result["runs_finished"] > 0  # the record saw the churn it judged
    assert result["slots"] > 0
    edits = " ".join(str(n) for n in result["notes"])  # type: ignore[attr-defined]
    for what in ("stripped", "schedule", "suspended", "deleted CronJob", "deleted Job"):
        assert what in edits, edits


@pytest.mark.long(300)
def test_throttling(kubeconfig: Path, crd: str) -> None:
    """The operator as its own ServiceAccount, squeezed by priority and fairness to one
    request at a time for 60 s under churn, across a minute's runs: the API server
    refused some of its requests (its audit log and APF's own counter), the operator
    sent none of them again sooner than the Retry-After, logged no traceback, lost
    nothing and converged within 30 s of the squeeze's end. Its FlowSchema matches
    that ServiceAccount only, so the test runs beside the others."""
    result = chaos(["throttling"], kubeconfig)
    seen = result["throttle"]
    assert isinstance(seen, dict)
    assert seen["rejected_429"] > 0, "the squeeze refused nothing"
    assert result["apf_rejected_requests"] > 0  # APF's own count agrees
    assert seen["retries_after_429"] > 0, "no refused request was sent again"
    assert seen["retries_sooner_than_retry_after"] == 0, seen["retry_examples_sooner"]
    assert result["operator_tracebacks"] == 0
    assert result["runs_finished"] > 0


@pytest.mark.long(470)
def test_leader_election(kubeconfig: Path, crd: str) -> None:
    """Two replicas, each its own ServiceAccount; the leader killed once, then the new
    leader frozen past its Lease and continued: no replica wrote without the Lease
    (the API server's audit log against the Lease terms the recorder saw), and each
    time another replica took over and wrote."""
    result = chaos(["leader-election"], kubeconfig)
    assert result["writes_outside_lease"] == 0
    election = result["election"]
    assert isinstance(election, dict)
    assert election["writes_audited"] > 0
    assert len(election["terms"]) >= 3  # the first leader's, and one after each fault
    kill, freeze = election["failovers"]
    for failover in (kill, freeze):
        assert failover["new_leader"] is not None, failover
        assert failover["first_write_seconds"] is not None, failover
    assert result["operator_tracebacks"] == 0


@pytest.mark.disruptive
def test_control_plane_faults_and_a_frozen_operator(kubeconfig: Path, crd: str) -> None:
    """On one set-up, one after another: kube-apiserver stopped for 20 s; etcd
    stopped for 20 s; the operator frozen (SIGSTOP) for a minute from just before a
    minute's slot, while Jobs, CronJobs and tasks are deleted and the API server
    restarts, then continued; kube-controller-manager down for 75 s. The targets hold
    after each (no false Late from the continued operator's first judgements, README
    D3); the recorder noticed its own watches break; a task created right after each
    restart and after the freeze became Ready (the blind window is measured, README
    D2); and kube-controller-manager's outage missed slots that were all flagged."""
    result = chaos(
        ["apiserver-restart", "etcd-restart", "operator-freeze", "controller-manager-down"],
        kubeconfig,
    )
    assert faults(result) == ["apiserver-1", "etcd-1", "freeze-1", "kcm-down-1"]
    assert result["recorder_gaps"] > 0
    probes = result["blind_windows"]
    assert [p["ready_seconds"] is not None for p in probes] == [True] * 3  # type: ignore[index]
    assert result["slots_missed"] > 0
    deleted = [n for n in result["notes"] if str(n).startswith("deleted ")]  # type: ignore[attr-defined]
    assert len(deleted) == 2, result["notes"]  # before and after the API server's restart
