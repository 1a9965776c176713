"""Memory: the allocator setting (runtime/allocator.py) and the opt-in memory trace
(runtime/memtrace.py)."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from cronwarden.runtime import allocator, memtrace

OPERATOR = Path(__file__).resolve().parents[3] / "operator"


def test_threshold_defaults_to_glibcs_initial_value() -> None:
    assert allocator.threshold({}) == 128 * 1024
    assert allocator.threshold({allocator.ENV: " 262144 "}) == 262144


def test_threshold_zero_leaves_malloc_alone() -> None:
    assert allocator.threshold({allocator.ENV: "0"}) == 0
    assert allocator.configure({allocator.ENV: "0"}) is False


@pytest.mark.parametrize("bad", ["128k", "-1", "1.5", "lots"])
def test_threshold_refuses_what_is_not_a_number_of_bytes(bad: str) -> None:
    with pytest.raises(SystemExit, match=f"{allocator.ENV}={bad}: give a number of bytes"):
        allocator.threshold({allocator.ENV: bad})


# A child parses a page of 500 Jobs (job.json, a Job as the API server lists it: about
# 2 MB of JSON) in each of six pooled worker threads in turn, as the audit does, drops
# it, and prints how far its RSS stayed above what it was before.
JOB = Path(__file__).with_name("job.json")
CHILD = textwrap.dedent(
    """
    import json, sys, threading
    from cronwarden.runtime import allocator
    allocator.configure()

    def rss_kib():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))

    with open(sys.argv[1]) as f:
        page = json.dumps({"items": [json.load(f)] * 500}).encode()

    def parse():
        body = bytes(bytearray(page))  # a fresh buffer, as a response body is
        assert len(json.loads(body)["items"]) == 500

    def worker(mine):
        with turn:
            turn.wait_for(lambda: queue[0] == mine)
        parse()
        with turn:
            queue.pop(0)
            turn.notify_all()
        done.wait()  # a pooled thread stays, and so does its arena

    earlier = bytes(8 << 20)  # an earlier, larger response: glibc raises its threshold
    del earlier
    parse()
    before = rss_kib()
    turn, done, queue = threading.Condition(), threading.Event(), list(range(6))
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    with turn:
        turn.wait_for(lambda: not queue)
    print(rss_kib() - before)
    done.set()
    """
)


def retained_kib(threshold: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(OPERATOR), allocator.ENV: threshold}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(JOB)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_a_page_parsed_in_worker_threads_is_given_back() -> None:
    """With glibc's adjusting threshold (0: the allocator left as it was) each thread's
    arena keeps the page it parsed; with the fixed threshold the buffers go back."""
    kept_before, kept_now = retained_kib("0"), retained_kib("")
    assert kept_before > 12 * 1024, f"the adjusting threshold kept only {kept_before} KiB"
    assert kept_now < kept_before / 3, f"kept {kept_now} KiB, {kept_before} KiB before"


# A worker thread allocates 60 MB of 3 KB blocks (below the mmap threshold, as parsed
# strings and lists are) and keeps one in 50, spread over its whole heap: freed, the
# others stay resident until trim() hands their pages back.
FRAGMENTED = textwrap.dedent(
    """
    import sys, threading
    from cronwarden.runtime import allocator
    allocator.configure()

    def rss_kib():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))

    kept = []
    def work():
        blocks = [bytearray(3000) for _ in range(20000)]
        kept.extend(blocks[::50])
    t = threading.Thread(target=work)
    t.start()
    t.join()
    before = rss_kib()
    released = allocator.trim() if sys.argv[1] == "trim" else False
    print(before - rss_kib(), released)
    """
)


def given_back_kib(mode: str, threshold: str = "") -> tuple[int, bool]:
    env = {**os.environ, "PYTHONPATH": str(OPERATOR), allocator.ENV: threshold}
    out = subprocess.run(
        [sys.executable, "-c", FRAGMENTED, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    kib, released = out.stdout.split()
    return int(kib), released == "True"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_trim_gives_back_the_free_pages_of_a_fragmented_heap() -> None:
    untrimmed, _ = given_back_kib("none")
    trimmed, released = given_back_kib("trim")
    assert released
    assert untrimmed < 4 * 1024, f"{untrimmed} KiB went back with no trim"
    assert trimmed > 40 * 1024, f"trim() gave back only {trimmed} KiB of about 58 MiB free"


def test_trim_leaves_malloc_alone_when_told_to() -> None:
    kib, released = given_back_kib("trim", threshold="0")
    assert not released
    assert kib < 4 * 1024


def test_memtrace_is_off_without_its_variable() -> None:
    assert memtrace.install({}) is None


def test_memtrace_refuses_a_directory_that_is_not_there(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SystemExit, match=f"{memtrace.ENV}={missing}: not a writable directory"):
        memtrace.install({memtrace.ENV: str(missing)})


def test_memtrace_refuses_frames_that_are_not_a_number(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=f"{memtrace.FRAMES_ENV}=many"):
        memtrace.install({memtrace.ENV: str(tmp_path), memtrace.FRAMES_ENV: "many"})


def test_memtrace_writes_numbered_snapshots_on_sigusr2(tmp_path: Path) -> None:
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        tracer = memtrace.install({memtrace.ENV: str(tmp_path), memtrace.FRAMES_ENV: "5"})
        assert tracer is not None
        assert tracemalloc.is_tracing()
        os.kill(os.getpid(), signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not (tmp_path / "objects-1.json").exists():
            assert time.monotonic() < deadline, "no snapshot written within 30 s"
            time.sleep(0.05)
        tracer.dump()
    finally:
        tracemalloc.stop()
        signal.signal(signal.SIGUSR2, previous)
    for n in (1, 2):
        snapshot = tracemalloc.Snapshot.load(str(tmp_path / f"snapshot-{n}.pickle"))
        assert snapshot.traceback_limit == 5
        counts = json.loads((tmp_path / f"objects-{n}.json").read_text())
        assert counts["builtins.dict"] > 0
        assert "bytes each" in (tmp_path / f"malloc-{n}.txt").read_text()
