"""hack/supervise.py keeps a component's command line when a process it follows shows
none (it is exiting) or someone else's (not yet exec'ed), so that it can still
restart the component after its next exit. Real processes, a throwaway cluster dir."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hack"))

import supervise

NAME = "kube-fake"


def test_command_of() -> None:
    assert supervise.command_of(NAME, b"/x/bin/kube-fake\0--v=2\0") == ["/x/bin/kube-fake", "--v=2"]
    assert supervise.command_of(NAME, b"") is None  # an exiting process
    assert supervise.command_of(NAME, b"setsid\0/x/bin/kube-fake\0") is None  # before exec
    assert supervise.command_of(NAME, b"bash\0hack/cluster.sh\0start-component\0") is None


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Path:
    """A cluster dir whose component `kube-fake` is sleep(1) under that name."""
    for sub in ("bin", "pids", "logs"):
        (tmp_path / "cluster" / sub).mkdir(parents=True)
    sleep = shutil.which("sleep")
    assert sleep is not None
    os.symlink(sleep, tmp_path / "cluster" / "bin" / NAME)
    return tmp_path / "cluster"


def run(argv: list[str], started: list[subprocess.Popen[bytes]]) -> int:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    started.append(proc)
    return proc.pid


def until(check: object, what: str, timeout: float = 15) -> None:
    end = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def learn(sup: supervise.Supervisor, cmdline: list[str]) -> None:
    """Scan, as the supervisor does every second, until it knows the command line."""

    def known() -> bool:
        sup.scan()
        comp = sup.components.get(NAME)
        return comp is not None and comp.cmdline == cmdline

    until(known, f"the supervisor to learn {cmdline}")


def test_a_command_line_read_from_an_exiting_process_does_not_replace_the_known_one(
    cluster_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = str(cluster_dir / "bin" / NAME)
    pidfile = cluster_dir / "pids" / f"{NAME}.pid"
    started: list[subprocess.Popen[bytes]] = []
    sup = supervise.Supervisor(cluster_dir, tmp_path / "state")
    try:
        pidfile.write_text(str(run([binary, "300"], started)))
        learn(sup, [binary, "300"])
        comp = sup.components[NAME]

        # Started again by hand, and exiting as the supervisor first reads it: its
        # /proc cmdline is empty then.
        exiting = run([binary, "301"], started)
        real = Path.read_bytes

        def read_bytes(path: Path) -> bytes:
            return b"" if str(path) == f"/proc/{exiting}/cmdline" else real(path)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        pidfile.write_text(str(exiting))
        sup.scan()
        assert comp.pid == exiting
        assert comp.cmdline == [binary, "300"]
        assert (tmp_path / "state" / "supervisor" / f"{NAME}.cmdline").read_text().split() == [
            binary,
            "300",
        ]

        # It exits: the supervisor restarts it with the command line it knows.
        os.kill(exiting, signal.SIGKILL)
        started[-1].wait()

        def restarted() -> bool:
            sup.scan()
            sup.check()
            return comp.pid not in (None, exiting) and comp.restarts == 1

        until(restarted, "the supervisor to restart the component")
        assert comp.pid is not None
        assert real(Path(f"/proc/{comp.pid}/cmdline")).split(b"\0")[0] == binary.encode()
    finally:
        for proc in started:
            proc.kill()
            proc.wait()
        for comp in sup.components.values():
            if comp.child is not None:
                comp.child.kill()
                comp.child.wait()


def test_a_process_that_has_not_exec_ed_the_component_yet_is_learnt_once_it_has(
    cluster_dir: Path, tmp_path: Path
) -> None:
    """start-component writes the pid file right after the fork: the supervisor may
    first see the shell (here: a process that is not the component's binary)."""
    binary = str(cluster_dir / "bin" / NAME)
    pidfile = cluster_dir / "pids" / f"{NAME}.pid"
    started: list[subprocess.Popen[bytes]] = []
    sup = supervise.Supervisor(cluster_dir, tmp_path / "state")
    try:
        pidfile.write_text(str(run([binary, "300"], started)))
        learn(sup, [binary, "300"])
        comp = sup.components[NAME]
        # A process that execs the component's binary when told to (SIGUSR1).
        code = (
            "import os, signal; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1]); "
            "print(flush=True); signal.sigwait([signal.SIGUSR1]); "
            f"os.execv({binary!r}, [{binary!r}, '302'])"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        started.append(proc)
        assert proc.stdout is not None
        proc.stdout.readline()  # SIGUSR1 is blocked from here on
        pidfile.write_text(str(proc.pid))
        sup.scan()
        assert comp.pid == proc.pid
        assert comp.cmdline == [binary, "300"]
        os.kill(proc.pid, signal.SIGUSR1)

        def learnt() -> bool:
            sup.scan()
            return comp.cmdline == [binary, "302"]

        until(learnt, "the supervisor to learn the command line once exec'ed")
        assert comp.pid == proc.pid
    finally:
        for proc in started:
            proc.kill()
            proc.wait()
