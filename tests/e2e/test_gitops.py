"""GitOps health of live ScheduledTasks, judged by the tools themselves.

- kstatus (sigs.k8s.io/cli-utils v0.37.2, the library behind Flux's health checks),
  built as hack/kstatus: every example is Current; every task the operator cannot
  reconcile (the status cases of tests/e2e/invalid/, a CronJob it does not own, a
  monitored CronJob that does not exist) is Failed, with the Stalled message.
- The Argo CD health check shipped in helm/cronwarden/files/argocd/, run with Lua 5.1
  on the same live objects: Healthy, Suspended, Degraded (failing runs; a stalled
  spec), as docs/gitops.md says.
- The Argo CD suspend and resume actions, run on a live task and applied as Argo CD
  applies them (a merge patch of the difference), suspend and resume its CronJob.

The live objects and the table of verdicts are written to $STATE_DIR/gitops/ (and the
table printed: `pytest -rP tests/e2e/test_gitops.py` shows it under pytest-xdist too).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

from tests import argocd_lua
from tests.e2e.support import BIN, ROOT, STATE_DIR, Cluster, Operator, condition_of
from tests.e2e.test_invalid import STATUS
from tests.e2e.test_scheduledtask import nightly

EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml"))
OUT = STATE_DIR / "gitops"
TIMEOUT = 60
# always-fails has maxConsecutiveFailures: 2; two manual runs make it Failing without
# waiting for its schedule.
FAILING_EXAMPLE = "always-fails"
NOT_OWNED = "not-owned"
MONITOR_MISSING = "watches-missing-cronjob"


@dataclass(frozen=True)
class Expected:
    kstatus: str
    argocd: str
    reason: str | None = None  # the Stalled reason, in both messages


EXPECTED: dict[str, Expected] = {
    "always-fails": Expected("Current", "Degraded"),
    "cache-refresh": Expected("Current", "Healthy"),
    "heartbeat": Expected("Current", "Healthy"),
    "nightly-backup": Expected("Current", "Healthy"),
    "suspended-cleanup": Expected("Current", "Suspended"),
    "weekly-report": Expected("Current", "Healthy"),
    **{c.name: Expected("Failed", "Degraded", c.reason) for c in STATUS},
    NOT_OWNED: Expected("Failed", "Degraded", "CronJobNotOwned"),
    MONITOR_MISSING: Expected("Failed", "Degraded", "CronJobNotFound"),
}


def kstatus(objects: dict[str, Any]) -> list[dict[str, str]]:
    binary = BIN / "kstatus"
    assert binary.exists(), f"{binary} is missing: run `make tools`"
    proc = subprocess.run(
        [str(binary)], input=json.dumps(objects), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    results: list[dict[str, str]] = json.loads(proc.stdout)
    return results


def settled(task: dict[str, Any]) -> bool:
    """The operator has judged this generation: Ready=True or Stalled=True at it."""
    status = task.get("status") or {}
    if status.get("observedGeneration") != task["metadata"]["generation"]:
        return False
    return any((condition_of(task, t) or {}).get("status") == "True" for t in ("Ready", "Stalled"))


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def merge_patch(live: Any, changed: Any) -> Any:
    """The RFC 7386 merge patch from `live` to `changed`, as Argo CD sends for an action
    that returns the modified object."""
    if not (isinstance(live, dict) and isinstance(changed, dict)):
        return changed
    patch: dict[str, Any] = {}
    for key in live.keys() - changed.keys():
        patch[key] = None
    for key, value in changed.items():
        if key not in live:
            patch[key] = value
        elif live[key] != value:
            patch[key] = merge_patch(live[key], value)
    return patch


def test_kstatus_and_argo_cd_health_of_examples_and_invalid_tasks(
    cluster: Cluster,
    operator: Operator,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    """Prints the table of verdicts (also with pytest-xdist, where the terminal shows
    it with -rP) and writes it to $STATE_DIR/gitops/health.txt."""
    ns = cluster.namespace
    kubectl = cluster.kubectl
    for path in EXAMPLES:
        kubectl("-n", ns, "apply", "-f", str(path))
    for case in STATUS:
        kubectl("-n", ns, "apply", "-f", "-", input=case.text)
    kubectl(
        "-n", ns, "create", "cronjob", NOT_OWNED, "--image=busybox:1.37", "--schedule=0 0 1 1 *"
    )
    cluster.apply(nightly(NOT_OWNED))
    cluster.apply(
        {
            "apiVersion": "cronwarden.io/v1alpha1",
            "kind": "ScheduledTask",
            "metadata": {"name": MONITOR_MISSING},
            "spec": {"cronJobRef": {"name": "no-such-cronjob"}, "owner": "team-vendor"},
        }
    )

    for name in EXPECTED:
        cluster.wait_task(name, settled, timeout=TIMEOUT, what="Ready or Stalled")
    for run in (1, 2):
        kubectl("-n", ns, "create", "job", f"{FAILING_EXAMPLE}-manual-{run}",
                f"--from=cronjob/{FAILING_EXAMPLE}")  # fmt: skip
    cluster.wait_task(
        FAILING_EXAMPLE,
        lambda t: (condition_of(t, "Failing") or {}).get("status") == "True",
        timeout=TIMEOUT,
        what="Failing=True after two failed runs",
    )

    live = json.loads(kubectl("-n", ns, "get", "scheduledtasks", "-o", "json").stdout)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scheduledtasks.json").write_text(json.dumps(live, indent=2) + "\n")
    verdicts = {r["name"]: r for r in kstatus(live)}
    tasks = {t["metadata"]["name"]: t for t in live["items"]}
    assert set(tasks) == set(EXPECTED)
    assert set(verdicts) == set(EXPECTED)

    rows = [("TASK", "KSTATUS", "KSTATUS MESSAGE", "ARGO CD", "ARGO CD MESSAGE")]
    health = {}
    for name in sorted(EXPECTED):
        health[name] = argocd_lua.health(tasks[name])
        rows.append(
            (
                name,
                verdicts[name]["status"],
                verdicts[name]["message"],
                health[name]["status"],
                health[name]["message"],
            )
        )
    (OUT / "health.txt").write_text(table(rows) + "\n")
    short = table([tuple(shorten(cell) for cell in row) for row in rows])
    report = f"{short}\n(full messages: {OUT / 'health.txt'})"
    request.node.add_report_section("call", "kstatus and Argo CD health", report)
    with capsys.disabled():
        print(f"\nkstatus and Argo CD health of the live ScheduledTasks in {ns}:\n{report}")

    for name, want in EXPECTED.items():
        got = verdicts[name]
        assert got["status"] == want.kstatus, (name, got)
        assert not got.get("error"), (name, got)
        assert health[name]["status"] == want.argocd, (name, health[name])
        if want.reason is not None:
            stalled = condition_of(tasks[name], "Stalled")
            assert stalled is not None
            assert (stalled["status"], stalled["reason"]) == ("True", want.reason), name
            # kstatus reports the Stalled message; the Argo CD check names the reason too.
            assert got["message"] == stalled["message"], (name, got)
            assert health[name]["message"].startswith(f"Stalled ({want.reason}): "), name
    for case in STATUS:
        for expected in case.expects:
            assert expected in verdicts[case.name]["message"], (case.name, expected)
    assert verdicts["heartbeat"]["message"] == "Resource is Ready"
    assert health["always-fails"]["message"].startswith("Failing (ConsecutiveFailures): ")
    assert health["heartbeat"]["message"] == condition_of(tasks["heartbeat"], "Ready")["message"]  # type: ignore[index]


def run_action(cluster: Cluster, name: str, action: str) -> dict[str, Any]:
    """Run an Argo CD action on the live task and patch it as Argo CD does."""
    live = cluster.task(name)
    offered = argocd_lua.discovery(live)
    assert set(offered) == {action}, offered
    changed = argocd_lua.action(action, live)
    patch = merge_patch(live, changed)
    assert patch == {"spec": {"suspend": action == "suspend"}}, patch
    cluster.kubectl(
        "-n", cluster.namespace, "patch", "scheduledtask", name, "--type=merge",
        "-p", json.dumps(patch),
    )  # fmt: skip
    return patch


def test_argo_cd_suspend_and_resume_actions_on_a_live_task(
    cluster: Cluster, operator: Operator
) -> None:
    name = "paused-by-argo"
    cluster.apply(nightly(name))
    task = cluster.wait_ready(name)
    assert argocd_lua.health(task)["status"] == "Healthy"

    run_action(cluster, name, "suspend")
    task = cluster.wait_task(
        name,
        lambda t: settled(t) and (condition_of(t, "Suspended") or {}).get("status") == "True",
        timeout=TIMEOUT,
        what="Suspended=True at generation 2",
    )
    assert task["metadata"]["generation"] == 2
    assert (cluster.get("cronjob", name) or {})["spec"]["suspend"] is True
    assert argocd_lua.health(task) == {
        "status": "Suspended",
        "message": "Suspended (SuspendedBySpec): spec.suspend is true: no new runs start",
    }

    run_action(cluster, name, "resume")
    task = cluster.wait_task(
        name,
        lambda t: settled(t) and (condition_of(t, "Suspended") or {}).get("status") == "False",
        timeout=TIMEOUT,
        what="Suspended=False at generation 3",
    )
    assert (cluster.get("cronjob", name) or {})["spec"]["suspend"] is False
    assert argocd_lua.health(task)["status"] == "Healthy"


def test_argo_cd_offers_no_action_on_a_monitoring_task(
    cluster: Cluster, operator: Operator
) -> None:
    """spec.suspend is refused with spec.cronJobRef: the actions are not offered, and
    refuse to run."""
    cluster.kubectl(
        "-n", cluster.namespace, "create", "cronjob", "vendor", "--image=busybox:1.37",
        "--schedule=0 0 1 1 *",
    )  # fmt: skip
    cluster.apply(
        {
            "apiVersion": "cronwarden.io/v1alpha1",
            "kind": "ScheduledTask",
            "metadata": {"name": "watches-vendor"},
            "spec": {"cronJobRef": {"name": "vendor"}},
        }
    )
    task = cluster.wait_ready("watches-vendor")
    assert argocd_lua.health(task)["status"] == "Healthy"
    assert argocd_lua.discovery(task) == {}
    with pytest.raises(argocd_lua.LuaError, match="monitor mode: suspend the CronJob vendor"):
        argocd_lua.action("suspend", task)
