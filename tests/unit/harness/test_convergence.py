"""Convergence after a fault, from hand-written records (hack/harness/convergence.py):
the first moment at which every task's status matches what the record shows of its
CronJob and Jobs. Times are seconds after T0, the fault's end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hack"))

from harness.convergence import HORIZON, convergence_figures

T0 = 1_796_212_800.0
TASK, CJ = "task-uid", "cj-uid"


def rec(at: float, kind: str, **fields: Any) -> dict[str, Any]:
    return {"t": T0 + at, "kind": kind, "ns": "chaos", **fields}


def cronjob(at: float, kind: str = "cronjob_added", uid: str = CJ, **fields: Any) -> dict[str, Any]:
    base = {
        "cronjob": "c", "uid": uid, "task_uid": TASK, "schedule": "* * * * *",
        "suspend": False, "managed_by": "cronwarden", "last_success": None,
    }  # fmt: skip
    return rec(at, kind, **{**base, **fields})


def job(at: float, kind: str, name: str, cronjob_uid: str = CJ) -> dict[str, Any]:
    return rec(at, kind, job=name, uid=f"uid-{name}", cronjob_uid=cronjob_uid)


def task(at: float, **status: Any) -> dict[str, Any]:
    base = {
        "task": "t", "uid": TASK, "generation": 1, "observed": 1, "ready": "True",
        "schedule": "* * * * *", "suspend": False, "last_success": None, "active": [],
    }  # fmt: skip
    return rec(at, "task", **{**base, **status})


def end(at: float) -> dict[str, Any]:
    return rec(at, "recorder_stopped")


def seconds(*records: dict[str, Any]) -> float | None:
    out = convergence_figures(sorted(records, key=lambda r: r["t"]), [T0])
    result: float | None = out["convergence_seconds"][0]
    return result


BEFORE = (cronjob(-100), task(-90))


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        # In step at the fault's end.
        ([*BEFORE, end(60)], 0.0),
        # A Job created during the fault, named in active 4 s after its end.
        ([*BEFORE, job(-3, "job_created", "j1"), task(4, active=["j1"]), end(60)], 4.0),
        # A Job that finished during the fault, still named until 7 s after it.
        (
            [*BEFORE, job(-50, "job_created", "j1"), task(-49, active=["j1"]),
             job(-2, "job_finished", "j1"), task(7, active=[]), end(60)],
            7.0,
        ),
        # A Job deleted while it ran counts as gone, as one that finished.
        (
            [*BEFORE, job(-50, "job_created", "j1"), task(-49, active=["j1"]),
             job(-2, "job_deleted", "j1"), task(3, active=[]), end(60)],
            3.0,
        ),
        # The CronJob's last success ahead of the task's until the task catches up.
        (
            [*BEFORE, cronjob(-5, "cronjob_status", last_success="2026-12-02T12:00:00Z"),
             task(6, last_success="2026-12-02T12:00:00Z"), end(60)],
            6.0,
        ),
        # The CronJob deleted in the fault, a new one 9 s after its end.
        (
            [*BEFORE, rec(-5, "cronjob_deleted", uid=CJ), cronjob(9, uid="cj-2"), end(60)],
            9.0,
        ),
        # Two CronJobs of the task alive at once until the older is deleted.
        ([*BEFORE, cronjob(-5, uid="cj-2"), rec(2, "cronjob_deleted", uid="cj-2"), end(60)], 2.0),
        # The managed-by label stripped by hand, restored 5 s after the fault.
        (
            [*BEFORE, cronjob(-5, "cronjob_changed", managed_by=None),
             cronjob(5, "cronjob_changed"), end(60)],
            5.0,
        ),
        # The CronJob's schedule edited by hand, put back 8 s after the fault.
        (
            [*BEFORE, cronjob(-5, "cronjob_changed", schedule="*/7 * * * *"),
             cronjob(8, "cronjob_changed"), end(60)],
            8.0,
        ),
        # Not Ready until 2 s after it; behind its generation until 3 s after it.
        ([*BEFORE, task(-1, ready="False"), task(2, observed=0), task(3), end(60)], 3.0),
        # A task deleted in the fault holds nothing.
        ([*BEFORE, task(-10, active=["gone"]), rec(-1, "task_deleted", uid=TASK), end(60)], 0.0),
        # Never in step within the horizon.
        (
            [*BEFORE, job(-3, "job_created", "j1"), end(HORIZON + 60),
             task(HORIZON + 30, active=["j1"])],
            None,
        ),
    ],
)  # fmt: skip
def test_convergence_is_the_first_moment_every_status_matches(
    records: list[dict[str, Any]], expected: float | None
) -> None:
    assert seconds(*records) == expected


def test_a_status_in_step_only_between_two_changes_counts_from_then() -> None:
    """The moment the figure exists for: the status catches up with a Job created in
    the fault, and a later Job (the churn of the next runs) arrives 1 s later and is
    named 2 s after that. Converged at the first moment, not after the churn."""
    out = seconds(
        *BEFORE,
        job(-3, "job_created", "j1"),
        task(10, active=["j1"]),
        job(11, "job_created", "j2", cronjob_uid=CJ),
        task(13, active=["j1", "j2"]),
        end(60),
    )
    assert out == 10.0


def test_every_task_must_match_at_the_same_moment() -> None:
    other = "task-2"
    out = seconds(
        *BEFORE,
        cronjob(-100, uid="cj-b", task_uid=other),
        task(-90, uid=other),
        job(-3, "job_created", "j1"),
        job(-3, "job_created", "k1", cronjob_uid="cj-b"),
        task(4, active=["j1"]),
        task(6, uid=other, active=["k1"]),
        end(60),
    )
    assert out == 6.0


def test_the_record_is_judged_up_to_its_end_only() -> None:
    records = [*BEFORE, job(-3, "job_created", "j1"), task(20, active=["j1"]), end(10)]
    out = convergence_figures(sorted(records, key=lambda r: r["t"]), [T0], until=T0 + 10)
    assert out == {
        "convergence_seconds": [None],
        "convergence_max_seconds": None,
        "not_converged": 1,
    }
