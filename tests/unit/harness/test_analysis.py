"""The chaos figures from hand-written records: each figure counts what it should and
nothing else. Times are seconds after T0 (named moments, no clock)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hack"))

from harness.analysis import Fault, analyse

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()  # a minute boundary
GRACE = 60.0
TASK, CJ = "task-uid", "cj-uid"


def iso(at: float) -> str:
    return datetime.fromtimestamp(T0 + at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rec(at: float, kind: str, **fields: Any) -> dict[str, Any]:
    return {"t": T0 + at, "kind": kind, "ns": "chaos", **fields}


def cronjob(at: float = -100, uid: str = CJ) -> dict[str, Any]:
    return rec(at, "cronjob_added", cronjob="c", uid=uid, task_uid=TASK)


def job(
    at: float, kind: str, name: str, slot: float | None, result: str | None = None
) -> dict[str, Any]:
    return rec(
        at,
        kind,
        job=name,
        uid=f"uid-{name}",
        cronjob="c",
        cronjob_uid=CJ,
        scheduled=iso(slot) if slot is not None else None,
        created=iso(slot + 1 if slot is not None else at),
        result=result,
        completion=iso(at) if kind == "job_finished" else None,
    )


def cronjob_success(at: float, success: float) -> dict[str, Any]:
    """The CronJob's lastSuccessfulTime as the recorder saw it change."""
    return rec(at, "cronjob_status", cronjob="c", uid=CJ, task_uid=TASK, last_success=iso(success))


def run(name: str, slot: float, result: str = "Succeeded") -> list[dict[str, Any]]:
    """A run started a second after its slot, finished two seconds later."""
    return [
        job(slot + 1, "job_created", name, slot),
        job(slot + 3, "job_finished", name, slot, result),
    ]


def task(at: float, **status: Any) -> dict[str, Any]:
    base = {
        "task": "t", "uid": TASK, "ready": "True", "late": "False", "blocked": "False",
        "succeeded": 0, "failed": 0, "unknown": 0, "missed": 0, "skipped": 0,
        "last_schedule": None, "last_success": None, "last_failure": None, "last_missed": None,
        "last_skipped": None, "watermark": None, "active": [],
    }  # fmt: skip
    return rec(at, "task", **{**base, **status})


def end(at: float) -> dict[str, Any]:
    return rec(at, "recorder_stopped")


def figures(records: list[dict[str, Any]], faults: list[Fault] | None = None) -> dict[str, Any]:
    return analyse(sorted(records, key=lambda r: r["t"]), faults or [], GRACE)


def test_a_run_counted_in_time_is_neither_lost_nor_twice() -> None:
    out = figures(
        [
            cronjob(),
            *run("c-1", 0),
            task(
                0,
            ),
            task(4, succeeded=1),
            end(100),
        ]
    )
    assert (out["runs_lost"], out["counted_twice"], out["runs_finished"]) == (0, 0, 1)


def test_a_run_never_counted_is_lost_and_one_counted_twice_is_too_many() -> None:
    lost = figures([cronjob(), *run("c-1", 0), task(0), end(100)])
    assert lost["runs_lost"] == 1
    assert lost["examples"]["runs_lost"]
    twice = figures([cronjob(), *run("c-1", 0), task(4, succeeded=2), end(100)])
    assert twice["counted_twice"] == 1


def test_runs_that_finished_and_vanished_inside_a_fault_need_only_the_cronjobs_evidence() -> None:
    records = [
        cronjob(),
        *run("c-1", 0),
        job(10, "job_deleted", "c-1", 0, "Succeeded"),
        *run("c-2", 60),
        cronjob_success(64, 63),
        job(70, "job_deleted", "c-2", 60, "Succeeded"),
        task(80, succeeded=1),  # only the CronJob's lastSuccessfulTime was left
        end(200),
    ]
    fault = Fault("kill", T0 - 1, T0 + 75)
    assert figures(records, [fault])["runs_lost"] == 0
    # Without the fault the operator was watching: both runs had to be counted.
    assert figures(records)["runs_lost"] == 1


def test_a_failure_is_checked_separately_from_successes() -> None:
    out = figures([cronjob(), *run("c-1", 0, "Failed"), task(4, succeeded=1), end(100)])
    assert (out["runs_lost"], out["counted_twice"]) == (1, 1)


