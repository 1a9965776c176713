"""One chaos scenario's run: the recorder, the operator (restarted as a Deployment would
restart it), the load, fault windows, convergence after each fault, and the figures.

A scenario (harness/scenarios.py) only says which faults to inject and when:

    with run.fault("kill-1"):
        run.kill_operator()
        run.restart_operator()
    run.settle()
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config

from harness.accounts import Accounts
from harness.analysis import SETTLE, Fault, analyse, parse_record
from harness.convergence import convergence_figures
from harness.load import GRACE_SECONDS, apply_chunked, chaos_task, chaos_tasks
from harness.measure import proc_memory
from harness.recorded import parse_time
from harness.setup import (
    GROUP,
    PLURAL,
    ROOT,
    VERSION,
    BenchError,
    Operator,
    cluster_ready,
    log,
)

RECORDER = Path(__file__).resolve().parent / "recorder.py"
MANAGED = "app.kubernetes.io/managed-by=cronwarden"
CONVERGE_DEADLINE = 180.0  # seconds after a fault's end; past it, "not converged"
# The live check's allowance for a status behind a Job's latest change (ChaosRun.converged),
# and the pause between two checks (ChaosRun.wait_converged).
PACE_LAG = 15.0
LIVE_CHECK_PERIOD = 5.0


def changed_at(job: dict[str, Any]) -> float:
    """When a Job last changed in a way a status shows: its end, or else its creation."""
    ends = [
        parse_time(c.get("lastTransitionTime")) or 0.0
        for c in (job.get("status") or {}).get("conditions") or []
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
    ]
    return max(ends) if ends else parse_time(job["metadata"].get("creationTimestamp")) or 0.0


class ChaosRun:
    def __init__(
        self,
        kc: Path,
        root: Path,
        out_dir: Path,
        scenario: str,
        namespace: str,
        seed: int,
        operator_args: tuple[str, ...] = (),
        small: bool = False,
    ) -> None:
        self.kc, self.root, self.out_dir, self.ns = kc, root, out_dir, namespace
        self.scenario = scenario
        self.small = small
        self.rng = random.Random(seed)
        self.operator_args = operator_args
        self.record_path = out_dir / f"{scenario}-record.jsonl"
        self.record_path.unlink(missing_ok=True)
        self.api = config.new_client_from_config(config_file=str(kc))
        self.custom = client.CustomObjectsApi(self.api)
        self.recorder: subprocess.Popen[bytes] | None = None
        self.ops: dict[str, Operator] = {}
        # replica -> (kubeconfig, environment) it runs with, kept for its restarts
        self.launch: dict[str, tuple[Path, dict[str, str] | None]] = {}
        # Run first when the run finishes, operators still up (scrape, then clean up);
        # what they return goes into the figures, what they raise into the errors.
        self.at_finish: list[Callable[[], dict[str, Any]]] = []
        self.extra: dict[str, Any] = {}  # a scenario's own figures, merged into the result
        self.accounts: Accounts | None = None  # set when the operator runs as its own user
        self.expected_exit: set[int] = set()
        self.faults: list[Fault] = []
        self.convergence: list[float | None] = []
        self.crashes = 0
        self.restarts = 0
        self.notes: list[str] = []
        self.rss_before_kib: int | None = None
        self.blind: list[dict[str, Any]] = []

    # Processes

    def start_recorder(self, deadline: float = 90) -> None:
        python = ROOT / ".venv" / "bin" / "python"
        cmd = [str(python), str(RECORDER), f"--kubeconfig={self.kc}", f"--namespace={self.ns}"]
        cmd.append(f"--out={self.record_path}")
        err = open(self.out_dir / f"{self.scenario}-recorder.log", "w")  # noqa: SIM115
        self.recorder = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT)
        end = time.monotonic() + deadline
        while '"kind": "synced"' not in self.record_text():
            if self.recorder.poll() is not None:
                raise BenchError(
                    f"the recorder exited ({self.recorder.returncode}); see {err.name}"
                )
            if time.monotonic() > end:
                raise BenchError(f"the recorder did not list in {deadline:.0f}s")
            time.sleep(0.2)
        log(f"recorder pid {self.recorder.pid} synced ({self.record_path})")

    def record_text(self) -> str:
        try:
            return self.record_path.read_text()
        except OSError:
            return ""

    def start_operator(
        self, replica: str = "op", env: dict[str, str] | None = None, kc: Path | None = None
    ) -> Operator:
        """Start a replica: with the admin kubeconfig unless given another (a
        ServiceAccount's, harness/accounts.py). Its restarts use the same."""
        kc = kc or self.launch.get(replica, (self.kc, None))[0]
        restart = replica in self.launch  # a restart appends to the replica's log
        self.launch[replica] = (kc, env)
        op = Operator(
            self.root,
            kc,
            self.out_dir / f"{self.scenario}-{replica}.log",
            resync=60,
            namespaces=(self.ns,),
            extra_args=self.operator_args,
            env=env,
            append_log=restart,
        )
        self.ops[replica] = op
        return op

    @property
    def op(self) -> Operator:
        return self.ops["op"]

    def kill_operator(self, replica: str = "op", sig: signal.Signals = signal.SIGKILL) -> None:
        op = self.ops[replica]
        self.expected_exit.add(op.pid)
        os.kill(op.pid, sig)
        op.proc.wait(timeout=30)

    def restart_operator(self, replica: str = "op") -> None:
        self.restarts += 1
        kc, env = self.launch[replica]
        self.start_operator(replica, env, kc)

    def check_operators(self) -> None:
        """An operator that exited on its own is a crash: count it and start it again."""
        for replica, op in list(self.ops.items()):
            if op.proc.poll() is not None and op.pid not in self.expected_exit:
                self.crashes += 1
                self.expected_exit.add(op.pid)
                self.notes.append(f"{replica} (pid {op.pid}) exited {op.proc.returncode} by itself")
                log(f"operator {replica} crashed ({op.proc.returncode}); restarting it")
                with self.fault(f"crash-{self.crashes}"):
                    self.restart_operator(replica)

    # Time

    def wait_until(self, moment: float) -> None:
        """Wait for a wall-clock moment (Unix time), watching the operators meanwhile."""
        while (left := moment - time.time()) > 0:
            time.sleep(min(left, 1.0))
            self.check_operators()

    def random_moment(self) -> float:
        """A random moment to start a fault: within the next 40 s (--small: 10 s)."""
        return time.time() + self.rng.uniform(1, 10 if self.small else 40)

    def next_minute(self, offset: float) -> float:
        return (time.time() // 60 + 1) * 60 + offset

    def wait_api(self, deadline: float = 120) -> None:
        """Wait until the API server answers /readyz again."""
        end = time.monotonic() + deadline
        while not cluster_ready(self.kc):
            if time.monotonic() > end:
                raise BenchError(f"the API server is not ready {deadline:.0f}s after its start")
            time.sleep(0.2)

    def blind_window(self, name: str, deadline: float = 120) -> None:
        """Create a task right now and measure how long until it is Ready; the
        operator's request retries logged since the last fault began go with it."""
        obj = chaos_task(name, self.ns, "never")
        start = time.time()
        created = False
        ready = None
        while time.time() < start + deadline:
            try:  # a just-started API server may refuse a request or two
                if not created:
                    self.custom.create_namespaced_custom_object(
                        GROUP, VERSION, self.ns, PLURAL, obj, _request_timeout=10
                    )
                    created = True
                got: Any = self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.ns, PLURAL, name, _request_timeout=10
                )
            except client.ApiException as err:
                if err.status == 409 and not created:  # ours, if a lost reply was retried
                    with contextlib.suppress(client.ApiException):
                        created = self.created_since(name, start)
                    continue
                self.notes.append(f"{name}: {err.status} {err.reason} right after the fault")
                time.sleep(0.2)
                continue
            except urllib3.exceptions.HTTPError as err:
                # No answer within the timeout: etcd was back and /readyz answered, but the
                # create waited on storage (etcd-restart). It may have been made: the next
                # try's 409 says so.
                self.notes.append(f"{name}: {type(err).__name__} right after the fault")
                time.sleep(0.2)
                continue
            conds = (got.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                ready = time.time() - start
                break
            time.sleep(0.1)
        retries = [
            line
            for op in self.ops.values()
            for line in op.log_path.read_text(errors="replace").splitlines()
            if "Request attempt" in line and "will retry" in line
        ]
        self.blind.append(
            {
                "task": name,
                "after_fault": self.faults[-1].name if self.faults else None,
                "ready_seconds": ready,
                "operator_retries_logged_so_far": len(retries),
                "last_retries": [line[:300] for line in retries[-4:]],
            }
        )
        log(f"blind window: {name} Ready after {ready if ready is None else round(ready, 1)}s")

    def created_since(self, name: str, start: float) -> bool:
        """Whether the task `name` was created at `start` or later (by this probe);
        an older one means two probes share the name."""
        got: Any = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name, _request_timeout=10
        )
        when = got["metadata"]["creationTimestamp"].replace("Z", "+00:00")
        if datetime.fromisoformat(when).timestamp() < int(start):
            raise BenchError(f"the probe task {name} exists already")
        return True

    # Load and faults

    def apply_load(self, n: int, per_minute: int) -> None:
        tasks = chaos_tasks(n, per_minute, self.ns)
        apply_chunked(self.kc, tasks, 500, time.monotonic() + 900)
        log(f"{n} tasks applied ({per_minute} per-minute); waiting for them to converge")
        waited = self.wait_converged(time.time(), 600)
        if waited is None:
            raise BenchError(f"the tasks did not converge in 600s: {self.converged()[1]}")
        # Every per-minute task runs once before the first fault.
        log(f"converged in {waited:.0f}s; waiting for the first runs")
        self.wait_until(self.next_minute(25))
        self.rss_before_kib = max(proc_memory(op.pid)["VmRSS"] for op in self.ops.values())

    @contextlib.contextmanager
    def fault(self, name: str) -> Iterator[None]:
        start = time.time()
        log(f"fault {name}: start")
        try:
            yield
        finally:
            self.faults.append(Fault(name, start, time.time()))
            log(f"fault {name}: ended after {time.time() - start:.1f}s")

    def settle(self) -> None:
        """After a fault: measure convergence, then let the checkpoint (end + SETTLE) pass."""
        end = self.faults[-1].end
        self.convergence.append(self.wait_converged(end, CONVERGE_DEADLINE))
        took = self.convergence[-1]
        if took is None:
            why = self.converged()[1]
            log(f"live check failing {CONVERGE_DEADLINE:.0f}s after the fault: {why}")
        else:
            log(f"live check passed {took:.1f}s after the fault ended")
        self.wait_until(end + SETTLE + 2)

    def wait_converged(self, since: float, deadline: float) -> float | None:
        """Seconds from `since` until the live check passes (None: not by the deadline).
        It lists every task, CronJob and Job of the namespace, which under the full mix
        keeps the API server busy (and the operator under test starved of CPU on a small
        machine) when done back to back: it waits LIVE_CHECK_PERIOD between checks."""
        while time.time() < since + deadline:
            self.check_operators()
            with contextlib.suppress(Exception):  # the API may still be coming back
                if self.converged()[0]:
                    return max(time.time() - since, 0.0)
            time.sleep(LIVE_CHECK_PERIOD)
        return None

    def converged(self) -> tuple[bool, str]:
        """Every task Ready at its generation with exactly one CronJob of its own, with
        the managed-by label and the task's schedule and suspend, its status.active the
        Jobs of that CronJob that have not finished, and its last success no older than
        the CronJob's; except what changed in the last PACE_LAG seconds. This only paces
        the run (harness/convergence.py measures convergence from the record): its three
        listings come one after the other, and under 200 runs a minute Jobs are created
        or finish during most of every minute, so an exact match may never be seen."""
        ns = self.ns
        tasks = self.list(GROUP, VERSION, PLURAL)
        cronjobs = self.list("batch", "v1", "cronjobs")
        jobs = self.list("batch", "v1", "jobs")
        now = time.time()
        recent = {j["metadata"]["name"] for j in jobs if now - changed_at(j) < PACE_LAG}
        owned: dict[str, list[dict[str, Any]]] = {}
        for cj in cronjobs:
            for ref in cj["metadata"].get("ownerReferences") or []:
                if ref.get("controller"):
                    owned.setdefault(ref["uid"], []).append(cj)
        running: dict[str, set[str]] = {}
        for job in jobs:
            done = any(
                c["type"] in ("Complete", "Failed") and c["status"] == "True"
                for c in (job.get("status") or {}).get("conditions") or []
            )
            for ref in job["metadata"].get("ownerReferences") or []:
                if ref.get("controller") and not done:
                    running.setdefault(ref["uid"], set()).add(job["metadata"]["name"])
        for t in tasks:
            name, status = t["metadata"]["name"], t.get("status") or {}
            ready = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
            if not ready or ready[0]["status"] != "True":
                return False, f"{ns}/{name} not Ready"
            if status.get("observedGeneration") != t["metadata"]["generation"]:
                return False, f"{ns}/{name} observedGeneration behind"
            mine = owned.get(t["metadata"]["uid"], [])
            if len(mine) != 1:
                return False, f"{ns}/{name} has {len(mine)} CronJobs"
            cj = mine[0]
            if (cj["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") != (
                "cronwarden"
            ):
                return False, f"{ns}/{name}: CronJob without the managed-by label"
            want = running.get(cj["metadata"]["uid"], set())
            if (set(status.get("active") or []) ^ want) - recent:
                return False, f"{ns}/{name} active {status.get('active')} != {sorted(want)}"
            spec, want = cj.get("spec") or {}, t.get("spec") or {}
            if spec.get("schedule") != want.get("schedule"):
                return False, f"{ns}/{name}: CronJob schedule {spec.get('schedule')!r}"
            if bool(spec.get("suspend")) != bool(want.get("suspend")):
                return False, f"{ns}/{name}: CronJob suspend {spec.get('suspend')}"
            floor = (cj.get("status") or {}).get("lastSuccessfulTime")
            behind = floor and (status.get("lastSuccessfulTime") or "") < floor
            if behind and now - (parse_time(floor) or 0.0) >= PACE_LAG:
                return False, f"{ns}/{name} lastSuccessfulTime behind the CronJob's"
        return True, "converged"

    def list(self, group: str, version: str, plural: str) -> list[dict[str, Any]]:
        out: Any = self.custom.list_namespaced_custom_object(
            group, version, self.ns, plural, _request_timeout=30
        )
        items: list[dict[str, Any]] = out["items"]
        return items

    # The end

    def tail(self) -> None:
        """Let the record run on until a slot after the last fault can be judged
        (its grace and the settle time have passed): a missed alert needs that long."""
        if self.faults:
            slot = (self.faults[-1].end // 60 + 1) * 60
            self.wait_until(slot + GRACE_SECONDS + SETTLE + 3)

    def finish(self, started: float) -> dict[str, Any]:
        """Stop the operators and the recorder; compute the figures."""
        self.check_operators()
        extra: dict[str, Any] = dict(self.extra)
        errors: list[str] = []
        for step in self.at_finish:
            try:
                extra.update(step())
            except Exception as err:  # one failed step must not skip the others
                errors.append(f"{getattr(step, '__name__', step)}: {type(err).__name__}: {err}")
        rss_after = {r: proc_memory(op.pid)["VmRSS"] for r, op in self.ops.items() if op.alive()}
        logs = {r: op.log_summary() for r, op in self.ops.items()}
        stopped = time.time()
        for op in self.ops.values():
            op.stop()
        if self.recorder is not None:
            self.recorder.send_signal(signal.SIGTERM)
            try:
                self.recorder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.recorder.kill()
                self.notes.append("the recorder did not stop on SIGTERM in 30s")
        records = parse_record(self.record_text())
        figures = analyse(records, self.faults, GRACE_SECONDS, until=stopped)
        tracebacks = sum(s["tracebacks"] for s in logs.values())
        return {
            "scenario": self.scenario,
            "faults": len(self.faults),
            "fault_windows": [
                {"name": f.name, "start": f.start, "end": f.end, "seconds": f.end - f.start}
                for f in self.faults
            ],
            # The pace of the scenario, not a figure (harness/convergence.py says why).
            "live_convergence_seconds": self.convergence,
            "operators_stopped": stopped,  # what the record is judged up to (--rejudge)
            **convergence_figures(records, [f.end for f in self.faults], until=stopped),
            "crashes": self.crashes,
            "restarts": self.restarts,
            "operator_tracebacks": tracebacks,
            "rss_before_kib": self.rss_before_kib,
            "rss_after_kib": max(rss_after.values()) if rss_after else None,
            "records": len(records),
            "duration_seconds": time.time() - started,
            "notes": self.notes,
            "blind_windows": self.blind,
            "blind_window_max_seconds": max(
                (b["ready_seconds"] or float("inf") for b in self.blind), default=None
            ),
            "operator_logs": logs,
            "errors": errors,
            **figures,
            **extra,
        }
