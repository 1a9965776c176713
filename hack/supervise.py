#!/usr/bin/env python3
"""Restart the local control plane's components when they exit, as the kubelet
restarts static pods.

kwokctl's binary runtime starts etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok-controller as detached processes and records each pid in
CLUSTER_DIR/pids/NAME.pid; nothing restarts them. In a real cluster they are
static pods: when kube-controller-manager exits because it lost its leader
election (an API server outage longer than its renew deadline), the kubelet
starts it again. This supervisor does the same for the local cluster:

- It learns each component's command line and working directory from /proc
  while the component runs (and keeps them in STATE_DIR/supervisor/). Only a
  command line whose program is the component's own binary is learnt: a process
  that is exiting shows an empty one, and one just forked by `start-component`
  still shows the shell's; the last known command line stays until the real one
  can be read.
- It waits for exits with pidfds (no polling of the processes), re-reading the
  pid files every second, so a component started by `cluster.sh start-component`
  is followed too.
- A component that exits is started again after a back-off: 1 s, doubling on
  each exit that comes sooner than STABLE_SECONDS after its start, up to 30 s;
  it resets once the component has stayed up for STABLE_SECONDS. Every exit
  and restart is logged.
- A component stopped on purpose (`cluster.sh stop-component NAME` creates
  STATE_DIR/stopped/NAME) is left alone until `start-component` removes the mark.
  STATE_DIR/components.lock serialises these decisions with cluster.sh.

It runs until SIGTERM (`cluster.sh down`) or until the cluster directory is gone.
Standard library only: it runs before and without the project's venv.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
STABLE_SECONDS = 60.0
RESCAN_SECONDS = 1.0


def log(message: str) -> None:
    stamp = datetime.now().astimezone().isoformat(timespec="milliseconds")
    print(f"{stamp} supervise: {message}", flush=True)


def alive(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The state follows the command name in parentheses, which may hold spaces.
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def now() -> float:
    """Seconds since boot: the clock of /proc/PID/stat's start times."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def started(pid: int) -> float:
    """When the process started, in seconds since boot (now() if unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return now()
    return ticks / os.sysconf("SC_CLK_TCK")


def command_of(name: str, raw: bytes) -> list[str] | None:
    """The command line in /proc/PID/cmdline form, if its program is the component's
    binary (named as the component); None for an exiting process (empty) or one
    that has not yet exec'ed it (a shell, setsid)."""
    args = [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]
    if not args or Path(args[0]).name != name:
        return None
    return args


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass
class Component:
    name: str
    pid: int | None = None
    pidfd: int | None = None
    started_at: float = field(default_factory=now)
    cmdline: list[str] = field(default_factory=list)
    cwd: str = "/"
    backoff: float = BACKOFF_START
    restart_at: float | None = None  # when a pending restart is due (now() clock)
    exited_at: float | None = None
    restarts: int = 0
    learnt: int | None = None  # the pid whose command line is the one known
    child: subprocess.Popen[bytes] | None = None  # when this supervisor started it


