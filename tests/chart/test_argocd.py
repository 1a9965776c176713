"""The Argo CD health check and actions of helm/cronwarden/files/argocd/, run with Lua
5.1 (tests/argocd_lua.py) on hand-made ScheduledTasks: every branch of health.lua,
discovery.lua and the actions. tests/e2e/test_gitops.py runs them on live tasks."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import argocd_lua
from tests.argocd_lua import CUSTOMIZATIONS, LuaError, action, discovery, health

ROOT = Path(__file__).resolve().parents[2]
ARGOCD_CM = ROOT / "helm" / "cronwarden" / "files" / "argocd" / "argocd-cm.yaml"
GROUP_KIND = "cronwarden.io_ScheduledTask"

READY = ("Ready", "True", "Reconciled", "CronJob nightly is in sync with the spec")


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "status": status, "observedGeneration": 1}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def task(
    *conditions: tuple[str, ...],
    generation: int = 1,
    observed: int | None = 1,
    status: bool = True,
    **spec: Any,
) -> dict[str, Any]:
    """A ScheduledTask as the API server returns it, with these conditions."""
    obj: dict[str, Any] = {
        "apiVersion": "cronwarden.io/v1alpha1",
        "kind": "ScheduledTask",
        "metadata": {
            "name": "nightly",
            "namespace": "team-a",
            "generation": generation,
            "uid": "0d1c4e8e-52a3-4b8f-9d6e-1f2a3b4c5d6e",
            "labels": {"app.kubernetes.io/instance": "platform"},
            "annotations": {},
        },
        "spec": {
            "schedule": "30 2 * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "metadata": {},
                        "spec": {
                            "containers": [
                                {"name": "main", "image": "busybox:1.37", "resources": {}}
                            ],
                            "volumes": [{"name": "scratch", "emptyDir": {}}],
                        },
                    }
                }
            },
            **spec,
        },
    }
    if status:
        obj["status"] = {"conditions": [cond(*c) for c in conditions]}
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
    return obj


def monitoring(*conditions: tuple[str, ...]) -> dict[str, Any]:
    obj = task(*conditions)
    obj["spec"] = {"cronJobRef": {"name": "vendor-backup"}, "owner": "team-vendor"}
    return obj


# health.lua


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (task(status=False), "waiting for cronwarden to reconcile generation 1"),
        (task(READY, observed=None), "waiting for cronwarden to reconcile generation 1"),
        (task(READY, generation=3, observed=2), "waiting for cronwarden to reconcile generation 3"),
        (
            task(
                ("Ready", "False", "CronJobMissing", "the CronJob does not exist yet"),
                ("Reconciling", "True", "CronJobMissing", "creating the CronJob"),
                ("Stalled", "False", "Progressing", "nothing blocks reconciliation"),
            ),
            "Reconciling (CronJobMissing): creating the CronJob",
        ),
        (task(("Suspended", "False", "NotSuspended")), "waiting for the Ready condition"),
        (task(("Ready", "Unknown", "Starting", "not yet")), "Ready (Starting): not yet"),
    ],
    ids=[
        "no-status",
        "no-observed-generation",
        "generation-ahead",
        "reconciling",
        "no-ready",
        "ready-unknown",
    ],
)
def test_progressing(obj: dict[str, Any], message: str) -> None:
    assert health(obj) == {"status": "Progressing", "message": message}


@pytest.mark.parametrize(
    "reason",
    [
        "InvalidSpec",
        "UnknownTimeZone",
        "CronJobNotOwned",
        "CronJobNotFound",
        "NamespaceExcluded",
        "TaskLimitExceeded",
    ],
)
def test_stalled_is_degraded_with_its_reason_even_when_suspended(reason: str) -> None:
    conditions = (
        ("Ready", "False", reason, "why"),
        ("Reconciling", "False", reason, "waiting for the spec or cluster to change"),
        ("Stalled", "True", reason, "why"),
        ("Suspended", "True", "SuspendedBySpec", "spec.suspend is true: no new runs start"),
    )
    for obj in (task(*conditions), task(*conditions, suspend=True)):
        assert health(obj) == {"status": "Degraded", "message": f"Stalled ({reason}): why"}


def test_ready_false_without_stalled_is_degraded() -> None:
    """An operator from before the Stalled condition."""
    obj = task(("Ready", "False", "InvalidSpec", "spec.schedule: bad"))
    assert health(obj) == {
        "status": "Degraded",
        "message": "Ready (InvalidSpec): spec.schedule: bad",
    }


def test_suspended() -> None:
    suspended = ("Suspended", "True", "SuspendedBySpec", "spec.suspend is true: no new runs start")
    assert health(task(READY, suspended, suspend=True)) == {
        "status": "Suspended",
        "message": "Suspended (SuspendedBySpec): spec.suspend is true: no new runs start",
    }
    # spec.suspend decides even before the condition says so.
    assert health(task(READY, ("Suspended", "False", "NotSuspended"), suspend=True)) == {
        "status": "Suspended",
        "message": "spec.suspend is true: no new runs start",
    }
    # Monitor mode: the CronJob is suspended (the task cannot say so in its spec).
    assert health(monitoring(READY, suspended))["status"] == "Suspended"
    # Suspending is how a failing task is stopped: Suspended wins over run problems.
    failing = ("Failing", "True", "ConsecutiveFailures", "3 failed run(s) in a row, limit 3")
    assert health(task(READY, suspended, failing, suspend=True))["status"] == "Suspended"
    assert health(task(READY, ("Suspended", "False", "NotSuspended"), suspend=False)) == {
        "status": "Healthy",
        "message": READY[3],
    }


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        (
            ("Failing", "True", "ConsecutiveFailures", "1 failed run(s) in a row, limit 1"),
            "Failing (ConsecutiveFailures): 1 failed run(s) in a row, limit 1",
        ),
        (
            ("Late", "True", "MissedSchedule", "the run scheduled at ... did not start"),
            "Late (MissedSchedule): the run scheduled at ... did not start",
        ),
        (
            ("Blocked", "True", "RunStillActive", "nightly-29 holds back 2 slots"),
            "Blocked (RunStillActive): nightly-29 holds back 2 slots",
        ),
        (
            ("Stale", "True", "SuccessDeadlineExceeded", "no successful run within the deadline"),
            "Stale (SuccessDeadlineExceeded): no successful run within the deadline",
        ),
    ],
    ids=["failing", "late", "blocked", "stale"],
)
def test_run_problems_are_degraded(problem: tuple[str, ...], message: str) -> None:
    assert health(task(READY, problem)) == {"status": "Degraded", "message": message}
    # The same condition False is fine.
    fine = (problem[0], "False", "Fine", "all good")
    assert health(task(READY, fine))["status"] == "Healthy"


def test_every_run_problem_is_in_the_message_in_a_fixed_order() -> None:
    obj = task(
        ("Stale", "True", "SuccessDeadlineExceeded"),
        ("Late", "True", "MissedSchedule", "missed"),
        READY,
        ("Failing", "True", "ConsecutiveFailures", "failed"),
    )
    assert health(obj) == {
        "status": "Degraded",
        "message": "Failing (ConsecutiveFailures): failed; Late (MissedSchedule): missed; "
        "Stale (SuccessDeadlineExceeded)",
    }


def test_healthy() -> None:
    long_running = ("LongRunning", "True", "RunTooLong", "running longer than 3600s: nightly-1")
    assert health(task(READY, long_running)) == {"status": "Healthy", "message": READY[3]}
    assert health(task(("Ready", "True"))) == {"status": "Healthy", "message": "reconciled"}
    # A condition without a type is ignored; status fields besides conditions do not matter.
    obj = task(READY)
    obj["status"]["conditions"].append({"status": "True", "reason": "Odd"})
    obj["status"]["lastRun"] = {"job": "nightly-1", "result": "Succeeded"}
    assert health(obj)["status"] == "Healthy"


def test_health_never_changes_the_object() -> None:
    obj = task(READY)
    before = copy.deepcopy(obj)
    health(obj)
    assert obj == before


# discovery.lua and the actions


def test_discovery_offers_suspend_or_resume() -> None:
    suspend = {"suspend": {"iconClass": "fa fa-fw fa-pause", "displayName": "Suspend"}}
    resume = {"resume": {"iconClass": "fa fa-fw fa-play", "displayName": "Resume"}}
    assert discovery(task(READY)) == suspend
    assert discovery(task(READY, suspend=False)) == suspend
    assert discovery(task(READY, suspend=True)) == resume
    # Monitor mode: spec.suspend is refused by the API server, so nothing is offered.
    assert discovery(monitoring(READY)) == {}


@pytest.mark.parametrize(("name", "suspend"), [("suspend", True), ("resume", False)])
def test_actions_change_spec_suspend_and_nothing_else(name: str, suspend: bool) -> None:
    obj = task(READY, suspend=not suspend)
    changed = action(name, obj)
    want = copy.deepcopy(obj)
    want["spec"]["suspend"] = suspend
    # Empty maps stay maps, lists stay lists, numbers stay numbers.
    assert changed == want
    assert discovery(changed) == discovery(task(READY, suspend=suspend))


@pytest.mark.parametrize("name", argocd_lua.ACTIONS)
def test_actions_refuse_monitor_mode(name: str) -> None:
    with pytest.raises(LuaError, match=f"monitor mode: {name} the CronJob vendor-backup instead"):
        action(name, monitoring(READY))


def test_actions_on_disk_are_the_ones_discovery_offers() -> None:
    on_disk = {p.parent.name for p in (CUSTOMIZATIONS / "actions").glob("*/action.lua")}
    assert on_disk == set(argocd_lua.ACTIONS) == {"suspend", "resume"}
    offered = set(discovery(task(READY))) | set(discovery(task(READY, suspend=True)))
    assert offered == on_disk


# argocd-cm.yaml and the docs


def test_argocd_cm_carries_the_scripts() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "argocd-cm.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    cm = yaml.safe_load(ARGOCD_CM.read_text())
    assert (cm["apiVersion"], cm["kind"]) == ("v1", "ConfigMap")
    # No namespace: the patch applies wherever Argo CD runs.
    assert cm["metadata"] == {"name": "argocd-cm"}
    data = cm["data"]
    assert set(data) == {
        f"resource.customizations.health.{GROUP_KIND}",
        f"resource.customizations.actions.{GROUP_KIND}",
    }
    assert data[f"resource.customizations.health.{GROUP_KIND}"] == argocd_lua.HEALTH.read_text()
    actions = yaml.safe_load(data[f"resource.customizations.actions.{GROUP_KIND}"])
    assert actions["discovery.lua"] == argocd_lua.DISCOVERY.read_text()
    assert [d["name"] for d in actions["definitions"]] == list(argocd_lua.ACTIONS)
    for definition in actions["definitions"]:
        assert definition["action.lua"] == argocd_lua.action_path(definition["name"]).read_text()


def test_gitops_docs_describe_what_is_shipped() -> None:
    docs = (ROOT / "docs" / "gitops.md").read_text()
    for kind in ("health", "actions"):
        assert f"resource.customizations.{kind}.{GROUP_KIND}" in docs
    assert "helm/cronwarden/files/argocd/argocd-cm.yaml" in docs
    assert "### No trigger action" in docs
    # The old inline script is gone: the shipped files are the only copy.
    assert "local hs = " not in docs
    for path in CUSTOMIZATIONS.rglob("*.lua"):
        assert path.relative_to(CUSTOMIZATIONS).as_posix() in docs, path
