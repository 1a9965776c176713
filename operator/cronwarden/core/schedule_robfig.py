"""A line-by-line emulation of robfig/cron v3.0.1, the cron library of the CronJob controller.

Only `cronwarden.schedule` should import this module; it holds the parts that must behave
exactly like Go: `cron.ParseStandard` (fields, names, ranges, steps, `?`, the star bit,
descriptors, `@every` with Go's `time.ParseDuration`), `SpecSchedule.Next` and
`ConstantDelaySchedule.Next`, and the pieces of Go's `time` package they rely on
(`time.Date` normalisation of non-existent and repeated wall times, `AddDate`,
`Truncate`, `strings.Fields`, `strconv.Atoi`, `strings.ToLower`).

Instants are whole Unix seconds: after `Next` adds its first second, robfig never
has a sub-second part again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

STAR_BIT = 1 << 63
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_INT64_MAX = (1 << 63) - 1
# unicode.IsSpace in Go: ASCII/Latin-1 spaces plus the Unicode White_Space property.
# Python's str.split() also splits on \x1c-\x1f, which Go does not.
_GO_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_GO_FIELDS = re.compile(f"[^{_GO_SPACE}]+")
_GO_INT = re.compile("[+-]?[0-9]+")
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


class ScheduleError(ValueError):
    """The schedule is invalid; str() is a message for the user that names the field."""


class UnknownTimeZoneError(ScheduleError):
    """The timeZone is not a zone the tz database (and so the CronJob controller) knows."""


@dataclass(frozen=True)
class Bounds:
    name: str
    min: int
    max: int
    names: tuple[str, ...] = ()  # names[i] is the name of value min + i
    unsupported: str = ""  # cron extensions that people try in this field

    def expected(self) -> str:
        if self.names:
            return f"{self.min}-{self.max} or {self.names[0].upper()}-{self.names[-1].upper()}"
        return f"{self.min}-{self.max}"


MINUTE = Bounds("minute", 0, 59, unsupported="H is not supported")
HOUR = Bounds("hour", 0, 23, unsupported="H is not supported")
DOM = Bounds("day-of-month", 1, 31, unsupported="L, W and H are not supported")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTH = Bounds("month", 1, 12, _MONTHS)
DOW = Bounds(
    "day-of-week",
    0,
    6,
    ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
    unsupported="L and # are not supported",
)


@dataclass(frozen=True)
class SpecBits:
    """robfig's SpecSchedule: one bit per allowed value, plus STAR_BIT for `*` and `?`."""

    second: int
    minute: int
    hour: int
    dom: int
    month: int
    dow: int


@dataclass(frozen=True)
class Every:
    """robfig's ConstantDelaySchedule (`@every <duration>`), in whole seconds."""

    seconds: int


Spec = SpecBits | Every


def _all(b: Bounds) -> int:
    return _bits(b.min, b.max, 1) | STAR_BIT


def _bits(lo: int, hi: int, step: int) -> int:
    out = 0
    for i in range(lo, hi + 1, step):
        out |= 1 << i
    return out


def go_fields(s: str) -> list[str]:
    """strings.Fields: split on Go's notion of white space."""
    return _GO_FIELDS.findall(s)


def _go_lower(s: str) -> str:
    # strings.ToLower maps rune by rune; U+0130 becomes a plain "i" in Go.
    return "".join("i" if c == "\u0130" else c.lower() for c in s)


def _fail(b: Bounds, field: str, part: str, problem: str) -> ScheduleError:
    where = f"{b.name} field {field!r}" + ("" if part == field else f": {part!r}")
    return ScheduleError(f"schedule: {where} {problem}")


def _atoi(b: Bounds, field: str, part: str, text: str, what: str) -> int:
    """strconv.Atoi, then robfig's refusal of negative numbers."""
    if not _GO_INT.fullmatch(text) or not -(1 << 63) <= int(text) <= _INT64_MAX:
        hint = f"; {b.unsupported}" if b.unsupported else ""
        which = "is" if text == part else f"has {what} {text!r} that is"
        problem = f"{which} not a number (expected {b.expected()}{hint})"
        raise _fail(b, field, part, problem)
    num = int(text)
    if num < 0:
        raise _fail(b, field, part, f"has a negative number {text!r}")
    return num


def _value(b: Bounds, field: str, part: str, text: str) -> int:
    lowered = _go_lower(text)
    if lowered in b.names:
        return b.min + b.names.index(lowered)
    return _atoi(b, field, part, text, "a value")


