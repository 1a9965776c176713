"""An opt-in memory trace for finding what grows (`make soak SOAK_ARGS=--tracemalloc`).

With CRONWARDEN_TRACEMALLOC=DIR in the environment, the operator starts tracemalloc
(keeping CRONWARDEN_TRACEMALLOC_FRAMES frames per allocation, 25 by default; 0 does
not trace, which keeps the operator's speed) and, on each SIGUSR2, writes into DIR:
a tracemalloc snapshot (`snapshot-N.pickle`, loadable with tracemalloc.Snapshot.load)
when tracing, the count of live objects per type (`objects-N.json`), and the Python
allocator's arena statistics (`malloc-N.txt`, sys._debugmallocstats), N counting from
1. The writing happens in a thread. Off by default: tracing every allocation costs
CPU and memory, and a snapshot holds file paths.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import threading
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType

ENV = "CRONWARDEN_TRACEMALLOC"
FRAMES_ENV = "CRONWARDEN_TRACEMALLOC_FRAMES"
# Frames kept per allocation: enough to see through asyncio and kopf to the caller.
FRAMES = 25

log = logging.getLogger(__name__)


def object_counts() -> dict[str, int]:
    """Live objects tracked by the collector, per qualified type name, most first."""
    counts = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
    return dict(counts.most_common())


def malloc_stats(path: Path) -> None:
    """sys._debugmallocstats() into `path`: it writes to the C stderr, which is pointed
    at the file for the moment (lines the operator logs meanwhile land there too)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "w") as out:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Tracer:
    """Writes numbered snapshots into `directory`; dump() may be called from any thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    def dump(self) -> Path:
        with self.lock:
            self.count += 1
            n = self.count
            if tracemalloc.is_tracing():
                snapshot = tracemalloc.take_snapshot()
                snapshot.dump(str(self.directory / f"snapshot-{n}.pickle"))
                del snapshot
            malloc_stats(self.directory / f"malloc-{n}.txt")
            counts = object_counts()
            path = self.directory / f"objects-{n}.json"
            path.write_text(json.dumps(counts, indent=0) + "\n")
        log.warning("memtrace: wrote snapshot %d to %s", n, self.directory)
        return path

    def on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=self.dump, name="memtrace", daemon=True).start()


def install(environ: dict[str, str] | os._Environ[str] = os.environ) -> Tracer | None:
    """Start tracing and handle SIGUSR2 if ENV names a directory; None when it is unset.
    A value that is not a writable directory is refused with a clear error."""
    value = environ.get(ENV)
    if not value:
        return None
    directory = Path(value)
    if not directory.is_dir() or not os.access(directory, os.W_OK):
        raise SystemExit(f"{ENV}={value}: not a writable directory")
    frames = environ.get(FRAMES_ENV, str(FRAMES))
    if not frames.isdigit():
        raise SystemExit(f"{FRAMES_ENV}={frames}: not a number of frames")
    if int(frames):
        tracemalloc.start(int(frames))
    tracer = Tracer(directory)
    signal.signal(signal.SIGUSR2, tracer.on_signal)
    return tracer
