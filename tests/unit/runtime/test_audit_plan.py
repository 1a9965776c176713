"""When the audit lists what (runtime/audit.py: Plan): every listing at once first,
then each every period, and a watch that lists again brings only its own listing
forward, once per relisting, and no sooner than RELIST_GAP after that listing's
last audit began. No cluster: times are plain numbers."""

from __future__ import annotations

import itertools

from cronwarden.runtime.audit import COALESCE, RELIST_DELAY, RELIST_GAP, Plan

TASKS = ("scheduledtasks", "team-a")
CRONJOBS = ("cronjobs", "team-a")
JOBS = ("jobs", "team-a")
OTHER_JOBS = ("jobs", "team-b")
PAIRS = [TASKS, CRONJOBS, JOBS, ("scheduledtasks", "team-b"), ("cronjobs", "team-b"), OTHER_JOBS]
PERIOD = 180.0


def started_plan() -> Plan:
    """A plan whose first audit, of everything, began at 0."""
    plan = Plan(PAIRS, PERIOD)
    order = ["scheduledtasks", "cronjobs", "jobs"]
    assert plan.take(0.0) == sorted(PAIRS, key=lambda p: order.index(p[0]))
    return plan


def test_everything_first_then_every_period() -> None:
    plan = started_plan()
    assert plan.next_at() == PERIOD
    assert plan.take(PERIOD - COALESCE - 1) == []
    assert len(plan.take(PERIOD)) == len(PAIRS)
    assert plan.next_at() == 2 * PERIOD


def test_a_relist_brings_only_its_own_listing_forward_and_not_before_the_gap() -> None:
    plan = started_plan()
    # 10 s after the first audit began: not before RELIST_GAP after it.
    assert plan.relisted(JOBS, 10.0) == RELIST_GAP
    assert plan.next_at() == RELIST_GAP
    assert plan.take(RELIST_GAP) == [JOBS]
    # Long after: RELIST_DELAY after the relisting's first object.
    assert plan.relisted(JOBS, 150.0) == 150.0 + RELIST_DELAY
    assert plan.take(150.0 + RELIST_DELAY) == [JOBS]


def test_the_objects_of_one_relisting_ask_once() -> None:
    plan = started_plan()
    asked = [plan.relisted(JOBS, 100.0 + 0.01 * i) for i in range(1000)]
    assert asked[0] == 100.0 + RELIST_DELAY
    assert asked[1:] == [None] * 999
    # Even once that audit has begun while the listing is still arriving.
    assert plan.take(105.0) == [JOBS]
    assert plan.relisted(JOBS, 105.1) is None
    assert plan.next_at() == PERIOD  # the others' periodic audit


def test_a_relist_while_its_audit_runs_is_audited_again_after_the_gap() -> None:
    """An audit that began before the relisting may have listed before what vanished
    vanished: it does not cover it."""
    plan = started_plan()
    assert plan.take(PERIOD) != []
    assert plan.relisted(TASKS, PERIOD + 30.0) == PERIOD + RELIST_GAP


def test_relists_a_few_seconds_apart_cost_one_listing_a_minute() -> None:
    """A watch that lists again every 40 s (seen under load) costs one audit of that
    listing per RELIST_GAP, and nothing of the others."""
    plan = started_plan()
    audits: list[tuple[float, list[tuple[str, str | None]]]] = []
    now = 0.0
    relist = 40.0
    while now < 3600.0:
        if now >= relist:
            plan.relisted(JOBS, now)
            relist += 40.0
        if plan.next_at() <= now:
            audits.append((now, plan.take(now)))
        now += 1.0
    jobs = [t for t, pairs in audits if JOBS in pairs]
    tasks = [t for t, pairs in audits if TASKS in pairs]
    assert all(b - a >= RELIST_GAP - COALESCE for a, b in itertools.pairwise(jobs))
    assert len(jobs) <= 3600 / (RELIST_GAP - COALESCE) + 1
    assert tasks == [PERIOD * i for i in range(1, 20)]  # the others keep their period


def test_a_relist_due_soon_anyway_changes_nothing() -> None:
    plan = started_plan()
    assert plan.relisted(JOBS, PERIOD - 2.0) == PERIOD
    assert plan.next_at() == PERIOD


def test_a_failed_audit_is_tried_again_soon() -> None:
    plan = started_plan()
    plan.retry([JOBS], 5.0)
    assert plan.next_at() == 5.0
    assert plan.take(5.0) == [JOBS]


def test_an_unknown_listing_is_ignored() -> None:
    plan = started_plan()
    assert plan.relisted(("jobs", "elsewhere"), 100.0) is None
    assert plan.next_at() == PERIOD
