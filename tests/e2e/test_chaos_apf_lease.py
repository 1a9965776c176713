"""`make chaos --small` for the scenarios that run the operator as its own
ServiceAccount (hack/harness/accounts.py), which touch no other test: throttling
(a FlowSchema that matches only that ServiceAccount) and leader election (two
replicas in the scenario's namespace). Both are judged from the independent
recorder and from the API server's audit log of the chaos namespaces'
ServiceAccounts (hack/cluster.sh), and must meet the README's targets."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_chaos import chaos


def test_throttling(kubeconfig: Path, crd: str, tmp_path: Path) -> None:
    """Squeezed to one request at a time for 60 s under churn, across a minute's runs:
    the API server refused some of the operator's requests, the operator sent none of
    them again sooner than the Retry-After, logged no traceback, lost nothing and
    converged within 30 s of the squeeze's end."""
    result = chaos("throttling", kubeconfig, tmp_path)
    seen = result["throttle"]
    assert isinstance(seen, dict)
    assert seen["rejected_429"] > 0, "the squeeze refused nothing"
    assert result["apf_rejected_requests"] > 0  # APF's own count agrees something was refused
    assert seen["retries_after_429"] > 0, "no refused request was sent again"
    assert seen["retries_sooner_than_retry_after"] == 0, seen["retry_examples_sooner"]
    assert result["operator_tracebacks"] == 0
    assert result["runs_finished"] > 0


def test_leader_election(kubeconfig: Path, crd: str, tmp_path: Path) -> None:
    """Two replicas; the leader killed once, then the new leader frozen past its
    Lease and continued: no replica wrote without the Lease (the audit log against
    the recorded Lease terms), and each time another replica took over and wrote."""
    result = chaos("leader-election", kubeconfig, tmp_path)
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
