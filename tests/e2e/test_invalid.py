"""Invalid ScheduledTasks, one manifest per file in tests/e2e/invalid/.

Each file starts with comment lines that say how it must be rejected:

    # expect: <substring>          one or more; the error message must contain each
    # rejected-by: admission       `kubectl apply` fails and nothing is stored
    # rejected-by: status          accepted; the operator sets Ready=False and posts an Event
    # reason: <Reason>             (status) the Ready reason and the Event reason
    # fix: <JSON merge patch>      (status) turns the manifest into a valid one

Other comment lines describe the case. Admission cases need no operator; status cases
are those only the operator can catch (time zones, robfig/cron field ranges, Pod
validation that the embedded Job schema does not encode).
"""

from __future__ import annotations

import copy
import json
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.support import ROOT, Cluster, Kubectl, Operator, condition_of, load_example, wait_for

CORPUS = ROOT / "tests" / "e2e" / "invalid"
HEADER = re.compile(r"^#\s*(expect|rejected-by|reason|fix):\s*(.*?)\s*$")
STATUS_REASONS = {"UnknownTimeZone", "InvalidSpec"}
# The operator reconciles within a second of a change; the rest is slack for a busy machine.
TIMEOUT = 30


@dataclass(frozen=True)
class Case:
    stem: str
    text: str
    manifest: dict[str, Any]
    expects: tuple[str, ...]
    rejected_by: str  # "admission" or "status"
    reason: str | None = None
    fix: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    def fixed(self) -> dict[str, Any]:
        assert self.fix is not None
        fixed: dict[str, Any] = merge_patch(self.manifest, self.fix)
        return fixed

    def param(self) -> Any:
        return pytest.param(self, id=self.stem)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def load_case(path: Path) -> Case:
    text = path.read_text()
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if match := HEADER.match(line):
            fields.setdefault(match[1], []).append(match[2])
    where = path.relative_to(ROOT)
    [rejected_by] = fields.get("rejected-by", [None])
    assert rejected_by in ("admission", "status"), f"{where}: bad or missing # rejected-by:"
    assert fields.get("expect"), f"{where}: needs at least one # expect:"
    reason = fix = None
    if rejected_by == "status":
        [reason] = fields.get("reason", [None])
        assert reason in STATUS_REASONS, f"{where}: # reason: must be one of {STATUS_REASONS}"
        [fix_text] = fields.get("fix", [None])
        assert fix_text, f"{where}: a status case needs a # fix: (JSON merge patch)"
        fix = json.loads(fix_text)
    else:
        assert "reason" not in fields, f"{where}: # reason: is for status cases only"
        assert "fix" not in fields, f"{where}: # fix: is for status cases only"
    return Case(
        stem=path.stem,
        text=text,
        manifest=yaml.safe_load(text),
        expects=tuple(fields["expect"]),
        rejected_by=rejected_by,
        reason=reason,
        fix=fix,
    )


CASES = [load_case(p) for p in sorted(CORPUS.glob("*.yaml"))]
ADMISSION = [c for c in CASES if c.rejected_by == "admission"]
STATUS = [c for c in CASES if c.rejected_by == "status"]


def apply_text(kubectl: Kubectl, namespace: str, text: str) -> Any:
    """Client-side `kubectl apply`, as a user would run it."""
    return kubectl("-n", namespace, "apply", "-f", "-", input=text, check=False)


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    cond = condition_of(obj, "Ready")
    assert cond is not None, f"{obj['metadata']['name']} has no Ready condition"
    return cond


def wait_rejected(cluster: Cluster, case: Case) -> dict[str, Any]:
    """Wait for Ready=False with the case's reason; on timeout, say what Ready was."""
    last: dict[str, Any] = {}

    def probe() -> dict[str, Any] | None:
        obj = cluster.task(case.name)
        last["ready"] = condition_of(obj, "Ready")
        cond = last["ready"]
        if cond and cond["status"] == "False" and cond["reason"] == case.reason:
            return obj
        return None

    try:
        return wait_for(probe, timeout=TIMEOUT, what=f"{case.name}: Ready=False {case.reason}")
    except AssertionError as err:
        raise AssertionError(f"{err}; last Ready condition: {last.get('ready')}") from None