def _range_bits(b: Bounds, field: str, part: str) -> int:
    """robfig getRange: number | number "-" number [ "/" number ], or * and ? as the range."""
    range_and_step = part.split("/")
    low_and_high = range_and_step[0].split("-")
    extra = 0
    if low_and_high[0] in ("*", "?"):
        # robfig ignores anything after "*-" here.
        start, end, extra = b.min, b.max, STAR_BIT
    else:
        start = _value(b, field, part, low_and_high[0])
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _value(b, field, part, low_and_high[1])
        else:
            raise _fail(b, field, part, "has more than one '-'")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _atoi(b, field, part, range_and_step[1], "a step")
        if len(low_and_high) == 1:
            end = b.max  # "N/step" means "N-max/step"
        if step > 1:
            extra = 0  # "*/2" is not a star for the day-of-month/day-of-week rule
    else:
        raise _fail(b, field, part, "has more than one '/'")
    if start < b.min or end > b.max:
        bad = start if start < b.min else end
        hint = " (use 0 or SUN for Sunday)" if b is DOW and bad == 7 else ""
        if len(low_and_high) == 1 and len(range_and_step) == 1:
            raise _fail(b, field, part, f"is out of range {b.min}-{b.max}{hint}")
        raise _fail(b, field, part, f"goes to {bad}, out of range {b.min}-{b.max}{hint}")
    if start > end:
        raise _fail(
            b, field, part, f"starts at {start} after its end {end}; ranges do not wrap around"
        )
    if step == 0:
        raise _fail(b, field, part, "has a step of 0 (expected a positive step)")
    return _bits(start, end, step) | extra


def _field_bits(b: Bounds, field: str) -> int:
    # strings.FieldsFunc drops empty parts: "1,,2" is "1,2" and "," allows nothing.
    out = 0
    for part in (p for p in field.split(",") if p):
        out |= _range_bits(b, field, part)
    return out


def parse_standard(spec: str) -> Spec:
    """cron.ParseStandard(spec) without the TZ= prefix (the API server forbids it)."""
    if not spec:
        raise ScheduleError("schedule: must not be empty")
    if spec.startswith("@"):
        return _descriptor(spec)
    fields = go_fields(spec)
    if len(fields) != 5:
        extra = "; seconds are not supported" if len(fields) == 6 else ""
        raise ScheduleError(
            f"schedule: expected 5 fields (minute hour day-of-month month day-of-week) "
            f"or a macro such as @daily, found {len(fields)} in {spec!r}{extra}"
        )
    minute, hour, dom, month, dow = fields
    return SpecBits(
        second=1,
        minute=_field_bits(MINUTE, minute),
        hour=_field_bits(HOUR, hour),
        dom=_field_bits(DOM, dom),
        month=_field_bits(MONTH, month),
        dow=_field_bits(DOW, dow),
    )


