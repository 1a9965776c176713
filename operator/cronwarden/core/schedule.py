"""CronJob slot times, computed exactly as the Kubernetes CronJob controller computes them.

The controller parses `TZ=<spec.timeZone> <spec.schedule>` (or the bare schedule when
timeZone is unset) with robfig/cron v3.0.1 `cron.ParseStandard` and walks the slots with
`Schedule.Next`. This module reproduces that, with zoneinfo for the tz database.

Why not croniter or cronsim: measured against robfig over 3,200 cases (see
docs/schedules.md), both differ on daylight-saving days (a slot in a spring-forward gap
runs late instead of being skipped; cronsim runs a repeated hour once; both disagree in
Australia/Lord_Howe), both accept what the API server rejects (day-of-week 7, L, #, H)
and reject some of what it accepts (`?`, never-firing schedules). Their answers are
reasonable cron semantics but not the controller's, and an operator that reports missed
runs must predict the controller, quirks included. robfig's algorithm is short, so
`cronwarden.schedule_robfig` transcribes it (with the parts of Go's time package it relies
on) and hack/crondiff checks every case of the test corpus against the real Go code.

Behaviour worth knowing (all robfig's):
- A slot whose wall-clock time does not exist (spring forward) is skipped, not moved.
- A slot in a repeated hour (fall back) runs twice, once per offset.
- Day-of-month and day-of-week: if either field starts with `*` or `?` (`*/1` counts,
  `*/2` does not), a day must match both; otherwise it may match either.
- Without a timeZone the controller uses its own local zone. cronwarden never leaves it
  unset: the CronJob it builds names Etc/UTC when the task names no zone, and `parse`
  with no zone evaluates Etc/UTC too, so both sides agree whatever the host's zone.
- `Next` gives up after five years: `0 0 30 2 *` parses but never fires (None here).
- Where robfig would loop forever (a calendar day skipped by the zone, as Pacific/Apia
  on 2011-12-30) we return None too.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronwarden.api.models import DEFAULT_TIME_ZONE
from cronwarden.core import schedule_robfig as robfig
from cronwarden.core.schedule_robfig import ScheduleError, UnknownTimeZoneError

__all__ = [
    "CronSchedule",
    "ScheduleError",
    "UnknownTimeZoneError",
    "parse",
]

# pkg/apis/batch/validation: each path component of spec.timeZone.
_ZONE_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")


# Intervals of `CronSchedule.next` remembered per schedule.
KNOWN = 8


def _load_zone(name: str) -> tzinfo:
    """Validate spec.timeZone as the API server does, then load it."""
    if name == "":
        raise UnknownTimeZoneError("timeZone: must be unset or a non-empty time zone name")
    for part in name.split("/"):
        if part in (".", "..") or part.startswith("-") or not _ZONE_PART.fullmatch(part):
            raise UnknownTimeZoneError(
                f"timeZone: {name!r} is not a valid time zone name (expected an IANA name "
                "such as Europe/Berlin or America/New_York)"
            )
    if name == DEFAULT_TIME_ZONE:
        return UTC  # the default needs no tz database: Etc/UTC never changes its offset
    if name.lower() == "local":
        raise UnknownTimeZoneError(
            "timeZone: 'Local' is not allowed; name an explicit IANA time zone"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownTimeZoneError(
            f"timeZone: unknown time zone {name!r} (not in the tz database; expected an IANA "
            "name such as Europe/Berlin)"
        ) from None


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


@dataclass(frozen=True)
class CronSchedule:
    """A parsed CronJob schedule. Build it with `parse`; all results are aware UTC."""

    expression: str
    time_zone: str
    _spec: robfig.Spec = field(repr=False, compare=False)
    _zone: tzinfo = field(repr=False, compare=False)
    # Answers of `next` remembered as intervals (see there); `parse` shares one
    # instance among every task with the same schedule and zone.
    _known: list[tuple[datetime, datetime]] = field(default_factory=list, repr=False, compare=False)

    def next(self, after: datetime) -> datetime | None:
        """The first slot strictly after `after`, or None if the schedule never fires.

        "Never" is robfig's: no slot within about five years of `after`.

        Walking robfig's calendar costs up to a millisecond for a yearly schedule, and
        every reconcile asks several times. If next(a) = n, no slot lies in (a, n), so
        next(t) = n for every a <= t < n: the last few such intervals answer most calls.
        (Not for `@every`, whose slots count from `after` itself.)
        """
        _aware("after", after)
        for start, slot in self._known:
            if start <= after < slot:
                return slot
        found = robfig.next_after(self._spec, self._zone, after)
        if found is not None and isinstance(self._spec, robfig.SpecBits):
            # Replaced, never mutated in place: readers in other threads see either list.
            object.__setattr__(self, "_known", [(after, found), *self._known[: KNOWN - 1]])
        return found

    def slots(self, after: datetime, until: datetime, limit: int = 1000) -> list[datetime]:
        """The slots s with after < s <= until, in order, at most `limit` of them."""
        _aware("until", until)
        out: list[datetime] = []
        t = self.next(after)
        while t is not None and t <= until and len(out) < limit:
            out.append(t)
            t = self.next(t)
        return out

    def dst_notes(self, now: datetime, days: int = 366) -> list[str]:
        """Warnings for daylight-saving changes in the next `days` days that affect slots.

        One line per change and kind: slots that do not run because their wall time is
        skipped (or, as in Australia/Lord_Howe, because robfig steps over them), and slots
        that run twice because their wall time repeats. Empty when nothing is affected.
        """
        if not isinstance(self._spec, robfig.SpecBits):
            return []
        start = int(_aware("now", now).timestamp())
        notes: list[str] = []
        for change in _transitions(self._zone, start, start + days * 86400):
            notes += _dst_change_notes(self._spec, self._zone, self.time_zone, *change)
        return notes


@functools.lru_cache(maxsize=4096)
def parse(schedule: str, time_zone: str | None = None) -> CronSchedule:
    """Parse a CronJob's spec.schedule and spec.timeZone as the API server and controller do.

    Raises ScheduleError for a schedule the API server would reject (including any "TZ"
    in it: timeZone is the supported way), and UnknownTimeZoneError for a bad timeZone.
    No time zone means Etc/UTC, the zone the built CronJob names when the task names none.
    """
    if "TZ" in schedule:
        raise ScheduleError("schedule: must not contain TZ= or CRON_TZ=; set timeZone instead")
    spec = robfig.parse_standard(schedule)
    name = DEFAULT_TIME_ZONE if time_zone is None else time_zone
    return CronSchedule(schedule, name, spec, _load_zone(name))


def _transitions(zone: tzinfo, start: int, end: int) -> list[tuple[int, int, int]]:
    """Offset changes in [start, end): (first second of the new offset, before, after).

    Searched a whole UTC day at a time and remembered per (zone, day window): every
    task in a zone asks about the same days, and the search costs thousands of offset
    lookups (it dominated a reconcile before it was cached)."""
    day = 86400
    first, last = start // day, -(-end // day)
    changes = _day_transitions(zone, first, last)
    return [c for c in changes if start <= c[0] < end]


@functools.lru_cache(maxsize=256)
def _day_transitions(zone: tzinfo, first_day: int, last_day: int) -> list[tuple[int, int, int]]:
    return _scan_transitions(zone, first_day * 86400, last_day * 86400)


def _scan_transitions(zone: tzinfo, start: int, end: int) -> list[tuple[int, int, int]]:
    step = 3 * 3600  # no zone changes its offset twice within three hours
    out = []
    u, off = start, robfig.offset(start, zone)
    while u < end:
        v = min(u + step, end)
        off_v = robfig.offset(v, zone)
        if off_v != off:
            lo, hi = u, v
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if robfig.offset(mid, zone) == off else (lo, mid)
            out.append((hi, off, robfig.offset(hi, zone)))
        u, off = v, off_v
    return out


def _wall(seconds: int) -> datetime:
    """A wall-clock time (naive) given as seconds since 1970-01-01T00:00 local."""
    return datetime(1970, 1, 1) + timedelta(seconds=seconds)


def _matches(spec: robfig.SpecBits, wall: datetime) -> bool:
    return bool(
        spec.second & 1
        and (1 << wall.minute) & spec.minute
        and (1 << wall.hour) & spec.hour
        and (1 << wall.month) & spec.month
        and robfig.day_matches(spec, wall)
    )


def _dst_change_notes(  # one offset change: which matching wall times run 0 or 2 times
    spec: robfig.SpecBits, zone: tzinfo, name: str, when: int, before: int, after: int
) -> list[str]:
    span = abs(after - before)
    first_wall = when + min(before, after) - span - 3600
    last_wall = when + max(before, after) + span + 3600
    runs: dict[int, list[int]] = {}
    t = robfig.spec_next(spec, zone, first_wall - max(before, after) - 60)
    while t is not None and t <= last_wall - min(before, after) + 60:
        runs.setdefault(t + robfig.offset(t, zone), []).append(t)
        t = robfig.spec_next(spec, zone, t)
    skipped, twice = [], []
    for w in range(first_wall - first_wall % 60 + 60, last_wall, 60):
        if _matches(spec, _wall(w)):
            count = len(runs.get(w, []))
            if count == 0:
                skipped.append(w)
            elif count > 1:
                twice.append(w)
    change = _wall(when + before)
    hours, minutes = divmod(span // 60, 60)
    by = " ".join(
        f"{n} {unit}{'s' if n != 1 else ''}"
        for n, unit in ((hours, "hour"), (minutes, "minute"))
        if n
    )
    head = (
        f"{name}: on {change:%Y-%m-%d} clocks go {'forward' if after > before else 'back'} "
        f"by {by} at {change:%H:%M} local time"
    )
    notes = []
    if skipped:
        notes.append(
            f"{head}; the CronJob controller will skip the run at {_walls(skipped)} "
            "that day (skipped runs are not made up later)"
        )
    if twice:
        notes.append(
            f"{head}; the CronJob controller will run {_walls(twice)} twice, "
            "once before and once after the change"
        )
    return notes


def _walls(walls: list[int]) -> str:
    shown = [f"{_wall(w):%H:%M}" for w in walls[:5]]
    if len(walls) > 5:
        return ", ".join(shown) + f" and {len(walls) - 5} more"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
