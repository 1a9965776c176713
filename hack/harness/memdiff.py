"""What grew between two of the operator's memory snapshots (runtime/memtrace.py).

`make soak SOAK_ARGS=--tracemalloc` asks the operator for snapshots at given minutes
(SIGUSR2) and reports here what grew between the first and the last: allocations
grouped by traceback (the innermost frames that are cronwarden's or a library's, not
the standard library's plumbing) and live objects per type. Also usable by hand:
`python hack/harness/memdiff.py DIR 1 2`.
"""

from __future__ import annotations

import json
import re
import sys
import tracemalloc
from pathlib import Path
from typing import Any

IGNORE = ("<frozen importlib._bootstrap>", "<unknown>", tracemalloc.__file__)


def load(directory: Path, n: int) -> tuple[tracemalloc.Snapshot | None, dict[str, int]]:
    """Snapshot n (None when the operator did not trace) and its object counts."""
    path = directory / f"snapshot-{n}.pickle"
    snap = tracemalloc.Snapshot.load(str(path)) if path.exists() else None
    if snap is not None:
        snap = snap.filter_traces([tracemalloc.Filter(False, p) for p in IGNORE])
    counts = json.loads((directory / f"objects-{n}.json").read_text())
    return snap, counts


def pymalloc(directory: Path, n: int) -> dict[str, int]:
    """The Python allocator's arenas and the bytes in its live blocks (malloc-n.txt)."""
    path = directory / f"malloc-{n}.txt"
    text = path.read_text() if path.exists() else ""
    out = {}
    for key, label in (
        ("arenas", "# arenas allocated current"),
        ("allocated_bytes", "# bytes in allocated blocks"),
    ):
        m = re.search(re.escape(label) + r"\s*=\s*([\d,]+)", text)
        if m:
            out[key] = int(m.group(1).replace(",", ""))
    return out


def diff(directory: Path, first: int, last: int, top: int = 25) -> dict[str, Any]:
    """The `top` tracebacks whose memory grew most, the `top` line sites likewise, and
    the object types whose counts grew most, between snapshots `first` and `last`."""
    a, ca = load(directory, first)
    b, cb = load(directory, last)
    traced = a is not None and b is not None
    by_tb = b.compare_to(a, "traceback") if traced else []
    by_line = b.compare_to(a, "lineno") if traced else []
    total_a = sum(s.size for s in a.statistics("filename")) if a is not None else 0
    total_b = sum(s.size for s in b.statistics("filename")) if b is not None else 0
    grown = sorted(
        ((t, cb.get(t, 0) - ca.get(t, 0), cb.get(t, 0)) for t in set(ca) | set(cb)),
        key=lambda x: -x[1],
    )
    return {
        "snapshots": [first, last],
        "traced_kib": [total_a / 1024, total_b / 1024],
        "pymalloc": [pymalloc(directory, first), pymalloc(directory, last)],
        "by_traceback": [
            {
                "size_diff_kib": s.size_diff / 1024,
                "count_diff": s.count_diff,
                "size_kib": s.size / 1024,
                "traceback": [f"{f.filename}:{f.lineno}" for f in s.traceback][-12:],
            }
            for s in by_tb[:top]
        ],
        "by_line": [
            {
                "size_diff_kib": s.size_diff / 1024,
                "count_diff": s.count_diff,
                "where": f"{s.traceback[-1].filename}:{s.traceback[-1].lineno}",
            }
            for s in by_line[:top]
        ],
        "objects": [{"type": t, "diff": d, "count": c} for t, d, c in grown[:top] if d > 0],
    }


def report(d: dict[str, Any]) -> str:
    a, b = d["traced_kib"]
    lines = [
        f"memtrace: snapshots {d['snapshots'][0]} -> {d['snapshots'][1]}, traced "
        f"{a / 1024:.1f} -> {b / 1024:.1f} MiB",
    ]
    pa, pb = d.get("pymalloc") or [{}, {}]
    if pa and pb:
        lines.append(
            f"  pymalloc: {pa['arenas']} -> {pb['arenas']} arenas of 1 MiB, live blocks "
            f"{pa['allocated_bytes'] / 2**20:.1f} -> {pb['allocated_bytes'] / 2**20:.1f} MiB"
        )
    lines.append("  grown most, by line:")
    lines += [
        f"    {x['size_diff_kib']:+9.1f} KiB {x['count_diff']:+8d}  {x['where']}"
        for x in d["by_line"]
    ]
    lines.append("  grown most, by traceback (innermost last):")
    for x in d["by_traceback"][:10]:
        lines.append(f"    {x['size_diff_kib']:+9.1f} KiB {x['count_diff']:+8d}")
        lines += [f"        {f}" for f in x["traceback"]]
    lines.append("  live objects grown most, by type:")
    lines += [f"    {x['diff']:+8d} {x['count']:9d}  {x['type']}" for x in d["objects"]]
    return "\n".join(lines)


if __name__ == "__main__":
    where, first, last = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    print(report(diff(where, first, last)))