def warning_events(cluster: Cluster, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in cluster.events(name) if e["type"] == "Warning" and e["reason"] == reason]


def test_corpus_is_well_formed() -> None:
    assert len(CASES) >= 18
    assert ADMISSION, "no admission cases"
    assert STATUS, "no status cases"
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "two cases share metadata.name"
    for case in STATUS:
        assert case.name == case.stem, f"{case.stem}: status cases are named after their file"
        fixed = case.fixed()
        assert fixed != case.manifest, f"{case.stem}: # fix: changes nothing"
        assert fixed["metadata"]["name"] == case.name, f"{case.stem}: # fix: renames the task"


@pytest.mark.parametrize("case", [c.param() for c in ADMISSION])
def test_admission_rejects(case: Case, kubectl: Kubectl, namespace: str, crd: str) -> None:
    proc = apply_text(kubectl, namespace, case.text)

    assert proc.returncode != 0, f"{case.stem} was accepted: {proc.stdout.strip()}"
    for expected in case.expects:
        assert expected in proc.stderr, f"{expected!r} not in: {proc.stderr.strip()}"
    got = kubectl("-n", namespace, "get", "scheduledtask", case.name, check=False)
    assert got.returncode != 0, f"{case.name} exists after a failed apply"
    assert "NotFound" in got.stderr, got.stderr


@pytest.mark.parametrize("case", [c.param() for c in STATUS])
def test_status_reports_then_fix_recovers(
    case: Case, cluster: Cluster, kubectl: Kubectl, namespace: str
) -> None:
    applied = apply_text(kubectl, namespace, case.text)
    assert applied.returncode == 0, f"{case.stem} was rejected at admission: {applied.stderr}"

    obj = wait_rejected(cluster, case)
    cond = ready(obj)
    for expected in case.expects:
        assert expected in cond["message"], f"{expected!r} not in: {cond['message']}"
    assert cond["observedGeneration"] == 1
    assert obj["status"]["observedGeneration"] == 1
    assert cluster.get("cronjob", case.name) is None, "a CronJob exists for an invalid task"

    assert case.reason is not None
    events = wait_for(
        lambda: warning_events(cluster, case.name, case.reason or ""),
        timeout=TIMEOUT,
        what=f"a Warning Event {case.reason} on {case.name}",
    )
    messages = [e["message"] for e in events]
    assert any(all(x in m for x in case.expects) for m in messages), messages

    # The corrected manifest, applied over the bad one, brings the task back.
    fixed = case.fixed()
    assert apply_text(kubectl, namespace, json.dumps(fixed)).returncode == 0
    task = cluster.wait_ready(case.name, generation=2, timeout=TIMEOUT)
    cronjob = cluster.get("cronjob", case.name)
    assert cronjob is not None
    assert cronjob["spec"]["schedule"] == fixed["spec"]["schedule"]
    assert cronjob["spec"]["timeZone"] == fixed["spec"].get("timeZone", "Etc/UTC")
    assert task["status"]["cronJobName"] == case.name


def test_operator_stays_healthy_among_invalid_tasks(
    cluster: Cluster, kubectl: Kubectl, namespace: str, operator: Operator
) -> None:
    valid = load_example("heartbeat")
    valid["spec"]["schedule"] = "0 0 1 1 *"
    # The invalid tasks first, so the operator meets them before the valid one.
    stream = "\n---\n".join([*(c.text for c in STATUS), yaml.safe_dump(valid)])
    applied = apply_text(kubectl, namespace, stream)
    assert applied.returncode == 0, applied.stderr

    task = cluster.wait_ready(valid["metadata"]["name"], timeout=TIMEOUT)
    assert ready(task)["reason"] == "Reconciled"
    assert cluster.get("cronjob", valid["metadata"]["name"]) is not None

    for case in STATUS:
        cond = ready(wait_rejected(cluster, case))
        assert all(x in cond["message"] for x in case.expects), cond["message"]

    assert operator.process.poll() is None, f"the operator exited; see {operator.log_path}"
    with urllib.request.urlopen(operator.liveness_url, timeout=5) as resp:
        assert resp.status == 200
    assert "Traceback" not in operator.log(), f"traceback in {operator.log_path}"
    # Still reconciling: the valid task stays in sync.
    assert ready(cluster.task(valid["metadata"]["name"]))["status"] == "True"
