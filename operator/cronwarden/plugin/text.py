"""Text helpers shaped like kubectl's output: ages, timestamps and tables. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import yaml

NONE = "<none>"


def human_duration(d: timedelta) -> str:
    """kubectl's age format (apimachinery `duration.HumanDuration`): 45s, 3m20s, 47m,
    3h20m, 30h, 3d4h, 45d, 2y30d."""
    seconds = int(d.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def age(then: datetime | None, now: datetime, *, never: str = NONE) -> str:
    """How long ago `then` was, as kubectl's AGE column shows it."""
    return never if then is None else human_duration(now - then)


def timestamp(t: datetime) -> str:
    """RFC 3339 in UTC, as the API server writes times: 2026-11-30T07:00:00Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """Columns as kubectl aligns them (Go tabwriter: minimum width 10, padding 3);
    the last column is not padded."""
    if not headers:
        return ""
    widths = [
        max(10, max(len(str(r[i])) for r in [headers, *rows]) + 3) for i in range(len(headers))
    ]
    lines = []
    for r in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=False)]
        lines.append(indent + ("".join(cells) + str(r[-1])).rstrip())
    return "\n".join(lines) + "\n"


def dump(obj: Any, output: str, out: TextIO) -> None:
    """-o json (indented as kubectl does) or -o yaml."""
    if output == "json":
        out.write(json.dumps(obj, indent=4) + "\n")
    else:
        out.write(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False))
