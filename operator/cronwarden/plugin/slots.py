"""`kubectl cronwarden next`: the coming slots of a schedule, exactly as the CronJob
controller computes them (cronwarden.core.schedule, robfig/cron v3). Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from cronwarden.api.models import DEFAULT_TIME_ZONE
from cronwarden.core import schedule
from cronwarden.plugin.text import table, timestamp


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


def local(t: datetime, name: str) -> str:
    """Wall time in the zone, with its abbreviation, offset and weekday."""
    w = t.astimezone(zone(name))
    offset = w.strftime("%z")
    return f"{w:%Y-%m-%d %H:%M} {w.tzname()} ({offset[:3]}:{offset[3:]}) {w:%a}"


def render(up: Upcoming) -> str:
    head = f"Schedule {up.schedule!r} in {up.time_zone}, after {timestamp(up.start)}:\n"
    if not up.slots:
        return head + "no slot: the schedule never fires (robfig finds none within 5 years)\n"
    out = head + table(
        ["UTC", up.time_zone], [[timestamp(s), local(s, up.time_zone)] for s in up.slots]
    )
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
