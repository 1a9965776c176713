"""The pure parts of the harness's burst phase (hack/harness/burst.py): the slot, its
schedule and the lag percentiles."""

from __future__ import annotations

import calendar
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hack"))

from harness.burst import burst_slot, burst_task, lag_summary, slot_schedule
from harness.measure import slot

NOON = calendar.timegm((2026, 11, 28, 12, 0, 0))


def test_slot_is_the_first_full_minute_at_least_lead_ahead() -> None:
    assert burst_slot(NOON, 60) == NOON + 60
    assert burst_slot(NOON + 0.5, 60) == NOON + 120
    assert burst_slot(NOON + 59, 60) == NOON + 120
    assert burst_slot(NOON + 1, 160) == NOON + 180
    assert burst_slot(NOON, 60) % 60 == 0


def test_schedule_names_the_slot_in_utc() -> None:
    assert slot_schedule(NOON + 120) == "2 12 28 11 *"
    assert slot_schedule(calendar.timegm((2026, 12, 31, 23, 59, 0))) == "59 23 31 12 *"


def test_the_slot_job_name_is_the_minute_of_the_slot() -> None:
    # The CronJob controller names a Job <cronjob>-<scheduled minutes since the epoch>.
    assert slot(f"b-00001-{(NOON + 60) // 60}") == (NOON + 60) // 60


def test_burst_task_carries_utc_and_a_long_starting_deadline() -> None:
    spec = burst_task("b-00000", "0 12 28 11 *")["spec"]
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["startingDeadlineSeconds"] >= 3600
    # The grace too: else the CronJob controller's pace shows as MissedSchedule.
    assert spec["missedRunGraceSeconds"] == spec["startingDeadlineSeconds"]
    assert spec["schedule"] == "0 12 28 11 *"


def test_lag_summary() -> None:
    assert lag_summary([]) == {}
    samples = [i / 100 for i in range(1, 101)]  # 0.01 .. 1.00
    out = lag_summary(list(reversed(samples)))
    assert out == {"p50": 0.5, "p99": 0.99, "max": 1.0, "min": 0.01}
    assert lag_summary([3.0]) == {"p50": 3.0, "p99": 3.0, "max": 3.0, "min": 3.0}