def test_a_phantom_is_an_active_job_that_no_longer_exists() -> None:
    records = [
        cronjob(),
        job(1, "job_created", "c-1", 0),
        task(2, active=["c-1"]),
        job(20, "job_deleted", "c-1", 0),
        end(100),
    ]
    out = figures(records)
    assert (out["phantoms"], out["phantoms_final"]) == (1, 1)
    cleared = figures([*records[:-1], task(21, active=[]), end(100)])
    assert cleared["phantoms"] == 0


def test_counters_and_timestamps_never_go_back() -> None:
    records = [
        cronjob(),
        task(1, succeeded=3, last_success=iso(0)),
        task(2, succeeded=2, last_success=iso(0)),
        task(3, succeeded=2, last_success=iso(-60)),
        end(10),
    ]
    assert figures(records)["regressions"] == 2


def slot(at: float) -> dict[str, Any]:
    return rec(at, "slot", cronjob="c", uid=CJ, slot=iso(at))


def test_late_raised_for_a_slot_that_started_in_time_is_false() -> None:
    records = [cronjob(), slot(0), *run("c-1", 0), task(65, late="True", last_missed=iso(0))]
    out = figures([*records, end(200)])
    assert (out["false_alerts"], out["false_alerts_after"]) == (1, 1)
    # During a fault it counts, but not against the target.
    during = figures([*records, end(200)], [Fault("f", T0 + 40, T0 + 70)])
    assert (during["false_alerts"], during["false_alerts_after"]) == (1, 0)
    # Raised after the fault's end it does, even within the 30 s that missed alerts get:
    # a continued operator's first judgement (operator-freeze, README D3).
    after = figures([*records, end(200)], [Fault("f", T0 + 40, T0 + 50)])
    assert (after["false_alerts"], after["false_alerts_after"]) == (1, 1)


def test_a_job_created_in_the_last_second_of_the_grace_is_late() -> None:
    """Its creationTimestamp (whole seconds) is the grace's end: it was created at or
    after it, when the operator judged the slot missed (apiserver-restart: the CronJob
    controller came back and created the slot's Jobs 0.2 s after the grace ended)."""
    records = [
        cronjob(),
        slot(0),
        task(-50),
        job(GRACE + 0.2, "job_created", "c-1", 0) | {"created": iso(GRACE)},
        task(GRACE + 0.1, late="True", last_missed=iso(0)),
        end(200),
    ]
    out = figures(records)
    assert (out["false_alerts"], out["slots_missed"], out["missed_alerts"]) == (0, 1, 0)


def test_a_job_created_within_lag_of_the_grace_end_races_with_the_judgement() -> None:
    """Created 0.1 s before the grace ended, and judged missed at its end before the
    watch brought it (apiserver-restart): not a false alert; and on time, so a slot
    that needed no flag."""
    created = job(GRACE - 0.1, "job_created", "c-1", 0) | {"created": iso(GRACE - 1)}
    base = [cronjob(), slot(0), task(-50), created]
    flagged = figures([*base, task(GRACE + 1, late="True", last_missed=iso(0)), end(200)])
    assert (flagged["false_alerts"], flagged["missed_alerts"]) == (0, 0)
    assert figures([*base, end(200)])["missed_alerts"] == 0


def test_late_for_a_slot_whose_run_vanished_with_its_cronjob_in_a_fault_is_apart() -> None:
    """operator-freeze: the slot's Job ran while the operator was frozen, and the Job
    and its CronJob were deleted before it was continued: the new CronJob shows no run,
    so the operator flags the slot. That is all it can do: not against the target."""
    records = [
        cronjob(),
        slot(0),
        *run("c-1", 0),
        job(40, "job_deleted", "c-1", 0),
        rec(40, "cronjob_deleted", cronjob="c", uid=CJ),
        task(65, late="True", last_missed=iso(0)),
        end(200),
    ]
    freeze = [Fault("freeze", T0 - 3, T0 + 57)]
    out = figures(records, freeze)
    assert (out["false_alerts"], out["false_alerts_unseen"], out["false_alerts_after"]) == (
        1,
        1,
        0,
    )
    # The CronJob still there after the fault (only the Job deleted): its
    # lastScheduleTime says the slot ran: against the target.
    kept = figures([r for r in records if r["kind"] != "cronjob_deleted"], freeze)
    assert (kept["false_alerts_unseen"], kept["false_alerts_after"]) == (0, 1)
    # The Job outlives the fault (its garbage collection takes a moment): a Job of a
    # CronJob that is gone is not the task's run, so it is the same.
    gc = figures([r for r in records if r["kind"] != "job_deleted"], freeze)
    assert (gc["false_alerts_unseen"], gc["false_alerts_after"]) == (1, 0)
    # Deleted after the fault ended: the operator could have seen the run.
    after = [
        cronjob(),
        slot(0),
        *run("c-1", 0),
        job(80, "job_deleted", "c-1", 0),
        rec(80, "cronjob_deleted", cronjob="c", uid=CJ),
        task(65, late="True", last_missed=iso(0)),
        end(200),
    ]
    assert figures(after, freeze)["false_alerts_after"] == 1


