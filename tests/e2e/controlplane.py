"""The local control plane's processes (hack/cluster.sh, kwokctl's binary runtime,
hack/supervise.py): stop and start components, find their pids, read the
supervisor's log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.support import ROOT, STATE_DIR

CLUSTER_NAME = os.environ.get("CLUSTER_NAME", "cronwarden")
CLUSTER_DIR = STATE_DIR / "kwok" / "clusters" / CLUSTER_NAME
SUPERVISOR_LOG = STATE_DIR / "logs" / "supervisor.log"
SUPERVISOR_PID = STATE_DIR / "supervisor.pid"


def cluster_sh(*args: str) -> None:
    """Run hack/cluster.sh ARGS (up, stop-component NAME, start-component NAME, ...)."""
    subprocess.run([str(ROOT / "hack/cluster.sh"), *args], check=True, capture_output=True)


def stop_component(name: str) -> None:
    """Stop a component on purpose: the supervisor leaves it down until start_component."""
    cluster_sh("stop-component", name)


def start_component(name: str) -> None:
    cluster_sh("start-component", name)


def pid_of(name: str) -> int | None:
    """The pid kwokctl (or the supervisor, or start-component) recorded for a component."""
    try:
        return int((CLUSTER_DIR / "pids" / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    """Whether the process runs (a zombie has exited although kill -0 reaches it)."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def running(name: str) -> int | None:
    """The component's pid if it runs, else None."""
    pid = pid_of(name)
    return pid if alive(pid) else None


def supervisor_running() -> bool:
    try:
        return alive(int(SUPERVISOR_PID.read_text().strip()))
    except (OSError, ValueError):
        return False


def supervisor_log() -> str:
    try:
        return SUPERVISOR_LOG.read_text(errors="replace")
    except OSError:
        return ""


def kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Send a signal to a component as a crash would (the supervisor restarts it)."""
    os.kill(pid, sig)


def etcd_url() -> str:
    """The client URL kwokctl gave etcd (plain HTTP on 127.0.0.1), from its config."""
    for line in (CLUSTER_DIR / "kwok.yaml").read_text().splitlines():
        line = line.strip().removeprefix("- ")
        if line.startswith("--etcd-servers="):
            return line.split("=", 1)[1].split(",")[0]
    raise AssertionError(f"no --etcd-servers in {CLUSTER_DIR / 'kwok.yaml'}")


def _etcd(path: str, body: dict[str, object]) -> dict[str, Any]:
    request = urllib.request.Request(
        etcd_url() + path, data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def compact_etcd() -> int:
    """Compact etcd's history up to its current revision (through etcd's JSON gateway),
    as its periodic compaction would: a watch that resumes from an older
    resourceVersion is then answered 410 Gone, and its client must list again."""
    revision = int(_etcd("/v3/kv/range", {"key": "AA=="})["header"]["revision"])
    _etcd("/v3/kv/compaction", {"revision": str(revision), "physical": True})
    return revision


def restart(name: str) -> None:
    stop_component(name)
    start_component(name)
