"""`kubectl cronwarden next`: the coming slots of a schedule, exactly as the CronJob
controller computes them (cronwarden.core.schedule, robfig/cron v3). Pure."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from cronwarden.core import schedule
from cronwarden.core.schedule_robfig import go_parse_duration
from cronwarden.plugin.names import DEFAULT_TIME_ZONE
from cronwarden.plugin.text import human_duration, table, timestamp

# The ScheduledTask CRD's rule on spec.schedule's @every (cronwarden.api.crd, in CEL):
# a Go duration of at least one minute. tests/unit/plugin/test_slots.py keeps the two equal.
GO_DURATION = r"^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$"
EVERY_MESSAGE = (
    "spec.schedule: @every must be at least 1m (a Go duration such as 5m or 1h30m): "
    "the CronJob controller starts at most one run per minute"
)


def crd_refusal(expression: str) -> str | None:
    """The message of the CRD rule that refuses this schedule, or None. The CRD checks
    more than robfig does: `@every 30s` is a valid robfig schedule but not a valid task."""
    text = expression.strip()
    if not text.startswith("@every"):
        return None
    duration = text[len("@every") :].strip()
    nanos = go_parse_duration(duration) if re.match(GO_DURATION, duration) else None
    if nanos is None or nanos < 60 * 10**9:
        return EVERY_MESSAGE
    return None


@dataclass(frozen=True)
class Upcoming:
    schedule: str
    time_zone: str
    start: datetime
    slots: list[datetime]
    notes: list[str]  # daylight-saving changes up to the last slot shown


def zone(name: str) -> tzinfo:
    return UTC if name == DEFAULT_TIME_ZONE else ZoneInfo(name)


def parse_from(value: str, time_zone: str | None) -> datetime:
    """--from: RFC 3339 / ISO 8601; a time without an offset is wall time in the zone.

    Raises ValueError (with the option named) for anything else."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--from: {value!r} is not a time (expected ISO 8601 such as 2027-03-27T00:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone(time_zone or DEFAULT_TIME_ZONE))
    return when.astimezone(UTC)


def upcoming(expression: str, time_zone: str | None, start: datetime, count: int) -> Upcoming:
    """The first `count` slots strictly after `start`. Raises schedule.ScheduleError or
    schedule.UnknownTimeZoneError as the operator would report them."""
    parsed = schedule.parse(expression, time_zone)
    slots: list[datetime] = []
    t = parsed.next(start)
    while t is not None and len(slots) < count:
        slots.append(t)
        t = parsed.next(t)
    notes: list[str] = []
    if slots:
        days = max(1, math.ceil((slots[-1] - start).total_seconds() / 86400))
        notes = parsed.dst_notes(start, days=days)
    return Upcoming(expression, parsed.time_zone, start, slots, notes)


def local(t: datetime, name: str, *, seconds: bool = False) -> str:
    """Wall time in the zone, with its abbreviation, offset and weekday; with seconds
    where they matter (slots off the minute, as @every makes them)."""
    w = t.astimezone(zone(name))
    offset = w.strftime("%z")
    clock = f"{w:%H:%M:%S}" if seconds else f"{w:%H:%M}"
    return f"{w:%Y-%m-%d} {clock} {w.tzname()} ({offset[:3]}:{offset[3:]}) {w:%a}"


def render(up: Upcoming, *, wide: bool = False) -> str:
    """The slots, in UTC and in the zone; `wide` adds how far ahead each is and its
    Unix time."""
    head = f"Schedule {up.schedule!r} in {up.time_zone}, after {timestamp(up.start)}:\n"
    if not up.slots:
        return head + "no slot: the schedule never fires (robfig finds none within 5 years)\n"
    seconds = any(s.second for s in up.slots)
    headers = ["UTC", up.time_zone] + (["IN", "UNIX"] if wide else [])
    rows = []
    for s in up.slots:
        cells = [timestamp(s), local(s, up.time_zone, seconds=seconds)]
        if wide:
            cells += [human_duration(s - up.start), str(int(s.timestamp()))]
        rows.append(cells)
    out = head + table(headers, rows)
    if up.notes:
        out += "\nDaylight saving:\n" + "".join(f"  {n}\n" for n in up.notes)
    return out


def as_data(up: Upcoming) -> dict[str, Any]:
    """The same, for -o json|yaml."""
    return {
        "schedule": up.schedule,
        "timeZone": up.time_zone,
        "from": timestamp(up.start),
        "slots": [
            {"utc": timestamp(s), "local": s.astimezone(zone(up.time_zone)).isoformat()}
            for s in up.slots
        ],
        "notes": up.notes,
    }
