"""compute_status: a pure function of (task, CronJob, Jobs, now)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cronwarden.core.conditions import Event, Problem
from cronwarden.core.runs import run_of
from cronwarden.core.status import compute_status
from tests.unit.factories import job, task

# Named instants. The default schedule is "30 2 * * *" (UTC).
JUST_BEFORE_THE_RUN = datetime(2026, 11, 28, 2, 29, 59, tzinfo=UTC)
AFTER_THE_RUN = datetime(2026, 11, 28, 2, 31, 10, tzinfo=UTC)
NEXT_DAY_AFTER_THE_RUN = datetime(2026, 11, 29, 2, 31, 10, tzinfo=UTC)

CRONJOB: dict[str, Any] = {
    "metadata": {"name": "backup"},
    "status": {"lastScheduleTime": "2026-11-28T02:30:00Z"},
}
SUCCEEDED = job(
    "backup-29930550",
    scheduled="2026-11-28T02:30:00Z",
    start="2026-11-28T02:30:01Z",
    complete="2026-11-28T02:31:00Z",
)
FAILED = job(
    "backup-29930550",
    scheduled="2026-11-28T02:30:00Z",
    start="2026-11-28T02:30:01Z",
    failed="2026-11-28T02:31:00Z",
)
FAILED_NEXT_DAY = job(
    "backup-29931990",
    scheduled="2026-11-29T02:30:00Z",
    start="2026-11-29T02:30:01Z",
    failed="2026-11-29T02:31:00Z",
)
RUNNING = job("backup-29930550", scheduled="2026-11-28T02:30:00Z", start="2026-11-28T02:30:01Z")


def status_and_events(*args: Any) -> tuple[Any, list[Event]]:
    outcome = compute_status(*args)
    return outcome.status, outcome.events


def cond(status: Any, type_: str) -> Any:
    return next(c for c in status.conditions if c.type == type_)


def wire(status: Any) -> dict[str, Any]:
    """The status as it comes back from the API server."""
    return dict(status.model_dump(by_alias=True, mode="json", exclude_none=True))


def test_fresh_task_is_ready_with_next_run_and_no_events() -> None:
    status, events = status_and_events(task(), CRONJOB, [], JUST_BEFORE_THE_RUN)
    assert status.next_schedule_time == datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
    assert status.observed_generation == 1
    assert status.cron_job_name == "backup"
    assert cond(status, "Ready").status == "True"
    assert cond(status, "Ready").reason == "Reconciled"
    assert cond(status, "Failing").status == "False"
    assert cond(status, "Suspended").status == "False"
    assert events == []


def test_running_job_is_active_and_not_counted() -> None:
    status, events = status_and_events(task(), CRONJOB, [RUNNING], AFTER_THE_RUN)
    assert status.active == ["backup-29930550"]
    assert (status.succeeded, status.failed, status.last_run) == (0, 0, None)
    assert events == []


def test_completed_job_is_recorded_once() -> None:
    status, events = status_and_events(task(), CRONJOB, [SUCCEEDED], AFTER_THE_RUN)
    assert status.succeeded == 1
    assert status.last_successful_time == datetime(2026, 11, 28, 2, 31, tzinfo=UTC)
    assert status.last_schedule_time == datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
    assert status.last_run is not None
    assert (status.last_run.job, status.last_run.result) == ("backup-29930550", "Succeeded")
    assert status.last_run.scheduled_time == datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
    assert [(e.type, e.reason) for e in events] == [("Normal", "RunSucceeded")]
    assert "succeeded after 59s" in events[0].message

    again, events = status_and_events(
        task(status=wire(status)), CRONJOB, [SUCCEEDED], AFTER_THE_RUN
    )
    assert again == status
    assert events == []


def test_failures_count_in_a_row_and_make_the_task_failing() -> None:
    spec = {"maxConsecutiveFailures": 2}
    first, events = status_and_events(task(spec), CRONJOB, [FAILED], AFTER_THE_RUN)
    assert (first.failed, first.consecutive_failures) == (1, 1)
    assert first.last_failure_time == datetime(2026, 11, 28, 2, 31, tzinfo=UTC)
    assert first.last_run is not None
    assert first.last_run.reason == "BackoffLimitExceeded"
    assert cond(first, "Failing").status == "False"
    assert [(e.type, e.reason) for e in events] == [("Warning", "RunFailed")]
    assert "BackoffLimitExceeded" in events[0].message

    # The first Job was deleted by the history limit: still counted once.
    second, _ = status_and_events(
        task(spec, wire(first)), CRONJOB, [FAILED_NEXT_DAY], NEXT_DAY_AFTER_THE_RUN
    )
    assert (second.failed, second.consecutive_failures) == (2, 2)
    failing = cond(second, "Failing")
    assert (failing.status, failing.reason) == ("True", "ConsecutiveFailures")
    assert failing.last_transition_time == NEXT_DAY_AFTER_THE_RUN.replace(microsecond=0)


def test_a_success_resets_consecutive_failures() -> None:
    failed, _ = status_and_events(task(), CRONJOB, [FAILED], AFTER_THE_RUN)
    assert cond(failed, "Failing").status == "True"
    success = job(
        "backup-29931990",
        scheduled="2026-11-29T02:30:00Z",
        start="2026-11-29T02:30:01Z",
        complete="2026-11-29T02:30:30Z",
    )
    status, _ = status_and_events(
        task(status=wire(failed)), CRONJOB, [success], NEXT_DAY_AFTER_THE_RUN
    )
    assert (status.consecutive_failures, status.succeeded, status.failed) == (0, 1, 1)
    assert cond(status, "Failing").status == "False"


def test_jobs_finishing_in_one_reconcile_are_recorded_in_finish_order() -> None:
    early = job("backup-1", start="2026-11-28T02:30:01Z", failed="2026-11-28T02:30:10Z")
    late = job("backup-2", start="2026-11-28T02:30:02Z", complete="2026-11-28T02:30:20Z")
    status, events = status_and_events(task(), CRONJOB, [late, early], AFTER_THE_RUN)
    assert [e.reason for e in events] == ["RunFailed", "RunSucceeded"]
    assert status.consecutive_failures == 0
    assert status.last_run is not None
    assert status.last_run.job == "backup-2"


def test_suspended_task_has_no_next_run() -> None:
    status, _ = status_and_events(task({"suspend": True}), CRONJOB, [], JUST_BEFORE_THE_RUN)
    assert status.next_schedule_time is None
    assert cond(status, "Suspended").status == "True"


def test_time_zone_moves_the_next_run() -> None:
    status, _ = status_and_events(
        task({"timeZone": "Europe/Berlin"}), CRONJOB, [], JUST_BEFORE_THE_RUN
    )
    # 02:30 in Berlin (UTC+1 in November) is 01:30 UTC: the next one is tomorrow.
    assert status.next_schedule_time == datetime(2026, 11, 29, 1, 30, tzinfo=UTC)


def test_unknown_time_zone_is_reported_once() -> None:
    status, events = status_and_events(
        task({"timeZone": "Mars/Olympus_Mons"}), CRONJOB, [], JUST_BEFORE_THE_RUN
    )
    ready = cond(status, "Ready")
    assert (ready.status, ready.reason) == ("False", "UnknownTimeZone")
    assert "Mars/Olympus_Mons" in ready.message
    assert [(e.type, e.reason) for e in events] == [("Warning", "UnknownTimeZone")]
    again, events = status_and_events(
        task({"timeZone": "Mars/Olympus_Mons"}, wire(status)), CRONJOB, [], AFTER_THE_RUN
    )
    assert events == []
    assert cond(again, "Ready").last_transition_time == ready.last_transition_time


def test_schedule_the_controller_would_reject_is_invalid_spec() -> None:
    status, events = status_and_events(task({"schedule": "5 4 * * 7"}), CRONJOB, [], AFTER_THE_RUN)
    ready = cond(status, "Ready")
    assert (ready.status, ready.reason) == ("False", "InvalidSpec")
    assert "day-of-week" in ready.message
    assert [e.reason for e in events] == ["InvalidSpec"]


def test_apply_problem_makes_ready_false() -> None:
    problem = Problem("InvalidSpec", "the CronJob was rejected: spec.jobTemplate: Invalid value")
    status, events = status_and_events(task(), None, [], AFTER_THE_RUN, problem)
    assert cond(status, "Ready").reason == "InvalidSpec"
    assert status.next_schedule_time is None
    assert [e.reason for e in events] == ["InvalidSpec"]


def test_missing_cronjob_is_not_ready() -> None:
    status, _ = status_and_events(task(), None, [], AFTER_THE_RUN)
    assert (cond(status, "Ready").status, cond(status, "Ready").reason) == (
        "False",
        "CronJobMissing",
    )


def test_run_of_reads_the_terminal_conditions_only() -> None:
    pending_failure = job("j", start="2026-11-28T02:30:01Z")
    pending_failure["status"]["conditions"] = [
        {"type": "FailureTarget", "status": "True", "lastTransitionTime": "2026-11-28T02:30:05Z"}
    ]
    assert run_of(pending_failure).result == "Running"
    assert run_of(FAILED).finished == datetime(2026, 11, 28, 2, 31, tzinfo=UTC)


def test_daylight_saving_warning_once_per_generation() -> None:
    spec = {"schedule": "30 2 * * *", "timeZone": "Europe/Berlin"}
    winter = datetime(2026, 12, 1, tzinfo=UTC)
    status, events = status_and_events(task(spec), CRONJOB, [], winter)
    notes = [e for e in events if e.reason == "DaylightSavingTime"]
    assert notes
    assert all(e.type == "Warning" for e in notes)
    assert any("2027-03-28" in e.message for e in notes)  # 02:30 does not exist that day
    _, again = status_and_events(task(spec, wire(status)), CRONJOB, [], winter)
    assert not [e for e in again if e.reason == "DaylightSavingTime"]
    _, utc = status_and_events(task({"schedule": "30 2 * * *"}), CRONJOB, [], winter)
    assert not [e for e in utc if e.reason == "DaylightSavingTime"]


def test_status_written_by_another_version_still_parses() -> None:
    status = {"succeeded": 3, "someFutureField": {"x": 1}, "conditions": []}
    assert task(status=status).status.succeeded == 3


def test_the_cronjobs_last_success_is_a_lower_bound_after_downtime() -> None:
    """Runs that finished while the operator was down and whose Jobs are gone: the
    CronJob's later lastSuccessfulTime proves one success, counted once (no more can
    be proven), lastSuccessfulTime is never older than the CronJob's, and a success
    after the last known failure ends the failure streak."""
    failing = task(
        status={
            "lastSuccessfulTime": "2026-11-20T02:31:00Z",
            "lastFailureTime": "2026-11-27T02:31:00Z",
            "succeeded": 4,
            "failed": 2,
            "consecutiveFailures": 1,
        }
    )
    cronjob = {
        "metadata": {"name": "backup"},
        "status": {
            "lastScheduleTime": "2026-11-28T02:30:00Z",
            "lastSuccessfulTime": "2026-11-28T02:31:00Z",
        },
    }
    status = compute_status(failing, cronjob, [], AFTER_THE_RUN).status
    assert status.last_successful_time == datetime(2026, 11, 28, 2, 31, tzinfo=UTC)
    assert (status.succeeded, status.failed) == (5, 2)  # one proven, none guessed
    assert status.consecutive_failures == 0
    again = task(status=status.model_dump(by_alias=True, mode="json"))
    assert compute_status(again, cronjob, [], AFTER_THE_RUN).status.succeeded == 5

    older = {**cronjob, "status": {"lastSuccessfulTime": "2026-11-19T02:31:00Z"}}
    status = compute_status(failing, older, [], AFTER_THE_RUN).status
    assert status.last_successful_time == datetime(2026, 11, 20, 2, 31, tzinfo=UTC)
    assert status.consecutive_failures == 1


def test_no_time_zone_is_predicted_in_etc_utc() -> None:
    unset, _ = status_and_events(task(), CRONJOB, [], JUST_BEFORE_THE_RUN)
    explicit, _ = status_and_events(task({"timeZone": "Etc/UTC"}), CRONJOB, [], JUST_BEFORE_THE_RUN)
    assert unset.next_schedule_time == explicit.next_schedule_time
    assert unset.next_schedule_time == datetime(2026, 11, 28, 2, 30, tzinfo=UTC)


def test_kstatus_conditions_follow_ready() -> None:
    """kstatus (Flux, cli-utils) reads Reconciling and Stalled: an invalid spec is
    Stalled, a CronJob being created is Reconciling, a task in sync is neither."""

    def of(status: Any, type_: str) -> tuple[str, str]:
        cond = next(c for c in status.conditions if c.type == type_)
        return cond.status, cond.reason

    bad = compute_status(task(), None, [], AFTER_THE_RUN, Problem("InvalidSpec", "x")).status
    assert of(bad, "Stalled") == ("True", "InvalidSpec")
    assert of(bad, "Reconciling")[0] == "False"
    creating = compute_status(task(), None, [], AFTER_THE_RUN).status
    assert of(creating, "Reconciling") == ("True", "CronJobMissing")
    assert of(creating, "Stalled")[0] == "False"
    fine = compute_status(task(), CRONJOB, [], AFTER_THE_RUN).status
    assert of(fine, "Reconciling")[0] == "False"
    assert of(fine, "Stalled")[0] == "False"


# A task that worked, then an edit broke it: the CronJob applied before stays.
APPLIED_CRONJOB: dict[str, Any] = {
    "metadata": {"name": "backup"},
    "spec": {"schedule": "30 2 * * *", "timeZone": "Europe/Berlin"},
    "status": {"lastScheduleTime": "2026-11-28T02:30:00Z"},
}
KEEPS_RUNNING = (
    "; CronJob backup keeps running on the spec it was last applied with "
    '(schedule "30 2 * * *", timeZone "Europe/Berlin") until the task is fixed or deleted'
)


def test_unknown_zone_after_an_edit_says_the_last_cronjob_keeps_running() -> None:
    # What the controller passes when the API server refused the edited CronJob:
    # the problem, and the live CronJob as it was last applied.
    problem = Problem("UnknownTimeZone", 'spec.timeZone: unknown time zone "Mars/Olympus_Mons"')
    status, events = status_and_events(
        task({"timeZone": "Mars/Olympus_Mons"}), APPLIED_CRONJOB, [], AFTER_THE_RUN, problem
    )
    ready, stalled = cond(status, "Ready"), cond(status, "Stalled")
    assert (ready.status, ready.reason) == ("False", "UnknownTimeZone")
    assert ready.message == problem.message + KEEPS_RUNNING
    assert stalled.message == ready.message
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Warning", "UnknownTimeZone", ready.message)
    ]
    # The status still names the CronJob that runs.
    assert status.cron_job_name == "backup"


def test_invalid_schedule_after_an_edit_says_the_last_cronjob_keeps_running() -> None:
    status, _ = status_and_events(
        task({"schedule": "5 4 * * 7"}), APPLIED_CRONJOB, [], AFTER_THE_RUN
    )
    ready = cond(status, "Ready")
    assert ready.reason == "InvalidSpec"
    assert ready.message.endswith(KEEPS_RUNNING)
    assert "day-of-week" in ready.message


def test_invalid_spec_without_a_cronjob_says_nothing_runs_on() -> None:
    problem = Problem("UnknownTimeZone", 'spec.timeZone: unknown time zone "Mars/Olympus_Mons"')
    status, _ = status_and_events(
        task({"timeZone": "Mars/Olympus_Mons"}), None, [], AFTER_THE_RUN, problem
    )
    assert cond(status, "Ready").message == problem.message


def test_problems_that_are_not_the_spec_say_nothing_about_a_cronjob() -> None:
    # A refused namespace or a CronJob of someone else: no CronJob of the task runs.
    problem = Problem("NamespaceExcluded", "namespace kube-system is excluded")
    status, _ = status_and_events(task(), APPLIED_CRONJOB, [], AFTER_THE_RUN, problem)
    assert cond(status, "Ready").message == problem.message


def test_the_keeps_running_message_is_stable_so_the_warning_is_posted_once() -> None:
    problem = Problem("UnknownTimeZone", 'spec.timeZone: unknown time zone "Mars/Olympus_Mons"')
    spec = {"timeZone": "Mars/Olympus_Mons"}
    first, _ = status_and_events(task(spec), APPLIED_CRONJOB, [], AFTER_THE_RUN, problem)
    again, events = status_and_events(
        task(spec, wire(first)), APPLIED_CRONJOB, [], NEXT_DAY_AFTER_THE_RUN, problem
    )
    assert events == []
    assert cond(again, "Ready") == cond(first, "Ready")


def test_a_new_jobs_slot_is_the_last_schedule_before_the_cronjob_says_so() -> None:
    """The CronJob controller creates the Job, then sets its lastScheduleTime to the
    Job's slot: the status written for the new Job already holds it, so the CronJob's
    update a moment later changes nothing (one write per run started, not two)."""
    now = datetime(2026, 11, 28, 2, 30, 2, tzinfo=UTC)
    before = {"metadata": {"name": "backup"}, "status": {}}
    seen_job_first = compute_status(task(), before, [RUNNING], now).status
    assert seen_job_first.last_schedule_time == datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
    assert seen_job_first.active == ["backup-29930550"]
    assert seen_job_first.next_schedule_time == datetime(2026, 11, 29, 2, 30, tzinfo=UTC)
    # The CronJob's update arrives: nothing left to write.
    again = task(status=wire(seen_job_first))
    assert compute_status(again, CRONJOB, [RUNNING], now).status == again.status
    # A manual run (no slot) does not move it.
    manual = job("backup-manual-1", start="2026-11-28T02:30:01Z")
    assert compute_status(task(), before, [manual], now).status.last_schedule_time is None
