"""The chaos scenarios, one function each: which faults, and when. Each takes the run
and the number of repetitions (the full run's count, or 1 with --small)."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness import election, throttle
from harness.chaosrun import ChaosRun
from harness.edits import hand_edits
from harness.freeze import operator_freeze
from harness.setup import start_component, stop_component


def operator_kill(run: ChaosRun, times: int) -> None:
    """kill -9 of the operator at random moments, half of them just after a minute
    boundary (while the per-minute runs finish), restarted after 0-5 s as a
    Deployment's pod would be. The fault lasts until the new process is live."""
    for i in range(times):
        if i % 2 == 0:
            at = run.next_minute(run.rng.uniform(0.5, 4.0))
        else:
            at = run.rng.uniform(5, 40) + time.time()
        run.wait_until(at)
        with run.fault(f"kill-{i + 1}"):
            run.kill_operator()
            run.wait_until(time.time() + run.rng.uniform(0, 5))
            run.restart_operator()
        run.settle()


def apiserver_restart(run: ChaosRun, times: int) -> None:
    """kube-apiserver stopped for 20 s (SIGTERM, then SIGKILL after 10 s, as the
    kubelet does) at a random moment, and started again; the fault lasts until it is
    ready. Then the blind window: a task created right after it came back, and the
    time until it is Ready."""
    for i in range(times):
        run.wait_until(run.random_moment())
        with run.fault(f"apiserver-{i + 1}"):
            stop_component("kube-apiserver")
            run.wait_until(time.time() + 20)
            start_component("kube-apiserver")  # fails clearly if its port was taken
            run.wait_api()
        run.blind_window(f"probe-apiserver-{i + 1}")
        run.settle()


def etcd_restart(run: ChaosRun, times: int) -> None:
    """etcd stopped for 20 s and started again; the fault lasts until the API server
    is ready again. Then the blind window, as after an API server restart."""
    for i in range(times):
        run.wait_until(run.random_moment())
        with run.fault(f"etcd-{i + 1}"):
            stop_component("etcd")
            run.wait_until(time.time() + 20)
            start_component("etcd")
            run.wait_api()
        run.blind_window(f"probe-etcd-{i + 1}")
        run.settle()


def controller_manager_down(run: ChaosRun, times: int) -> None:
    """kube-controller-manager stopped for 5 minutes (--small: 75 s), so that slots pass
    with no Job: each must be flagged Late, and nothing else may go wrong when the
    CronJob controller comes back and starts the latest missed slot."""
    seconds = 75 if run.small else 300
    for i in range(times):
        run.wait_until(run.random_moment())
        with run.fault(f"kcm-down-{i + 1}"):
            stop_component("kube-controller-manager")
            run.wait_until(time.time() + seconds)
            start_component("kube-controller-manager")
        run.settle()


# name -> (scenario, repetitions in the full run)
SCENARIOS: dict[str, tuple[Callable[[ChaosRun, int], None], int]] = {
    "operator-kill": (operator_kill, 20),
    "apiserver-restart": (apiserver_restart, 3),
    "etcd-restart": (etcd_restart, 3),
    "controller-manager-down": (controller_manager_down, 1),
    "operator-freeze": (operator_freeze, 3),
    "hand-edits": (hand_edits, 5),
    "throttling": (throttle.throttling, 1),
    "leader-election": (election.leader_election, 5),
}

# Scenarios that start their operators themselves (as their own ServiceAccounts);
# the others run one replica with the admin kubeconfig.
STARTERS: dict[str, Callable[[ChaosRun], None]] = {
    "throttling": throttle.start,
    "leader-election": election.start,
}