def test_a_slot_without_a_run_must_be_flagged_within_grace_and_settle() -> None:
    missed = [cronjob(), slot(0), task(1)]
    assert figures([*missed, end(200)])["missed_alerts"] == 1
    flagged = figures([*missed, task(61, late="True", last_missed=iso(0)), end(200)])
    assert (flagged["slots_missed"], flagged["missed_alerts"]) == (1, 0)
    too_late = figures([*missed, task(95, late="True", last_missed=iso(0)), end(200)])
    assert too_late["missed_alerts"] == 1
    # Blocked by a run still active (Forbid) flags it as well.
    blocked = figures([*missed, task(62, blocked="True", last_skipped=iso(0)), end(200)])
    assert blocked["missed_alerts"] == 0


def test_a_job_created_within_lag_after_the_grace_end_needs_no_flag_either() -> None:
    """The mirror of the race above (apiserver-restart, full run, c-0154): the Job was
    created 0.6 s after the grace ended (Forbid: right after the previous run
    finished), and the operator, judging 3 s later, saw it: Late not raised is not a
    missed alert. Created later than LAG, it is."""

    def slot_created_at(at: float) -> list[dict[str, Any]]:
        created = job(at, "job_created", "c-1", 0) | {"created": iso(int(at))}
        return [cronjob(), slot(0), task(-50), created, task(at + 3), end(200)]

    raced = figures(slot_created_at(GRACE + 0.6))
    assert (raced["slots_missed"], raced["missed_alerts"]) == (1, 0)
    assert figures(slot_created_at(GRACE + 2.5))["missed_alerts"] == 1


def test_a_fault_that_starts_before_the_flag_is_due_moves_its_deadline() -> None:
    """etcd-restart, full run: etcd stopped 0.3 s after the slots' grace ended, so no
    status could be written until it was back. The flag is due 30 s after the fault's
    end, and one missing then is missed during the fault, not after it."""
    base = [cronjob(), slot(0), task(1)]
    etcd = [Fault("etcd", T0 + GRACE + 0.3, T0 + GRACE + 40)]
    flagged = figures([*base, task(GRACE + 50, late="True", last_missed=iso(0)), end(300)], etcd)
    assert (flagged["slots_missed"], flagged["missed_alerts"]) == (1, 0)
    never = figures([*base, end(300)], etcd)
    assert (never["missed_alerts"], never["missed_alerts_after"]) == (1, 0)
    # Without the fault the same flag is 20 s too late, after any fault.
    late = figures([*base, task(GRACE + 50, late="True", last_missed=iso(0)), end(300)])
    assert (late["missed_alerts"], late["missed_alerts_after"]) == (1, 1)


@pytest.mark.parametrize(("deleted", "expected"), [(50, 0), (float("inf"), 1)])
def test_two_cronjobs_of_one_task_at_once_are_a_duplicate(deleted: float, expected: int) -> None:
    records = [cronjob(0, "cj-a"), cronjob(60, "cj-b"), end(200)]
    if deleted != float("inf"):
        records.append(rec(deleted, "cronjob_deleted", cronjob="c", uid="cj-a", task_uid=TASK))
    assert figures(records)["duplicate_cronjobs"] == expected


def test_the_recorders_own_gaps_are_reported() -> None:
    gap = rec(30, "watch_gap", resource="jobs", start=T0 + 10, end=T0 + 30, relisted=True)
    out = figures([cronjob(), gap, end(100)])
    assert (out["recorder_gaps"], out["recorder_gap_seconds"]) == (1, 20.0)


