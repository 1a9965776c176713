"""Runs whose pods are never admitted, and the API server's warnings on the CronJob's
apply: pure tables at named instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronwarden.core import admission, apiwarnings
from cronwarden.core.runs import Run, pod_count, run_of
from cronwarden.core.status import Outcome, compute_status
from cronwarden.wire import warning_texts
from tests.unit.factories import task

GRACE = timedelta(seconds=60)
SLOT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
CREATED = SLOT + timedelta(seconds=1)  # the CronJob controller created the Job
JUST_AFTER = CREATED + timedelta(seconds=2)  # the Job controller's first refusals
AT_GRACE = CREATED + GRACE  # not longer than the grace yet
PAST_GRACE = CREATED + GRACE + timedelta(seconds=1)
REFUSAL = (
    'Error creating: pods "backup-29400600-x7k2p" is forbidden: violates PodSecurity '
    '"restricted:latest": privileged (container "main" must not set '
    "securityContext.privileged=true)"
)
# What the Job controller writes for a Job whose pods it could not create.
NO_POD = {"ready": 0, "terminating": 0, "uncountedTerminatedPods": {}}


def job(name: str = "backup-29400600", uid: str = "uid-1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": uid,
            "creationTimestamp": CREATED.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "annotations": {
                "batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-11-28T10:00:00Z"
            },
        },
        "status": {"startTime": "2026-11-28T10:00:01Z", **status},
    }


@pytest.mark.parametrize(
    ("status", "pods"),
    [
        pytest.param({}, None, id="not synced by the Job controller yet"),
        pytest.param({"startTime": "x"}, None, id="startTime but no counts"),
        pytest.param(NO_POD, 0, id="no pod"),
        pytest.param({**NO_POD, "active": 1}, 1, id="a pending or running pod"),
        pytest.param({**NO_POD, "active": 1, "ready": 1}, 1, id="ready counts within active"),
        pytest.param({**NO_POD, "terminating": 1}, 1, id="a terminating pod"),
        pytest.param({**NO_POD, "failed": 2}, 2, id="failed pods"),
        pytest.param(
            {**NO_POD, "uncountedTerminatedPods": {"succeeded": ["u1"]}},
            1,
            id="a pod not counted yet",
        ),
    ],
)
def test_pods_as_the_job_controller_counts_them(status: dict[str, Any], pods: int | None) -> None:
    assert pod_count(status) == pods


def runs(*jobs: dict[str, Any]) -> list[Run]:
    return [run_of(j) for j in jobs]


@pytest.mark.parametrize(
    ("jobs", "refusals", "now", "expected"),
    [
        pytest.param([job(**NO_POD)], {}, AT_GRACE, [], id="no pod, within the grace"),
        pytest.param(
            [job(**NO_POD)], {}, PAST_GRACE, [("backup-29400600", None)], id="no pod past grace"
        ),
        pytest.param(
            [job(**NO_POD)],
            {"uid-1": REFUSAL},
            JUST_AFTER,
            [("backup-29400600", REFUSAL)],
            id="refused: at once",
        ),
        pytest.param(
            [job(**NO_POD, active=1)],
            {"uid-1": REFUSAL},
            PAST_GRACE,
            [],
            id="refused once, then its pod was created",
        ),
        pytest.param(
            [job(**{k: v for k, v in NO_POD.items() if k != "ready"})],
            {},
            PAST_GRACE,
            [],
            id="counts not written: the Job controller has not synced it",
        ),
        pytest.param(
            [
                job(
                    **NO_POD,
                    conditions=[{"type": "Suspended", "status": "True"}],
                )
            ],
            {"uid-1": REFUSAL},
            PAST_GRACE,
            [],
            id="a suspended Job has no pod by design",
        ),
        pytest.param(
            [
                job(
                    **NO_POD,
                    conditions=[
                        {
                            "type": "Failed",
                            "status": "True",
                            "reason": "DeadlineExceeded",
                            "lastTransitionTime": "2026-11-28T10:05:00Z",
                        }
                    ],
                )
            ],
            {"uid-1": REFUSAL},
            PAST_GRACE,
            [],
            id="finished (activeDeadlineSeconds): a failed run, not an active one",
        ),
        pytest.param(
            [job("b-2", "uid-2", **NO_POD), job(**NO_POD)],
            {"uid-2": REFUSAL},
            JUST_AFTER,
            [("b-2", REFUSAL)],
            id="only the refused one before the grace",
        ),
    ],
)
def test_which_runs_are_not_admitted(
    jobs: list[dict[str, Any]],
    refusals: dict[str, str],
    now: datetime,
    expected: list[tuple[str, str | None]],
) -> None:
    found = admission.not_admitted(runs(*jobs), refusals, now, GRACE)
    assert [(u.run.job, u.refusal) for u in found] == expected


def test_a_podless_run_without_a_refusal_wakes_the_operator_at_the_end_of_its_grace() -> None:
    podless = runs(
        job(**NO_POD), job("b-2", "uid-2", **NO_POD), job("b-3", "uid-3", **NO_POD, active=1)
    )
    assert admission.deadlines(podless, {"uid-2": REFUSAL}, GRACE) == [CREATED + GRACE]


def test_the_blockage_quotes_the_refusal_of_the_newest_refused_run() -> None:
    older = job("backup-29400540", "uid-0", **NO_POD)
    older["metadata"]["creationTimestamp"] = "2026-11-28T09:00:01Z"
    found = admission.not_admitted(
        runs(older, job(**NO_POD)), {"uid-1": REFUSAL, "uid-0": "older text"}, JUST_AFTER, GRACE
    )
    blockage = admission.blockage(found, JUST_AFTER, GRACE)
    assert blockage.reason == "PodsNotAdmitted"
    assert blockage.message == (
        "Job backup-29400600 (the run for 2026-11-28T10:00:00Z) has no pod: the API server "
        f"refuses its pods: {REFUSAL}; 1 more run(s) without a pod: backup-29400540"
    )


def test_the_blockage_without_a_refusal_says_how_long_and_where_to_look() -> None:
    found = admission.not_admitted(runs(job(**NO_POD)), {}, PAST_GRACE, GRACE)
    message = admission.blockage(found, PAST_GRACE, GRACE).message
    assert message.startswith(
        "Job backup-29400600 (the run for 2026-11-28T10:00:00Z) has had no pod for 61s since it "
        "was created, longer than the 60s grace, and no FailedCreate Event on it says why"
    )


def test_a_long_refusal_is_cut() -> None:
    found = admission.not_admitted(runs(job(**NO_POD)), {"uid-1": "x" * 5000}, JUST_AFTER, GRACE)
    message = admission.blockage(found, JUST_AFTER, GRACE).message
    assert message.endswith("x" * (admission.MAX_QUOTED - 3) + "...")


# Warnings on the CronJob's apply

PS_WARNING = (
    'would violate PodSecurity "restricted:latest": privileged (container "main" must not set '
    "securityContext.privileged=true)"
)


@pytest.mark.parametrize(
    ("headers", "texts"),
    [
        pytest.param([], [], id="none"),
        pytest.param(
            [
                '299 - "would violate PodSecurity \\"restricted:latest\\": privileged (container '
                '\\"main\\" must not set securityContext.privileged=true)"'
            ],
            [PS_WARNING],
            id="PodSecurity, quotes escaped",
        ),
        pytest.param(
            ['299 - "a, b", 299 - "c"', '299 - "d" "Wed, 02 Dec 2026 00:00:00 GMT"'],
            ["a, b", "c", "d"],
            id="several per header, a comma inside one, a date",
        ),
        pytest.param(["not a warning"], ["not a warning"], id="unparsable: kept whole"),
    ],
)
def test_warning_headers(headers: list[str], texts: list[str]) -> None:
    assert warning_texts(headers) == texts


@pytest.mark.parametrize(
    ("previous", "received", "kept", "posted"),
    [
        pytest.param([], None, [], [], id="no apply, nothing held"),
        pytest.param([PS_WARNING], None, [PS_WARNING], [], id="no apply: the last ones stay"),
        pytest.param([], [PS_WARNING], [PS_WARNING], [PS_WARNING], id="a first warning"),
        pytest.param(
            [PS_WARNING], [PS_WARNING], [PS_WARNING], [], id="the same text again: no Event"
        ),
        pytest.param([PS_WARNING], [], [], [], id="an apply without warnings clears them"),
        pytest.param(
            [PS_WARNING],
            [PS_WARNING, "spec.x is deprecated", "spec.x is deprecated"],
            [PS_WARNING, "spec.x is deprecated"],
            ["spec.x is deprecated"],
            id="only the new text is posted, duplicates once",
        ),
    ],
)
def test_apply_warnings_once_per_distinct_text(
    previous: list[str], received: list[str] | None, kept: list[str], posted: list[str]
) -> None:
    held, events = apiwarnings.record(previous, received)
    assert held == kept
    assert [(e.type, e.reason, e.distinct) for e in events] == [
        ("Warning", "CronJobWarning", True)
    ] * len(posted)
    assert [e.message for e in events] == [apiwarnings.PREFIX + text for text in posted]


def test_apply_warnings_are_bounded() -> None:
    held, events = apiwarnings.record([], [f"warning {i} " + "y" * 2000 for i in range(50)])
    assert len(held) == apiwarnings.MAX_WARNINGS == len(events)
    assert all(len(text) == apiwarnings.MAX_TEXT for text in held)


# Through compute_status: the condition, its Event once per episode, the metric, the
# wake-up, and the warnings kept in status.

EVERY_MINUTE = {"schedule": "* * * * *", "missedRunGraceSeconds": 60}
CRONJOB: dict[str, Any] = {
    "metadata": {"name": "backup", "uid": "cj-1"},
    "status": {"lastScheduleTime": "2026-11-28T10:00:00Z", "active": [{"name": "x"}]},
}


def judged(
    spec: dict[str, Any],
    jobs: list[dict[str, Any]],
    now: datetime,
    refusals: dict[str, str] | None = None,
    previous: Outcome | None = None,
    warnings: list[str] | None = None,
) -> Outcome:
    status = previous.status.model_dump(by_alias=True, mode="json") if previous else None
    created = {"creationTimestamp": "2026-11-28T09:59:30Z"}
    return compute_status(
        task(spec, status, **created),
        CRONJOB,
        jobs,
        now,
        refusals=refusals,
        warnings=warnings,
    )


def blocked(outcome: Outcome) -> tuple[str, str]:
    [c] = [c for c in outcome.status.conditions if c.type == "Blocked"]
    return c.status, c.reason


def reasons(outcome: Outcome) -> list[str]:
    return [e.reason for e in outcome.events]


def test_a_refused_run_is_blocked_at_once_with_one_event_per_episode() -> None:
    refused = job(**NO_POD)
    first = judged(EVERY_MINUTE, [refused], JUST_AFTER, {"uid-1": REFUSAL})
    assert blocked(first) == ("True", "PodsNotAdmitted")
    assert first.not_admitted == 1
    assert reasons(first) == ["PodsNotAdmitted"]
    [event] = first.events
    assert event.type == "Warning"
    assert REFUSAL in event.message
    # The same episode: no second Event, however often it is reconciled.
    again = judged(EVERY_MINUTE, [refused], JUST_AFTER + GRACE, {"uid-1": REFUSAL}, first)
    assert blocked(again) == ("True", "PodsNotAdmitted")
    assert "PodsNotAdmitted" not in reasons(again)
    # Its pod is created (the namespace's policy changed): the episode ends.
    admitted = job(**NO_POD, active=1)
    healed = judged(EVERY_MINUTE, [admitted], JUST_AFTER + GRACE, {"uid-1": REFUSAL}, again)
    assert blocked(healed) == ("False", "NotBlocked")
    assert healed.not_admitted == 0


def test_a_podless_run_without_an_event_is_blocked_one_second_after_its_grace() -> None:
    hourly = {**EVERY_MINUTE, "schedule": "0 * * * *"}  # no slot comes first
    podless = job(**NO_POD)
    slot_due = judged(hourly, [podless], JUST_AFTER)
    assert slot_due.wake_at == SLOT + GRACE  # the 10:00 slot's grace ends (it has a Job)
    within = judged(hourly, [podless], SLOT + GRACE, None, slot_due)
    assert blocked(within) == ("False", "NotBlocked")
    assert within.wake_at == CREATED + GRACE + timedelta(seconds=1)
    at_wake = judged(hourly, [podless], CREATED + GRACE + timedelta(seconds=1), None, within)
    assert blocked(at_wake) == ("True", "PodsNotAdmitted")
    assert reasons(at_wake) == ["PodsNotAdmitted"]


def test_refused_pods_name_the_cause_even_when_the_run_also_holds_slots_back() -> None:
    """Forbid: past one interval plus the grace the refused run also holds the next slot
    back. The reason stays the cause; once the pod exists it is RunStillActive, and the
    Blocked Event of that episode is not posted (the task was Blocked all along)."""
    refused = job(**NO_POD)
    late = SLOT + timedelta(minutes=2, seconds=5)
    first = judged(EVERY_MINUTE, [refused], JUST_AFTER, {"uid-1": REFUSAL})
    held = judged(EVERY_MINUTE, [refused], late, {"uid-1": REFUSAL}, first)
    assert blocked(held) == ("True", "PodsNotAdmitted")
    assert held.status.skipped_runs.forbid >= 1
    running = judged(EVERY_MINUTE, [job(**NO_POD, active=1)], late, {}, held)
    assert blocked(running) == ("True", "RunStillActive")
    assert "Blocked" not in reasons(running)


def test_allow_piles_up_refused_runs_and_says_how_many() -> None:
    jobs = [
        job(f"backup-2940060{i}", f"uid-{i}", **NO_POD) for i in range(3)
    ]  # one per slot under Allow
    refusals = {f"uid-{i}": REFUSAL for i in range(3)}
    outcome = judged({**EVERY_MINUTE, "concurrencyPolicy": "Allow"}, jobs, JUST_AFTER, refusals)
    assert blocked(outcome) == ("True", "PodsNotAdmitted")
    assert outcome.not_admitted == 3
    [c] = [c for c in outcome.status.conditions if c.type == "Blocked"]
    assert c.message.endswith("; 2 more run(s) without a pod: backup-29400600, backup-29400601")


def test_a_suspended_task_is_not_blocked_by_refused_pods() -> None:
    outcome = judged(
        {**EVERY_MINUTE, "suspend": True}, [job(**NO_POD)], PAST_GRACE, {"uid-1": REFUSAL}
    )
    assert blocked(outcome) == ("False", "Suspended")
    assert outcome.not_admitted == 0


def test_apply_warnings_are_kept_in_status_and_posted_once() -> None:
    applied = judged(EVERY_MINUTE, [], JUST_AFTER, warnings=[PS_WARNING])
    assert applied.status.apply_warnings == [PS_WARNING]
    assert reasons(applied) == ["CronJobWarning"]
    # Later reconciles that apply nothing keep them, and post nothing.
    later = judged(EVERY_MINUTE, [], PAST_GRACE, previous=applied)
    assert later.status.apply_warnings == [PS_WARNING]
    assert "CronJobWarning" not in reasons(later)
