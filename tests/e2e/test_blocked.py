"""No silent stop, on the real control plane: a run that hangs makes its task
Blocked, and a schedule edit never judges the new schedule's past slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.support import Cluster, Operator, condition_of, wait_for
from tests.e2e.test_detection import parse_time, sample
from tests.e2e.test_scheduledtask import RUN_TIMEOUT, every_minute, hung

GRACE = 10


@pytest.mark.long(90)
def test_a_run_pending_forever_makes_the_task_blocked(cluster: Cluster, operator: Operator) -> None:
    """Forbid (the default) skips every slot while the first run is Pending; without any
    optional field the task says so: Blocked, a Warning Event, metrics."""
    ns = cluster.namespace
    cluster.apply(hung("wedged", missedRunGraceSeconds=GRACE))
    first = cluster.wait_task(
        "wedged",
        lambda t: bool(t.get("status", {}).get("active")),
        timeout=RUN_TIMEOUT,
        what="the first run to start (and hang)",
    )
    [job] = first["status"]["active"]
    # The next slot is skipped; one interval plus the grace after the run's slot it is Blocked.
    task = cluster.wait_task(
        "wedged",
        lambda t: (condition_of(t, "Blocked") or {}).get("status") == "True",
        timeout=60 + GRACE + 30,
        what="Blocked by the pending run",
    )
    blocked = condition_of(task, "Blocked")
    assert blocked is not None
    assert blocked["reason"] == "RunStillActive"
    # The Job controller sets startTime although the pod stays Pending: "running since".
    assert job in blocked["message"]
    assert "holds back" in blocked["message"]
    late = condition_of(task, "Late")
    assert late is not None
    assert late["status"] == "False"  # skipped on purpose by Forbid, not missed
    wait_for(
        lambda: "Blocked" in cluster.event_reasons("wedged"),
        timeout=30,
        what="a Blocked Warning Event",
    )
    metrics = operator.metrics()
    assert sample(metrics, "cronwarden_task_blocked", ns, "wedged") == 1
    skipped = sample(metrics, "cronwarden_task_skipped_runs_total", ns, "wedged", reason="forbid")
    assert skipped is not None
    assert skipped >= 1

    # Deleting the hung Job lets the next slot start a run: Blocked clears.
    cluster.kubectl("-n", ns, "delete", "job", job, "--wait=false")
    cluster.wait_task(
        "wedged",
        lambda t: (condition_of(t, "Blocked") or {}).get("status") == "False",
        timeout=RUN_TIMEOUT + GRACE,
        what="Blocked to clear",
    )


@pytest.mark.long(110)
def test_a_schedule_edit_never_judges_slots_before_the_edit(cluster: Cluster) -> None:
    """A task that ran once a year becomes a per-minute task: the minute slots between
    its creation and the edit were never the schedule, so none is missed."""
    cluster.apply(every_minute("edited", schedule="0 0 1 1 *", missedRunGraceSeconds=GRACE))
    created = parse_time(cluster.wait_ready("edited")["metadata"]["creationTimestamp"])
    # Let a minute slot of the future schedule pass, with its grace, before the edit.
    boundary = (created + timedelta(minutes=1)).replace(second=0)
    wait_for(
        lambda: datetime.now(UTC) > boundary + timedelta(seconds=GRACE + 1),
        timeout=90,
        interval=1,
        what="a minute slot (and its grace) to pass before the edit",
    )
    cluster.kubectl(
        "-n",
        cluster.namespace,
        "patch",
        "st",
        "edited",
        "--type=merge",
        "-p",
        '{"spec": {"schedule": "* * * * *"}}',
    )
    task = cluster.wait_ready("edited", generation=2)
    assert task["status"].get("missedRuns", 0) == 0, task["status"]
    late = condition_of(task, "Late")
    assert late is not None
    assert late["status"] == "False"
    # And the new schedule does run.
    cluster.wait_task(
        "edited",
        lambda t: t["status"].get("succeeded", 0) >= 1,
        timeout=RUN_TIMEOUT,
        what="a run of the new schedule",
    )
    assert cluster.task("edited")["status"].get("missedRuns", 0) == 0
