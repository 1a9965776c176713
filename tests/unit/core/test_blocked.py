"""Blocked: slots held back by a run that never ends (Forbid), or runs stopped before
they finish (Replace). Replayed against a model of the CronJob controller
(tests/unit/cronjob_model.py), reconciling only when the operator would: on Job
changes and at the wake-up times it asks for. Named instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronwarden.core import schedule
from cronwarden.core.status import Outcome, compute_status
from tests.unit.cronjob_model import condition, forbid_controller, operate, state_at
from tests.unit.factories import job, task

EVERY_MINUTE = {"schedule": "* * * * *"}
HOURLY = {"schedule": "0 * * * *"}
DAILY = {"schedule": "30 2 * * *"}
GRACE = timedelta(seconds=60)

CREATED = datetime(2026, 11, 28, 9, 59, 30, tzinfo=UTC)
TEN = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
CONTROLLER_DIES = TEN + timedelta(seconds=30)  # a run for 10:00 is in flight
ONE_MINUTE_ON = TEN + timedelta(minutes=1)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def never(_: datetime) -> None:
    return None


def blocked_instants(history: list[tuple[datetime, Outcome]]) -> list[datetime]:
    return [t for t, o in history if condition(o, "Blocked") == "True"]


def blocked_events(history: list[tuple[datetime, Outcome]]) -> list[str]:
    return [e.message for _, o in history for e in o.events if e.reason == "Blocked"]


@pytest.mark.parametrize(
    ("spec", "runs_take", "until"),
    [
        pytest.param(EVERY_MINUTE, seconds(30), TEN + timedelta(minutes=30), id="per-minute 30s"),
        pytest.param(EVERY_MINUTE, seconds(90), TEN + timedelta(minutes=30), id="per-minute 90s"),
        pytest.param(EVERY_MINUTE, seconds(115), TEN + timedelta(minutes=30), id="per-minute 115s"),
        pytest.param(
            {**HOURLY, "blockedAfterSkippedRuns": 2},
            timedelta(minutes=75),
            TEN + timedelta(hours=8),
            id="hourly 75min, threshold 2",
        ),
        pytest.param(DAILY, timedelta(hours=2), TEN + timedelta(days=3), id="daily 2h"),
        pytest.param(
            {**EVERY_MINUTE, "blockedAfterSkippedRuns": 2},
            seconds(170),
            TEN + timedelta(minutes=30),
            id="per-minute 170s, threshold 2",
        ),
    ],
)
def test_runs_longer_than_the_interval_by_design_are_not_blocked(
    spec: dict[str, Any], runs_take: timedelta, until: datetime
) -> None:
    jobs = forbid_controller(
        spec["schedule"], begin=CREATED, until=until, duration=lambda _: runs_take
    )
    history = operate(spec, jobs, begin=CREATED, until=until, created=CREATED)
    assert blocked_instants(history) == []
    final = history[-1][1].status
    assert final.missed_runs == 0
    assert all(condition(o, "Late") == "False" for _, o in history)
    # Every due slot without a Job is counted as skipped, once; except one whose grace
    # ends as the controller starts a later slot (lastScheduleTime passes it first).
    started = {j.slot: j.created for j in jobs}

    def passed_over_before_due(slot: datetime) -> bool:
        later = [created for s, created in started.items() if s > slot]
        return bool(later) and min(later) <= slot + GRACE

    due = _slots(spec["schedule"], CREATED, history[-1][0] - GRACE)
    skipped = [s for s in due if s not in started and not passed_over_before_due(s)]
    assert final.skipped_runs.forbid == len(skipped)
    assert final.skipped_runs.replace == 0


def _slots(expression: str, after: datetime, until: datetime) -> list[datetime]:
    return schedule.parse(expression).slots(after, until, limit=100_000)


DAILY_RUN = datetime(2026, 11, 28, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "in_flight", "first_due_slot", "pending"),
    [
        pytest.param(EVERY_MINUTE, TEN, ONE_MINUTE_ON, False, id="per-minute, running"),
        pytest.param(
            EVERY_MINUTE, TEN, ONE_MINUTE_ON, True, id="per-minute, pending (no startTime)"
        ),
        pytest.param(HOURLY, TEN, TEN + timedelta(hours=1), False, id="hourly, running"),
        pytest.param(DAILY, DAILY_RUN, DAILY_RUN + timedelta(days=1), False, id="daily, running"),
    ],
)
def test_controller_down_with_a_run_in_flight_is_blocked_within_grace_plus_30s(
    spec: dict[str, Any], in_flight: datetime, first_due_slot: datetime, pending: bool
) -> None:
    """kube-controller-manager stops 30 s into the run of `in_flight`: its Job never
    finishes (or never starts), and the next slot is held back (Forbid). Defaults."""
    begin = in_flight - seconds(30)
    dies = in_flight + seconds(30)
    until = first_due_slot + timedelta(hours=2)
    jobs = forbid_controller(
        spec["schedule"],
        begin=begin,
        until=until,
        duration=lambda _: seconds(40),
        down_at=dies,
        pending=pending,
    )
    assert len(jobs) == 1  # the run in flight
    history = operate(spec, jobs, begin=begin, until=until, created=begin)
    deadline = first_due_slot + GRACE + seconds(30)
    for t, outcome in history:
        if t >= deadline:
            assert "True" in (condition(outcome, "Late"), condition(outcome, "Blocked")), t
    assert condition(state_at(history, deadline), "Blocked") == "True"
    assert blocked_instants(history)[0] <= first_due_slot + GRACE + seconds(2)
    [message] = blocked_events(history)  # one Event per episode
    assert jobs[0].name in message
    assert ("pending" if pending else "running") in message


@pytest.mark.parametrize("policy", ["Replace", "Allow"])
def test_controller_down_with_a_run_in_flight_is_late_when_nothing_holds_slots_back(
    policy: str,
) -> None:
    """Under Replace or Allow the controller would have started the slot: no Job is a
    missed slot, whatever runs."""
    until = TEN + timedelta(minutes=10)
    jobs = forbid_controller(
        "* * * * *",
        begin=CREATED,
        until=until,
        duration=lambda _: seconds(40),
        down_at=CONTROLLER_DIES,
    )
    spec = {**EVERY_MINUTE, "concurrencyPolicy": policy}
    history = operate(spec, jobs, begin=CREATED, until=until, created=CREATED)
    late = state_at(history, ONE_MINUTE_ON + GRACE)
    assert (condition(late, "Late"), condition(late, "Blocked")) == ("True", "False")


def test_controller_down_with_no_run_in_flight_is_late_within_grace_plus_30s() -> None:
    jobs = forbid_controller(
        "* * * * *",
        begin=CREATED,
        until=TEN + timedelta(minutes=10),
        duration=lambda _: seconds(20),
        down_at=CONTROLLER_DIES,
    )
    history = operate(
        EVERY_MINUTE, jobs, begin=CREATED, until=TEN + timedelta(minutes=10), created=CREATED
    )
    late = state_at(history, ONE_MINUTE_ON + GRACE + seconds(30))
    assert (condition(late, "Late"), condition(late, "Blocked")) == ("True", "False")


@pytest.mark.parametrize(
    ("pending", "since", "state"),
    [
        pytest.param(False, TEN + seconds(1), "running", id="running forever"),
        pytest.param(True, TEN, "pending (its Job has not started)", id="pending forever"),
    ],
)
def test_a_run_that_never_ends_is_blocked_after_the_threshold_and_counts_slots(
    pending: bool, since: datetime, state: str
) -> None:
    """The hourly 10:00 run hangs (or its Job never starts: no startTime, so it is
    active since its creationTimestamp) while the controllers keep working."""
    until = TEN + timedelta(hours=4)
    jobs = forbid_controller(
        "0 * * * *", begin=CREATED, until=until, duration=never, pending=pending
    )
    history = operate(HOURLY, jobs, begin=CREATED, until=until, created=CREATED)
    assert [j.name for j in jobs] == ["backup-29931000"]
    first = blocked_instants(history)[0]
    assert first == since + timedelta(hours=1) + GRACE + seconds(1)
    assert condition(state_at(history, first - seconds(1)), "Blocked") == "False"
    final = history[-1][1].status
    blocked = next(c for c in final.conditions if c.type == "Blocked")
    assert blocked.reason == "RunStillActive"
    assert blocked.last_transition_time == first
    assert "Job backup-29931000" in blocked.message
    assert f"has been {state} since {since:%Y-%m-%dT%H:%M:%SZ}" in blocked.message
    assert "holds back 3 due slot(s) since 2026-11-28T11:00:00Z" in blocked.message
    assert final.skipped_runs.forbid == 3
    assert final.missed_runs == 0
    assert len(blocked_events(history)) == 1


@pytest.mark.parametrize(
    ("threshold", "blocked_from"),
    [
        pytest.param(1, TEN + seconds(1) + timedelta(minutes=1) + GRACE + seconds(1), id="1"),
        pytest.param(2, TEN + seconds(1) + timedelta(minutes=2) + GRACE + seconds(1), id="2"),
        pytest.param(5, TEN + seconds(1) + timedelta(minutes=5) + GRACE + seconds(1), id="5"),
    ],
)
def test_blocked_after_skipped_runs_sets_how_many_intervals_a_run_may_take(
    threshold: int, blocked_from: datetime
) -> None:
    spec = {**EVERY_MINUTE, "blockedAfterSkippedRuns": threshold}
    until = TEN + timedelta(minutes=15)
    jobs = forbid_controller("* * * * *", begin=CREATED, until=until, duration=never)
    history = operate(spec, jobs, begin=CREATED, until=until, created=CREATED)
    assert blocked_instants(history)[0] == blocked_from


def test_the_run_ending_clears_blocked() -> None:
    """A 10-minute run on a per-minute schedule: Blocked while it overruns, then clear."""
    until = TEN + timedelta(minutes=12)
    jobs = forbid_controller(
        "* * * * *", begin=CREATED, until=until, duration=lambda s: timedelta(minutes=10)
    )
    history = operate(EVERY_MINUTE, jobs, begin=CREATED, until=until, created=CREATED)
    assert condition(state_at(history, TEN + timedelta(minutes=5)), "Blocked") == "True"
    ended = jobs[0].end
    assert ended is not None
    assert condition(state_at(history, ended), "Blocked") == "False"
    # 10:01 .. 10:09 (10:10 starts when the run ends), and 10:11, held by 10:10's run.
    assert history[-1][1].status.skipped_runs.forbid == 10


def test_an_hourly_run_of_75_minutes_is_blocked_at_the_default_while_it_overruns() -> None:
    """At 11:01:02 a 75-minute run of 10:00 looks exactly like one whose Job will never
    finish because kube-controller-manager died: both are 61 minutes old and hold back
    11:00. The default must call it Blocked (see the case above for threshold 2); it
    clears when the run ends, and each overrun is one episode with one Event."""
    until = TEN + timedelta(hours=3)
    jobs = forbid_controller(
        "0 * * * *", begin=CREATED, until=until, duration=lambda _: timedelta(minutes=75)
    )
    history = operate(HOURLY, jobs, begin=CREATED, until=until, created=CREATED)
    eleven_o_one = TEN + timedelta(hours=1, minutes=1)
    assert condition(state_at(history, eleven_o_one + seconds(1)), "Blocked") == "False"
    assert condition(state_at(history, eleven_o_one + seconds(2)), "Blocked") == "True"
    assert condition(state_at(history, TEN + timedelta(minutes=75, seconds=1)), "Blocked") == (
        "False"
    )
    assert len(blocked_events(history)) == len([j for j in jobs if j.end and j.end < until])


# Direct reconciles for what the controller model does not cover.

HUNG = job(
    "backup-29931000",
    scheduled="2026-11-28T10:00:00Z",
    created="2026-11-28T10:00:00Z",
    start="2026-11-28T10:00:01Z",
)


def reconcile(
    spec: dict[str, Any],
    now: datetime,
    jobs: list[dict[str, Any]],
    status: dict[str, Any] | None = None,
    last_schedule: str | None = "2026-11-28T10:00:00Z",
) -> Outcome:
    body = task(spec, status, creationTimestamp="2026-11-28T09:30:00Z")
    cronjob: dict[str, Any] = {"metadata": {"name": "backup"}, "status": {}}
    if last_schedule:
        cronjob["status"]["lastScheduleTime"] = last_schedule
    return compute_status(body, cronjob, jobs, now)


def wire(outcome: Outcome) -> dict[str, Any]:
    return dict(outcome.status.model_dump(by_alias=True, mode="json", exclude_none=True))


def test_a_week_long_hang_is_cheap_to_judge_and_counted_exactly_in_status() -> None:
    a_week_on = TEN + timedelta(days=7)
    first = reconcile(EVERY_MINUTE, a_week_on, [HUNG])
    assert first.status.skipped_runs.forbid == 10_000  # counting stops at 10,000 per reconcile
    then = reconcile(EVERY_MINUTE, a_week_on + timedelta(minutes=1), [HUNG], wire(first))
    assert then.status.skipped_runs.forbid == 7 * 24 * 60  # 10:01 .. a week on at 10:00
    [blocked] = [c for c in then.status.conditions if c.type == "Blocked"]
    assert "holds back 100+ due slot(s) since 2026-11-28T10:01:00Z" in blocked.message
    # The message no longer changes with every slot: no status write for it.
    later = reconcile(EVERY_MINUTE, a_week_on + timedelta(minutes=2), [HUNG], wire(then))
    assert [c.message for c in later.status.conditions if c.type == "Blocked"] == [blocked.message]


def test_a_run_started_by_hand_holds_nothing_back() -> None:
    """The controller does not wait for Jobs it did not start: with the controller
    down, a slot passing during a manual run is missed, not skipped."""
    manual = job("backup-manual", created="2026-11-28T10:59:00Z", start="2026-11-28T10:59:01Z")
    outcome = reconcile(HOURLY, TEN + timedelta(hours=1, minutes=2), [manual])
    assert (outcome.status.missed_runs, outcome.status.skipped_runs.forbid) == (1, 0)
    assert condition(outcome, "Late") == "True"
    assert condition(outcome, "Blocked") == "False"


def test_suspension_pauses_blocked() -> None:
    at = TEN + timedelta(hours=3)
    blocked = reconcile(HOURLY, at, [HUNG])
    assert condition(blocked, "Blocked") == "True"
    suspended = reconcile({**HOURLY, "suspend": True}, at, [HUNG], wire(blocked))
    [cond] = [c for c in suspended.status.conditions if c.type == "Blocked"]
    assert (cond.status, cond.reason) == ("False", "Suspended")


def test_an_oldest_active_run_includes_a_pending_job() -> None:
    pending = job(
        "backup-29931000", scheduled="2026-11-28T10:00:00Z", created="2026-11-28T10:00:00Z"
    )
    outcome = reconcile(HOURLY, TEN + timedelta(minutes=5), [pending])
    assert outcome.oldest_active == TEN
    assert outcome.status.active == ["backup-29931000"]