def test_a_success_only_the_cronjob_holds_is_lost_apart_and_once_over_checkpoints() -> None:
    """A run whose Job came and went while the operator was down is known only from the
    CronJob's lastSuccessfulTime: not counting it is a loss, given apart, and the same
    missing run at two checkpoints is one run lost."""
    records = [
        cronjob(),
        *run("c-1", 0),
        cronjob_success(4, 3),
        job(5, "job_deleted", "c-1", 0, "Succeeded"),
        task(20, succeeded=0, last_success=iso(3)),
        end(200),
    ]
    kill = Fault("kill", T0 - 1, T0 + 10)
    later = Fault("again", T0 + 100, T0 + 110)
    out = figures(records, [kill, later])
    assert out["checkpoints"] == 3
    assert (out["runs_lost"], out["runs_lost_vanished"]) == (1, 1)


def test_a_success_the_cronjob_never_recorded_is_not_evidence() -> None:
    """Full chaos run, 2026-12-02: a TTL-0 Job that finished and was deleted within a
    second while the operator was down; the CronJob controller saw it only once it was
    gone and kept its older lastSuccessfulTime. Nothing in the cluster holds that run:
    the operator counts it unknown, and it is not lost."""
    records = [
        cronjob(),
        *run("c-0", -60),
        cronjob_success(-56, -57),
        task(-55, succeeded=1, last_success=iso(-57)),
        *run("c-1", 0),
        job(4, "job_deleted", "c-1", 0, "Succeeded"),
        task(20, succeeded=1, unknown=1, last_success=iso(-57)),
        end(200),
    ]
    out = figures(records, [Fault("kill", T0 - 1, T0 + 10)])
    assert (out["runs_lost"], out["runs_lost_vanished"]) == (0, 0)
    # Had the CronJob recorded it, its success would be evidence, and missing.
    held = [*records[:6], cronjob_success(3.5, 3), *records[6:]]
    assert figures(held, [Fault("kill", T0 - 1, T0 + 10)])["runs_lost"] == 1


def test_a_later_runs_success_is_not_evidence_of_a_vanished_one() -> None:
    """A blind TTL-0 run the CronJob controller never recorded, then the next run,
    seen by the restarted operator, whose success the CronJob does record: that
    lastSuccessfulTime proves the second run only. The operator counts the first
    unknown and the second succeeded; nothing is lost."""
    records = [
        cronjob(),
        *run("c-1", 0),
        job(4, "job_deleted", "c-1", 0, "Succeeded"),
        task(20, succeeded=0, unknown=1),
        *run("c-2", 60),
        cronjob_success(64, 63),
        task(64, succeeded=1, unknown=1, last_success=iso(63)),
        end(200),
    ]
    out = figures(records, [Fault("kill", T0 - 1, T0 + 10)])
    assert (out["runs_lost"], out["runs_lost_vanished"]) == (0, 0)
    # Had the CronJob recorded the first one too, the operator owed both.
    held = [*records[:3], cronjob_success(3.5, 3), *records[3:]]
    assert figures(held, [Fault("kill", T0 - 1, T0 + 10)])["runs_lost"] == 1


def test_a_success_held_by_a_cronjob_deleted_since_is_not_evidence() -> None:
    """The CronJob that held a blind run's success was deleted (by hand, or with its
    task): nothing in the cluster proves the run any more, so it is not lost."""
    records = [
        cronjob(),
        *run("c-1", 0),
        job(5, "job_deleted", "c-1", 0, "Succeeded"),
        rec(8, "cronjob_deleted", cronjob="c", uid=CJ),
        task(20, succeeded=0),
        end(200),
    ]
    out = figures(records, [Fault("freeze", T0 - 1, T0 + 10)])
    assert (out["runs_lost"], out["runs_lost_vanished"]) == (0, 0)


def test_runs_that_finish_after_the_operators_stopped_are_not_judged() -> None:
    """The record runs on a few seconds after the operators stop: a run finishing then
    cannot be reflected, and is not lost."""
    records = [cronjob(), *run("c-1", 0), task(1, succeeded=0), end(20)]
    judged = analyse(sorted(records, key=lambda r: r["t"]), [], GRACE)
    assert judged["runs_lost"] == 1  # the operator was never going to write it ...
    stopped = analyse(sorted(records, key=lambda r: r["t"]), [], GRACE, until=T0 + 2)
    assert stopped["runs_lost"] == 0  # ... since it had stopped before the run finished
