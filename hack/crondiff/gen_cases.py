"""Write tests/unit/testdata/cron_cases.json: the corpus that crondiff and the tests share.

Run from the repository root:  python3 hack/crondiff/gen_cases.py
Then regenerate the golden file with crondiff (see docs/schedules.md).
Deterministic: the same script writes the same file.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "tests/unit/testdata/cron_cases.json"

# Expressions that every zone is tried with.
VALID = [
    "* * * * *",
    "0 * * * *",
    "30 * * * *",
    "*/15 * * * *",
    "0 0 * * *",
    "0 1 * * *",
    "0 2 * * *",
    "30 2 * * *",
    "0 3 * * *",
    "59 23 * * *",
    "0 */2 * * *",
    "15 1-3 * * *",
    "0 0 29 2 *",
    "0 0 31 * *",
    "0 0 30 2 *",
    "0 12 * * MON-FRI",
    "0 0 1,15 * 1",
    "0 0 ? * MON",
    "0 0 */1 * 1",
    "0 0 */2 * 1",
    "0 0 1-31 * 1",
    "0 0 13 * FRI",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
    "@every 1h30m",
    "5 4 * * sun",
    "30 6-16/4 * * 1-5",
]

# zone -> named instants (just before or around its daylight-saving changes)
ZONES: dict[str | None, dict[str, str]] = {
    None: {"mid_june": "2026-06-15T12:34:56Z", "new_year_eve": "2026-12-31T23:59:30Z"},
    "Europe/Berlin": {
        "berlin_spring_forward": "2026-03-28T22:30:00Z",
        "berlin_fall_back": "2026-10-24T21:59:30Z",
    },
    "America/New_York": {
        "new_york_spring_forward": "2026-03-08T04:00:00Z",
        "new_york_fall_back": "2026-11-01T03:00:00Z",
    },
    "Australia/Lord_Howe": {
        "lord_howe_fall_back": "2026-04-04T10:00:00Z",
        "lord_howe_spring_forward": "2026-10-03T12:00:00Z",
    },
    "Australia/Sydney": {
        "sydney_fall_back": "2026-04-04T12:00:00Z",
        "sydney_spring_forward": "2026-10-03T12:00:00Z",
    },
    "America/Sao_Paulo": {  # DST at midnight, until 2019
        "sao_paulo_spring_forward_2018": "2018-11-03T20:00:00Z",
        "sao_paulo_fall_back_2019": "2019-02-16T20:00:00Z",
    },
    "America/Santiago": {  # DST at midnight, still
        "santiago_fall_back": "2026-04-04T20:00:00Z",
        "santiago_spring_forward": "2026-09-05T20:00:00Z",
    },
}

# Extra zones and instants for a handful of expressions.
EXTRA_ZONES: dict[str, dict[str, str]] = {
    "Europe/London": {"london_spring_forward": "2026-03-29T00:00:00Z"},
    "Asia/Kolkata": {"kolkata_half_hour": "2026-06-15T00:00:00Z"},
    "Pacific/Chatham": {"chatham_spring_forward": "2026-09-26T12:00:00Z"},
    "Antarctica/Troll": {"troll_two_hour_jump": "2026-03-28T23:00:00Z"},
    "Pacific/Apia": {"apia_skipped_day_2011": "2011-12-29T00:00:00Z"},
    "America/Havana": {"havana_midnight_dst": "2026-03-07T23:00:00Z"},
    "UTC": {"feb_29_2028": "2028-02-28T23:59:59Z"},
}
EXTRA_EXPRESSIONS = ["* * * * *", "0 0 * * *", "30 2 * * *", "0 1 * * *", "@daily", "@hourly"]

# Instants for everything, in UTC.
INSTANTS = {
    "just_before_the_hour": "2026-05-05T09:59:59Z",
    "on_the_hour": "2026-05-05T10:00:00Z",
    "sub_second": "2026-05-05T09:59:59.999999Z",
    "feb_29_2028": "2028-02-29T00:00:00Z",
    "before_feb_29_2028": "2028-02-28T12:00:00Z",
    "year_2096": "2096-03-01T00:00:00Z",
}
CALENDAR = [
    "0 0 29 2 *",
    "0 0 28 2 *",
    "0 0 31 4 *",
    "0 0 31 * *",
    "0 0 L * *",
    "0 0 29 2 mon",
    "0 0 * * *",
    "@every 1s",
    "@every 90s",
    "@every 0",
    "@every -1h",
    "@every 1.9999999999s",
    "@every 1h 30m",
]

# Parsing corner cases, most without a zone.
SYNTAX = [
    # accepted by robfig
    "0 0 * * SUN-SAT",
    "0 0 * JAN-DEC *",
    "0 0 * jan,Jul *",
    "0 0 * * Mon,wEd",
    "0 0 * * FR\u0130",  # Go lower-cases U+0130 to a plain "i": this is FRI
    "+5 * * * *",
    "*/+5 * * * *",
    "007 * * * *",
    "0 , * * *",
    "0 0 ,1 * *",
    "1,,2 * * * *",
    "*-5 * * * *",
    "?-3 * * * *",
    "0 0 * * ?",
    "0 0 ? ? ?",
    "5/15 * * * *",
    "0 9-17/2 * * *",
    "0 0 * * 1-5/2",
    "0 0 1-10/3 * *",
    "*/100 * * * *",
    "0\t0 * * *",
    "  0 0 * * *  ",
    "0\u00a00 * * *",
    "0\u30000 * * *",
    "0 0 * * 0",
    "0 0 * * 6",
    "59 23 31 12 *",
    "0 0 1 1 *",
    "@every 1m",
    "@every 2h45m30.5s",
    "@every 300ms",
    "@every 1\u00b5s",
    # rejected by robfig or the API server
    "5 4 * * 7",
    "0 0 * * 0-7",
    "0 0 L * *",
    "0 0 ? * 5#3",
    "0 0 1W * *",
    "H 0 * * *",
    "H/5 * * * *",
    "0 0 * *",
    "0 0 * * * *",
    "0 0 0 * * * *",
    "60 * * * *",
    "0 24 * * *",
    "0 0 0 * *",
    "0 0 32 * *",
    "0 0 * 13 *",
    "0 0 * 0 *",
    "*/0 * * * *",
    "*/-1 * * * *",
    "5-1 * * * *",
    "1-2-3 * * * *",
    "1/2/3 * * * *",
    "a * * * *",
    "-1 * * * *",
    "0 0 * * MONDAY",
    "0 0 * JANUARY *",
    "0 0 JAN * *",
    "0 MON * * *",
    "99999999999999999999 * * * *",
    "0x5 * * * *",
    "\u0665 * * * *",
    "0\x1c0 * * *",
    "",
    "   ",
    "@reboot",
    "@HOURLY",
    "@hourly ",
    " @hourly",
    "@every",
    "@every ",
    "@every 1x",
    "@every 1",
    "@every  1h",
    "@every\t1h",
    "@every .s",
    "@every 9999999999h",
    "TZ=Europe/Berlin 0 * * * *",
    "CRON_TZ=UTC 0 * * * *",
    "0 0 * * * TZ",
]

# Time zones, valid and not, with a simple schedule.
TIME_ZONES = [
    "UTC",
    "Etc/UTC",
    "Etc/GMT+5",
    "EST5EDT",
    "America/Argentina/Buenos_Aires",
    "America/Indiana/Knox",
    "",
    "Local",
    "local",
    "Mars/Olympus",
    "europe/berlin",
    "Europe/Berlin ",
    "../etc/passwd",
    "/etc/localtime",
    "Europe",
    "America/Argentina",
    "Europe/-Berlin",
    "Etc/GMT+99",
    "America/Port-au-Prince",
    "Europe/Kyiv",
]


def case(
    name: str, expression: str, zone: str | None, instant: str, count: int
) -> dict[str, object]:
    return {
        "id": name,
        "expression": expression,
        "timeZone": zone,
        "instant": instant,
        "count": count,
    }


def build() -> list[dict[str, object]]:
    cases: list[dict[str, object]] = []
    for zone, instants in ZONES.items():
        for label, instant in instants.items():
            for expression in VALID:
                cases.append(case(f"{label}/{zone}/{expression}", expression, zone, instant, 5))
    for zone, instants in EXTRA_ZONES.items():
        for label, instant in instants.items():
            for expression in EXTRA_EXPRESSIONS:
                cases.append(case(f"{label}/{zone}/{expression}", expression, zone, instant, 5))
    for label, instant in INSTANTS.items():
        for expression in CALENDAR:
            for zone in (None, "Europe/Berlin"):
                cases.append(case(f"{label}/{zone}/{expression}", expression, zone, instant, 4))
    for expression in SYNTAX:
        cases.append(case(f"syntax/{expression!r}", expression, None, INSTANTS["on_the_hour"], 3))
    for zone in TIME_ZONES:
        cases.append(case(f"zone/{zone!r}", "30 2 * * *", zone, "2026-03-07T12:00:00Z", 3))
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases


def main() -> None:
    cases = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