class Supervisor:
    def __init__(self, cluster_dir: Path, state_dir: Path) -> None:
        self.cluster_dir = cluster_dir
        self.pids = cluster_dir / "pids"
        self.logs = cluster_dir / "logs"
        self.stopped = state_dir / "stopped"
        self.saved = state_dir / "supervisor"
        self.lock_path = state_dir / "components.lock"
        self.components: dict[str, Component] = {}
        self.running = True
        self.saved.mkdir(parents=True, exist_ok=True)
        # Signals wake the select() at once through this pipe.
        self.wakeup_r, wakeup_w = os.pipe()
        os.set_blocking(wakeup_w, False)
        signal.set_wakeup_fd(wakeup_w)

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log(f"received {signal.Signals(signum).name}; stopping (components keep running)")
        self.running = False

    # What is running

    def scan(self) -> None:
        """Follow the pid files: learn new components and pids started by others."""
        for path in sorted(self.pids.glob("*.pid")):
            name = path.stem
            comp = self.components.setdefault(name, self.load(name))
            pid = read_pid(path)
            if pid is not None and pid == comp.pid and comp.learnt != pid and alive(pid):
                self.learn(comp)  # not yet exec'ed when it was first seen
            if pid is None or pid == comp.pid:
                continue
            if alive(pid):
                self.follow(comp, pid)
            else:
                # Started by someone else and exited before it could be followed:
                # check() treats it as an exit like any other.
                comp.pid, comp.exited_at, comp.started_at = pid, None, now()

    def follow(self, comp: Component, pid: int) -> None:
        if comp.pidfd is not None:
            os.close(comp.pidfd)
        try:
            comp.pidfd = os.pidfd_open(pid)
        except OSError:
            comp.pidfd = None
            return  # it exited just now; the next scan sees that
        comp.pid = pid
        comp.exited_at = None
        comp.restart_at = None
        comp.started_at = started(pid)
        self.learn(comp)

    def learn(self, comp: Component) -> None:
        """Take the running process's command line and directory, if they are the
        component's own (see the module's docstring); keep the known ones otherwise."""
        if comp.pid is None:
            return
        try:
            raw = self.read_cmdline(comp.pid)
            cwd = os.readlink(f"/proc/{comp.pid}/cwd")
        except OSError:
            return
        cmdline = command_of(comp.name, raw)
        if cmdline is None:
            return
        comp.cmdline, comp.cwd, comp.learnt = cmdline, cwd, comp.pid
        self.save(comp)

    def read_cmdline(self, pid: int) -> bytes:
        return Path(f"/proc/{pid}/cmdline").read_bytes()

    def save(self, comp: Component) -> None:
        (self.saved / f"{comp.name}.cmdline").write_text("\n".join(comp.cmdline) + "\n")
        (self.saved / f"{comp.name}.cwd").write_text(comp.cwd + "\n")

    def load(self, name: str) -> Component:
        """A component known from an earlier run of the supervisor, if any."""
        comp = Component(name)
        try:
            comp.cmdline = (self.saved / f"{name}.cmdline").read_text().splitlines()
            comp.cwd = (self.saved / f"{name}.cwd").read_text().strip()
        except OSError:
            pass
        return comp

    # Exits and restarts

    def wait(self) -> None:
        """Sleep until a followed process exits, a restart is due, or it is time to rescan."""
        at = now()
        due = [c.restart_at for c in self.components.values() if c.restart_at is not None]
        timeout = min([RESCAN_SECONDS, *(max(d - at, 0.0) for d in due)])
        fds = [c.pidfd for c in self.components.values() if c.pidfd is not None]
        ready, _, _ = select.select([self.wakeup_r, *fds], [], [], timeout)
        if self.wakeup_r in ready:
            os.read(self.wakeup_r, 512)

    def check(self) -> None:
        at = now()
        for comp in self.components.values():
            if comp.child is not None and comp.child.poll() is not None:
                comp.child = None  # reaped
            if comp.pid is not None and comp.exited_at is None and not alive(comp.pid):
                self.exited(comp, at)
            if comp.restart_at is not None and at >= comp.restart_at:
                self.restart(comp)

    def exited(self, comp: Component, at: float) -> None:
        if comp.pidfd is not None:
            os.close(comp.pidfd)
            comp.pidfd = None
        comp.exited_at = at
        uptime = at - comp.started_at
        if (self.stopped / comp.name).exists():
            log(f"{comp.name} (pid {comp.pid}) stopped on purpose; not restarting it")
            return
        if uptime >= STABLE_SECONDS:
            comp.backoff = BACKOFF_START
        delay = comp.backoff
        comp.backoff = min(comp.backoff * 2, BACKOFF_MAX)
        comp.restart_at = at + delay
        log(
            f"{comp.name} (pid {comp.pid}) exited after {uptime:.1f}s; "
            f"restarting it in {delay:.0f}s (restart {comp.restarts + 1})"
        )

    def restart(self, comp: Component) -> None:
        comp.restart_at = None
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (self.stopped / comp.name).exists():
                log(f"{comp.name} was stopped on purpose meanwhile; not restarting it")
                return
            pid = read_pid(self.pids / f"{comp.name}.pid")
            if pid is not None and pid != comp.pid and alive(pid):
                log(f"{comp.name} was started by someone else meanwhile (pid {pid})")
                self.follow(comp, pid)
                return
            if not comp.cmdline:
                log(f"{comp.name}: command line unknown; cannot restart it")
                return
            with open(self.logs / f"{comp.name}.log", "ab") as out:
                child = subprocess.Popen(
                    comp.cmdline,
                    cwd=comp.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # detached, as kwokctl starts it
                )
            (self.pids / f"{comp.name}.pid").write_text(str(child.pid))
        comp.restarts += 1
        comp.child = child
        log(f"{comp.name} restarted (pid {child.pid}, restart {comp.restarts})")
        self.follow(comp, child.pid)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.scan()
        names = ", ".join(f"{c.name} (pid {c.pid})" for c in self.components.values())
        log(f"supervising {names}")
        while self.running:
            if not self.pids.is_dir():
                log(f"{self.pids} is gone (cluster deleted); exiting")
                return 0
            self.wait()
            if not self.running:
                break
            self.scan()
            self.check()
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Restart the local control plane's components when they exit, with "
        "back-off, unless stopped on purpose (hack/cluster.sh starts and stops it)."
    )
    parser.add_argument("--cluster-dir", type=Path, required=True, help="kwokctl's cluster dir")
    parser.add_argument(
        "--state-dir", type=Path, required=True, help="project state (marks and the lock)"
    )
    args = parser.parse_args()
    return Supervisor(args.cluster_dir, args.state_dir).run()


if __name__ == "__main__":
    sys.exit(main())
