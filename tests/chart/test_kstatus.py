"""hack/kstatus (kstatus of sigs.k8s.io/cli-utils v0.37.2, built by `make tools`) on
hand-made ScheduledTasks: the rules docs/gitops.md states for Flux and other kstatus
users, including the one gap (no status yet is Current). tests/e2e/test_gitops.py
runs it on live tasks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
KSTATUS = Path(os.environ.get("STATE_DIR", ROOT / ".state")) / "bin" / "kstatus"


def kstatus(data: str) -> subprocess.CompletedProcess[str]:
    if not KSTATUS.exists():
        pytest.fail(f"{KSTATUS} is missing: run `make tools`")
    return subprocess.run([str(KSTATUS)], input=data, capture_output=True, text=True, timeout=30)


def verdicts(*objects: dict[str, Any]) -> list[tuple[str, str]]:
    proc = kstatus(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert [r["name"] for r in results] == [o["metadata"]["name"] for o in objects]
    assert not any(r.get("error") for r in results), results
    return [(r["status"], r["message"]) for r in results]


def task(
    name: str, *conditions: tuple[str, str, str], generation: int = 1, **status: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "cronwarden.io/v1alpha1",
        "kind": "ScheduledTask",
        "metadata": {"name": name, "namespace": "team-a", "generation": generation},
        "spec": {"schedule": "0 3 * * *"},
    }
    if conditions or status:
        obj["status"] = {
            **status,
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": f"{t} says {r}"}
                for t, s, r in conditions
            ],
        }
    return obj


READY = ("Ready", "True", "Reconciled")
NOT_STALLED = ("Stalled", "False", "Reconciled")
NOT_RECONCILING = ("Reconciling", "False", "Reconciled")


def test_kstatus_verdicts_on_scheduled_tasks() -> None:
    objects = [
        task("reconciled", READY, NOT_RECONCILING, NOT_STALLED, observedGeneration=1),
        task(
            "failing-runs",
            READY,
            NOT_STALLED,
            ("Failing", "True", "ConsecutiveFailures"),
            ("Late", "True", "MissedSchedule"),
            observedGeneration=1,
        ),
        task(
            "stalled",
            ("Ready", "False", "InvalidSpec"),
            ("Reconciling", "False", "InvalidSpec"),
            ("Stalled", "True", "InvalidSpec"),
            observedGeneration=1,
        ),
        task(
            "creating",
            ("Ready", "False", "CronJobMissing"),
            ("Reconciling", "True", "CronJobMissing"),
            ("Stalled", "False", "Progressing"),
            observedGeneration=1,
        ),
        task("edited", READY, NOT_STALLED, generation=2, observedGeneration=1),
        # An operator without Stalled/Reconciling: Ready=False reads as progress.
        task("old-operator", ("Ready", "False", "InvalidSpec"), observedGeneration=1),
        # The gap: nothing says it is not reconciled yet.
        task("no-status"),
    ]
    assert verdicts(*objects) == [
        ("Current", "Resource is Ready"),
        ("Current", "Resource is Ready"),
        ("Failed", "Stalled says InvalidSpec"),
        ("InProgress", "Reconciling says CronJobMissing"),
        (
            "InProgress",
            "ScheduledTask generation is 2, but latest observed generation is 1",
        ),
        ("InProgress", "Ready says InvalidSpec"),
        ("Current", "Resource is current"),
    ]


def test_kstatus_reads_one_object_or_a_file_and_refuses_garbage(tmp_path: Path) -> None:
    obj = task("one", READY, observedGeneration=1)
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    proc = kstatus(json.dumps(obj))
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)
    assert result == {
        "apiVersion": "cronwarden.io/v1alpha1",
        "kind": "ScheduledTask",
        "namespace": "team-a",
        "name": "one",
        "status": "Terminating",
        "message": "Resource scheduled for deletion",
    }
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task("two", READY, observedGeneration=1)))
    proc = subprocess.run([str(KSTATUS), str(path)], capture_output=True, text=True, timeout=30)
    assert json.loads(proc.stdout)[0]["status"] == "Current"

    for bad in ("", "[1]", "{", '{"kind": "ScheduledTask"}'):
        proc = kstatus(bad)
        assert proc.returncode == 1, bad
        assert proc.stderr.startswith("kstatus: "), proc.stderr
