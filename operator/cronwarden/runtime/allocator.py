"""Give freed buffers back to the system: a fixed mmap threshold for glibc's malloc.

The operator's large, short-lived allocations are response bodies and what parsing
them needs: a page of 500 Jobs from the audit is megabytes of bytes, list and string
buffers, parsed in whichever worker thread is free. glibc serves an allocation of
128 KiB or more with its own mmap, unmapped on free, but raises that threshold to the
size of every such block freed (up to 32 MiB), and the trim threshold with it. After
the first freed page, pages are carved from the heap of the worker thread's arena
instead, and that arena keeps its peak: each audit that happens to land on another
thread (or a bigger page) added megabytes for good, which `make soak` showed as a
steady slope, steps at each audit.

Setting M_MMAP_THRESHOLD turns that adjustment off (and with it the trim threshold's),
so a large block is again mapped and unmapped on its own. Elsewhere than glibc this
does nothing. CRONWARDEN_MMAP_THRESHOLD (bytes) overrides the threshold; 0 leaves the
allocator as it is.

What the threshold cannot help with is the small objects a page parses into (dicts,
strings): freed in the middle of a heap, their pages stay resident until the heap's
top is free. `trim()` (glibc's malloc_trim(0), after each audit) hands every whole
free page inside every arena back to the system (madvise), which `make soak`
showed as the difference between a slow slope and a flat line.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

ENV = "CRONWARDEN_MMAP_THRESHOLD"
M_MMAP_THRESHOLD = -3  # glibc's malloc.h
DEFAULT_THRESHOLD = 128 * 1024  # glibc's initial value

log = logging.getLogger(__name__)


def threshold(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """The threshold to set, in bytes; 0 means leave the allocator alone. A value that
    is not a whole number of bytes is refused with a clear error."""
    value = environ.get(ENV, "").strip()
    if not value:
        return DEFAULT_THRESHOLD
    if not value.isdigit():
        raise SystemExit(f"{ENV}={value}: give a number of bytes (0 leaves malloc as it is)")
    return int(value)


def _libc() -> ctypes.CDLL | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def configure(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Fix glibc's mmap threshold; returns whether it was set."""
    size = threshold(environ)
    libc = _libc()
    if not size or libc is None:
        return False
    try:
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, size))
    except (OSError, AttributeError) as err:
        log.warning("could not set malloc's mmap threshold: %s", err)
        return False
    if not ok:
        log.warning("malloc refused an mmap threshold of %d bytes", size)
    return ok


def trim() -> bool:
    """Return the free pages of every malloc arena to the system (glibc's
    malloc_trim(0)); returns whether any memory was released. Elsewhere than glibc,
    or with CRONWARDEN_MMAP_THRESHOLD=0 (the allocator left alone), it does nothing."""
    libc = _libc()
    if libc is None or not threshold():
        return False
    try:
        return bool(libc.malloc_trim(0))
    except AttributeError:
        return False
