"""`next`: the slots robfig/cron computes, and the daylight-saving notes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cronwarden.api import crd
from cronwarden.core.schedule import ScheduleError, UnknownTimeZoneError
from cronwarden.plugin.slots import (
    EVERY_MESSAGE,
    GO_DURATION,
    as_data,
    crd_refusal,
    parse_from,
    render,
    upcoming,
)

TESTDATA = Path(__file__).resolve().parents[1] / "core" / "testdata"
BEFORE_SPRING_FORWARD_2027 = datetime(2027, 3, 27, tzinfo=UTC)


def golden() -> list[tuple[dict[str, object], list[str]]]:
    """The schedule corpus with robfig/cron v3.0.1's own answers (hack/crondiff); robfig's
    zero time (null), "no further slot", ends a list."""
    cases = json.loads((TESTDATA / "cron_cases.json").read_text())
    expected = {e["id"]: e for e in json.loads((TESTDATA / "cron_expected.json").read_text())}
    out = []
    for case in cases:
        slots = expected[case["id"]].get("slots")
        if slots is not None:
            out.append((case, slots[: slots.index(None)] if None in slots else slots))
    return out


def test_slots_are_robfigs_for_the_whole_corpus() -> None:
    cases = golden()
    assert len(cases) > 500
    for case, want in cases:
        start = datetime.fromisoformat(str(case["instant"]).replace("Z", "+00:00"))
        zone = case["timeZone"]
        up = upcoming(str(case["expression"]), zone and str(zone), start, int(str(case["count"])))
        got = [s.strftime("%Y-%m-%dT%H:%M:%SZ") for s in up.slots]
        assert got == want, case["id"]


def test_berlin_spring_forward_skips_a_slot_and_says_so() -> None:
    up = upcoming("0 2 * * *", "Europe/Berlin", BEFORE_SPRING_FORWARD_2027, 3)
    text = render(up)
    assert text.splitlines()[1:5] == [
        "UTC                    Europe/Berlin",
        "2027-03-27T01:00:00Z   2027-03-27 02:00 CET (+01:00) Sat",
        "2027-03-29T00:00:00Z   2027-03-29 02:00 CEST (+02:00) Mon",
        "2027-03-30T00:00:00Z   2027-03-30 02:00 CEST (+02:00) Tue",
    ]
    assert up.notes == [
        "Europe/Berlin: on 2027-03-28 clocks go forward by 1 hour at 02:00 local time; the "
        "CronJob controller will skip the run at 02:00 that day (skipped runs are not made "
        "up later)"
    ]
    assert "Daylight saving:" in text
    assert "2027-03-28" in text


def test_berlin_fall_back_runs_twice() -> None:
    up = upcoming("30 2 * * *", "Europe/Berlin", datetime(2027, 10, 30, tzinfo=UTC), 3)
    assert [s.strftime("%d %H:%M") for s in up.slots] == ["30 00:30", "31 00:30", "31 01:30"]
    assert "twice" in up.notes[0]


def test_notes_only_for_changes_up_to_the_last_slot_shown() -> None:
    assert upcoming("0 2 * * *", "Europe/Berlin", datetime(2027, 3, 20, tzinfo=UTC), 3).notes == []


def test_no_zone_is_utc_and_has_no_notes() -> None:
    up = upcoming("@hourly", None, BEFORE_SPRING_FORWARD_2027, 2)
    assert up.time_zone == "Etc/UTC"
    assert as_data(up) == {
        "schedule": "@hourly",
        "timeZone": "Etc/UTC",
        "from": "2027-03-27T00:00:00Z",
        "slots": [
            {"utc": "2027-03-27T01:00:00Z", "local": "2027-03-27T01:00:00+00:00"},
            {"utc": "2027-03-27T02:00:00Z", "local": "2027-03-27T02:00:00+00:00"},
        ],
        "notes": [],
    }


def test_a_schedule_that_never_fires() -> None:
    up = upcoming("0 0 30 2 *", None, BEFORE_SPRING_FORWARD_2027, 5)
    assert up.slots == []
    assert "never fires" in render(up)


@pytest.mark.parametrize(
    ("schedule", "zone", "error"),
    [
        ("0 2 * * 7", None, ScheduleError),  # the API server rejects day-of-week 7
        ("61 * * * *", None, ScheduleError),
        ("TZ=Europe/Berlin 0 2 * * *", None, ScheduleError),
        ("0 2 * * *", "Mars/Olympus", UnknownTimeZoneError),
    ],
)
def test_invalid_input_raises_the_operators_errors(
    schedule: str, zone: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        upcoming(schedule, zone, BEFORE_SPRING_FORWARD_2027, 1)


def test_from_accepts_offsets_and_wall_time_in_the_zone() -> None:
    assert parse_from("2027-03-27T00:00:00Z", None) == BEFORE_SPRING_FORWARD_2027
    assert parse_from("2027-03-27T01:00:00+01:00", None) == BEFORE_SPRING_FORWARD_2027
    assert parse_from("2027-03-27T01:00", "Europe/Berlin") == BEFORE_SPRING_FORWARD_2027
    with pytest.raises(ValueError, match="--from"):
        parse_from("tomorrow", None)


@pytest.mark.parametrize(
    ("expression", "refused"),
    [
        ("@every 30s", True),
        ("@every 59s", True),
        ("@every 59.9s", True),
        ("@every 1m", False),
        ("@every 90s", False),
        ("  @every  1h30m ", False),
        ("@every 0.5h", False),
        ("@every -5m", True),  # Go parses it; the CRD's pattern does not
        ("@every 5", True),
        ("@everyday", True),
        ("@daily", False),
        ("*/1 * * * *", False),
    ],
)
def test_next_refuses_what_the_crd_refuses(expression: str, refused: bool) -> None:
    assert (crd_refusal(expression) is not None) is refused


def test_the_crd_rule_is_the_one_the_plugin_checks() -> None:
    [rule] = [r for r in crd.SPEC_RULES if "@every" in r["rule"]]
    assert rule["message"] == EVERY_MESSAGE
    # The CEL string literal escapes the backslash once more than the regex has.
    assert f"matches('{GO_DURATION.replace(chr(92), chr(92) * 2)}')" in rule["rule"]
    assert "duration('1m')" in rule["rule"]


def test_every_prints_seconds_in_the_zone() -> None:
    start = datetime(2027, 1, 1, 12, 0, 15, tzinfo=UTC)
    up = upcoming("@every 90s", "Europe/Berlin", start, 2)
    assert [s.isoformat() for s in up.slots] == [
        "2027-01-01T12:01:45+00:00",
        "2027-01-01T12:03:15+00:00",
    ]
    text = render(up)
    assert "2027-01-01T12:01:45Z   2027-01-01 13:01:45 CET (+01:00) Fri" in text
    # On the minute, seconds would only be noise.
    assert "2027-01-02 02:30 CET" in render(upcoming("30 2 * * *", "Europe/Berlin", start, 1))


def test_wide_adds_how_far_ahead_and_unix_seconds() -> None:
    start = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    lines = render(upcoming("@hourly", None, start, 2), wide=True).splitlines()
    assert lines[1].split() == ["UTC", "Etc/UTC", "IN", "UNIX"]
    assert lines[2].split()[-2:] == ["60m", "1798808400"]