def _descriptor(spec: str) -> Spec:
    one = 1  # second 0, minute 0, hour 0: bit 0
    if spec in ("@yearly", "@annually"):
        return SpecBits(one, one, one, 1 << 1, 1 << 1, _all(DOW))
    if spec == "@monthly":
        return SpecBits(one, one, one, 1 << 1, _all(MONTH), _all(DOW))
    if spec == "@weekly":
        return SpecBits(one, one, one, _all(DOM), _all(MONTH), 1 << 0)
    if spec in ("@daily", "@midnight"):
        return SpecBits(one, one, one, _all(DOM), _all(MONTH), _all(DOW))
    if spec == "@hourly":
        return SpecBits(one, one, _all(HOUR), _all(DOM), _all(MONTH), _all(DOW))
    if spec.startswith("@every "):
        nanos = go_parse_duration(spec[len("@every ") :])
        if nanos is None:
            raise ScheduleError(
                f"schedule: {spec!r} has an invalid duration {spec[len('@every ') :]!r} "
                "(expected a Go duration such as 90s, 15m or 1h30m)"
            )
        # cron.Every: at least one second, whole seconds only.
        return Every(max(nanos, 10**9) // 10**9)
    raise ScheduleError(
        f"schedule: unknown macro {spec!r} (expected one of {', '.join(DESCRIPTORS)} "
        "or @every <duration>)"
    )


_UNITS = {
    b"ns": 1,
    b"us": 10**3,
    "µs".encode(): 10**3,
    "μs".encode(): 10**3,
    b"ms": 10**6,
    b"s": 10**9,
    b"m": 60 * 10**9,
    b"h": 3600 * 10**9,
}


def go_parse_duration(text: str) -> int | None:
    """time.ParseDuration in nanoseconds, or None where Go returns an error."""
    s = text.encode()
    neg = False
    if s[:1] in (b"-", b"+"):
        neg, s = s[:1] == b"-", s[1:]
    if s == b"0":
        return 0
    if not s:
        return None
    total = 0
    while s:
        if not (s[:1] == b"." or s[:1].isdigit()):
            return None
        i = 0
        v = 0
        while i < len(s) and 48 <= s[i] <= 57:
            if v > (1 << 63) // 10:
                return None
            v = v * 10 + s[i] - 48
            if v > 1 << 63:
                return None
            i += 1
        pre, s = i > 0, s[i:]
        f, scale, post = 0, 1.0, False
        if s[:1] == b".":
            s = s[1:]
            i, overflow = 0, False
            while i < len(s) and 48 <= s[i] <= 57:
                if not overflow:
                    y = f * 10 + s[i] - 48
                    if f > _INT64_MAX // 10 or y > 1 << 63:
                        overflow = True
                    else:
                        f, scale = y, scale * 10
                i += 1
            post, s = i > 0, s[i:]
        if not pre and not post:
            return None
        i = 0
        while i < len(s) and not (s[i] == 46 or 48 <= s[i] <= 57):
            i += 1
        unit = _UNITS.get(s[:i])
        if unit is None:
            return None
        s = s[i:]
        if v > (1 << 63) // unit:
            return None
        v *= unit
        if f > 0:
            v += int(float(f) * (float(unit) / scale))
            if v > 1 << 63:
                return None
        total += v
        if total > 1 << 63:
            return None
    if neg:
        return -total
    return None if total > _INT64_MAX else total


# --- Go's time package, for one zone, on whole Unix seconds ---------------------------


def local(u: int, zone: tzinfo) -> datetime:
    return datetime.fromtimestamp(u, zone)


def offset(u: int, zone: tzinfo) -> int:
    delta = local(u, zone).utcoffset()
    return 0 if delta is None else int(delta.total_seconds())


def go_date(
    year: int, month: int, day: int, hour: int, minute: int, second: int, zone: tzinfo
) -> int:
    """time.Date(year, month, day, hour, minute, second, 0, zone) as Unix seconds.

    Month and day may overflow (Go normalises them). A wall time that does not exist
    or exists twice resolves as Go does: look up the offset at the wall time read as
    UTC, then the offset at the instant that gives, and use that second offset.
    """
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    days = date(year, month, 1).toordinal() - _EPOCH_ORDINAL + day - 1
    wall = days * 86400 + hour * 3600 + minute * 60 + second
    return wall - offset(wall - offset(wall, zone), zone)


def day_matches(s: SpecBits, t: datetime) -> bool:
    dom_match = (1 << t.day) & s.dom != 0
    dow_match = (1 << ((t.weekday() + 1) % 7)) & s.dow != 0
    if s.dom & STAR_BIT or s.dow & STAR_BIT:
        return dom_match and dow_match
    return dom_match or dow_match


def never_fires(s: SpecBits) -> bool:
    """True when Next can only return the zero time, whatever the instant.

    Only a shortcut: Next would find the same after walking five years.
    """

    def empty(bits: int, b: Bounds) -> bool:
        return bits & _bits(b.min, b.max, 1) == 0

    if s.second == 0 or empty(s.minute, MINUTE) or empty(s.hour, HOUR) or empty(s.month, MONTH):
        return True
    if s.dom & STAR_BIT or s.dow & STAR_BIT:
        return empty(s.dom, DOM) or empty(s.dow, DOW)
    return empty(s.dom, DOM) and empty(s.dow, DOW)


def spec_next(s: SpecBits, zone: tzinfo, after: int) -> int | None:
    """SpecSchedule.Next: the first slot strictly after `after` (whole seconds), or None."""
    if never_fires(s):
        return None
    t = after + 1
    lt = local(t, zone)
    year_limit = lt.year + 5
    added = False
    while True:  # robfig's WRAP label
        if lt.year > year_limit:
            return None
        wrapped = False
        while not (1 << lt.month) & s.month:
            if not added:
                added = True
                t = go_date(lt.year, lt.month, 1, 0, 0, 0, zone)
                lt = local(t, zone)
            t = go_date(lt.year, lt.month + 1, lt.day, lt.hour, lt.minute, lt.second, zone)
            lt = local(t, zone)
            if lt.month == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not day_matches(s, lt):
            if not added:
                added = True
                t = go_date(lt.year, lt.month, lt.day, 0, 0, 0, zone)
                lt = local(t, zone)
            before = t
            t = go_date(lt.year, lt.month, lt.day + 1, lt.hour, lt.minute, lt.second, zone)
            lt = local(t, zone)
            if lt.hour != 0:  # midnight moved by daylight saving: back to it
                t += (24 - lt.hour) * 3600 if lt.hour > 12 else -lt.hour * 3600
                lt = local(t, zone)
            if t == before:
                # A calendar day that does not exist (Pacific/Apia, 2011-12-30): Go's Date
                # maps "next midnight" back to this one and robfig loops forever. It never
                # returns a slot, so neither do we.
                return None
            if lt.day == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not (1 << lt.hour) & s.hour:
            if not added:
                added = True
                t = go_date(lt.year, lt.month, lt.day, lt.hour, 0, 0, zone)
            t += 3600
            lt = local(t, zone)
            if lt.hour == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while not (1 << lt.minute) & s.minute:
            if not added:
                added = True
                t -= t % 60  # Truncate(time.Minute): absolute, not wall-clock
            t += 60
            lt = local(t, zone)
            if lt.minute == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while not (1 << lt.second) & s.second:
            added = True
            t += 1
            lt = local(t, zone)
            if lt.second == 0:
                wrapped = True
                break
        if wrapped:
            continue
        return t


def next_after(spec: Spec, zone: tzinfo, after: datetime) -> datetime | None:
    """Schedule.Next(after) as an aware UTC datetime, or None for Go's zero time."""
    whole = (after - _EPOCH) // _SECOND  # floor: drop the sub-second part, as Next does
    if isinstance(spec, Every):
        return datetime.fromtimestamp(whole + spec.seconds, UTC)
    found = spec_next(spec, zone, whole)
    return None if found is None else datetime.fromtimestamp(found, UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
