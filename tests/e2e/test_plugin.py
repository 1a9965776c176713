"""`kubectl cronwarden`, the installed console script, against the real control plane:
get, trigger, why, suspend and resume on a task the shared operator reconciles, and
next without a cluster. The kubeconfig is always passed with --kubeconfig."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.e2e.support import ROOT, Cluster, condition_of, wait_for
from tests.e2e.test_ownership import NEVER_SOON, job_done, quiet
from tests.e2e.test_scheduledtask import monitoring

# The console script installed next to this interpreter (pip install -e . makes it).
PLUGIN = Path(sys.executable).parent / "kubectl-cronwarden"


def plugin(
    *args: str, kubeconfig: Path | None = None, program: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the plugin; never with KUBECONFIG or in-cluster credentials from the
    environment, so that only the explicit --kubeconfig counts."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
    }
    env["HOME"] = "/nonexistent"  # no ~/.kube/config either
    assert PLUGIN.exists(), f"{PLUGIN} is not installed: run make install (pip install -e .)"
    argv = [*(program or [str(PLUGIN)]), *(["--kubeconfig", str(kubeconfig)] if kubeconfig else [])]
    argv += args
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    # Shown with pytest -s: the README's samples come from here.
    print(f"$ kubectl cronwarden {shlex.join(args)}\n{proc.stdout}{proc.stderr}", end="")
    return proc


def test_get_trigger_why_suspend_resume(cluster: Cluster, kubeconfig: Path) -> None:
    ns = cluster.namespace
    task = quiet(
        "nightly-report",
        owner="team-reports",
        runbookURL="https://runbooks.example.com/nightly-report",
        expectedResult="report.pdf in the reports bucket",
        rollbackNote="safe to re-run; the report is overwritten",
    )
    cluster.apply(task)
    cluster.wait_ready("nightly-report")

    got = plugin("get", "-n", ns, kubeconfig=kubeconfig)
    assert got.returncode == 0, got.stderr
    header, row = got.stdout.splitlines()
    assert header.split() == [
        "NAME", "SCHEDULE", "TZ", "ACTIVE", "LAST", "SUCCESS", "NEXT", "RUN", "STATE", "OWNER",
        "AGE",
    ]  # fmt: skip
    assert row.split()[:-1] == [
        "nightly-report", *NEVER_SOON.split(), "Etc/UTC", "0", "<never>",
        cluster.task("nightly-report")["status"]["nextScheduleTime"], "OK", "team-reports",
    ]  # fmt: skip
    assert row.split()[-1].endswith("s")  # AGE: created seconds ago
    everywhere = plugin("get", "-A", kubeconfig=kubeconfig)
    assert any(
        line.split()[:2] == [ns, "nightly-report"] for line in everywhere.stdout.splitlines()
    )
    as_json = plugin("get", "nightly-report", "-n", ns, "-o", "json", kubeconfig=kubeconfig)
    assert json.loads(as_json.stdout)["metadata"]["name"] == "nightly-report"

    # trigger: a Job from the CronJob, recorded by the operator as a Manual run.
    started = plugin("-n", ns, "trigger", "nightly-report", kubeconfig=kubeconfig)
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("job.batch/nightly-report-manual-")
    name = started.stdout.split()[0].removeprefix("job.batch/")
    job = cluster.get("job", name)
    assert job is not None
    user = json.loads(cluster.kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    annotations = job["metadata"]["annotations"]
    assert annotations["cronjob.kubernetes.io/instantiate"] == "manual"
    assert annotations["cronwarden.io/triggered-by"] == user["username"]
    [owner] = job["metadata"]["ownerReferences"]
    cronjob = cluster.get("cronjob", "nightly-report")
    assert cronjob is not None
    assert (owner["kind"], owner["uid"], owner["controller"], owner["blockOwnerDeletion"]) == (
        "CronJob",
        cronjob["metadata"]["uid"],
        True,
        True,
    )
    wait_for(lambda: job_done(cluster, name), timeout=60, what=f"Job {name} to complete")
    recorded = cluster.wait_task(
        "nightly-report",
        lambda t: (t["status"].get("lastRun") or {}).get("job") == name,
        timeout=60,
        what="the manual run in status.lastRun",
    )
    last = recorded["status"]["lastRun"]
    assert (last["trigger"], last["triggeredBy"], last["result"]) == (
        "Manual",
        user["username"],
        "Succeeded",
    )

    why = plugin("why", "nightly-report", "-n", ns, kubeconfig=kubeconfig)
    assert why.returncode == 0, why.stderr
    assert f"Last run:      Job {name}: Succeeded, Manual by {user['username']}" in why.stdout
    assert f"  {name}   Manual by {user['username']}   Succeeded" in why.stdout
    assert "Healthy" in why.stdout
    assert "Rollback note:   safe to re-run; the report is overwritten" in why.stdout
    wait_for(
        lambda: (
            "RunSucceeded"
            in plugin("why", "nightly-report", "-n", ns, kubeconfig=kubeconfig).stdout
        ),
        timeout=30,
        what="the RunSucceeded Event in why",
    )
    assert plugin("get", "-n", ns, kubeconfig=kubeconfig).stdout.splitlines()[1].split()[8] != (
        "<never>"
    )

    # suspend / resume flip spec.suspend; a GitOps label draws a warning.
    cluster.kubectl(
        "-n",
        ns,
        "label",
        "scheduledtask",
        "nightly-report",
        "kustomize.toolkit.fluxcd.io/name=apps",
    )
    paused = plugin("suspend", "nightly-report", "-n", ns, kubeconfig=kubeconfig)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout == "scheduledtask.cronwarden.io/nightly-report suspended\n"
    assert "managed by Flux" in paused.stderr
    assert "they will revert it" in paused.stderr
    assert cluster.task("nightly-report")["spec"]["suspend"] is True
    cluster.wait_task(
        "nightly-report",
        lambda t: (condition_of(t, "Suspended") or {}).get("status") == "True",
        timeout=30,
        what="Suspended=True",
    )
    assert "Suspended" in plugin("get", "-n", ns, kubeconfig=kubeconfig).stdout
    resumed = plugin("resume", "nightly-report", "-n", ns, kubeconfig=kubeconfig)
    assert resumed.stdout == "scheduledtask.cronwarden.io/nightly-report resumed\n"
    assert cluster.task("nightly-report")["spec"]["suspend"] is False


def test_why_explains_a_failing_run(cluster: Cluster, kubeconfig: Path) -> None:
    ns = cluster.namespace
    cluster.apply(quiet("nightly-export", fail=True, owner="team-data"))
    cluster.apply(quiet("nightly-report", owner="team-reports"))
    cluster.wait_ready("nightly-export")
    cluster.wait_ready("nightly-report")
    started = plugin("trigger", "nightly-export", "-n", ns, kubeconfig=kubeconfig)
    name = started.stdout.split()[0].removeprefix("job.batch/")
    cluster.wait_task(
        "nightly-export",
        lambda t: (condition_of(t, "Failing") or {}).get("status") == "True",
        timeout=60,
        what="Failing=True after the manual run failed",
    )
    rows = plugin("get", "-n", ns, kubeconfig=kubeconfig).stdout.splitlines()[1:]
    assert [(r.split()[0], r.split()[-3]) for r in rows] == [
        ("nightly-export", "Failing"),
        ("nightly-report", "OK"),
    ]

    def explained() -> str | None:
        out = plugin("why", "nightly-export", "-n", ns, kubeconfig=kubeconfig).stdout
        return out if "RunFailed" in out else None

    why = wait_for(explained, timeout=30, what="the RunFailed Event in why")
    assert "State:           Failing\n" in why
    assert (
        f"  Failing: 1 failed run(s) in a row, limit 1; last: Job {name} failed "
        "(BackoffLimitExceeded) (reason ConsecutiveFailures)."
    ) in why
    assert f"Last run:      Job {name}: Failed (BackoffLimitExceeded), Manual by " in why


def test_suspend_in_monitor_mode_patches_the_cronjob(cluster: Cluster, kubeconfig: Path) -> None:
    ns = cluster.namespace
    cluster.kubectl(
        "-n", ns, "create", "cronjob", "vendor", "--image=busybox:1.37", f"--schedule={NEVER_SOON}"
    )
    cluster.apply(monitoring("watch-vendor", "vendor"))
    cluster.wait_ready("watch-vendor")
    got = plugin("get", "watch-vendor", "-n", ns, kubeconfig=kubeconfig)
    assert got.stdout.splitlines()[1].split()[1:3] == ["->", "cronjob/vendor"]
    paused = plugin("suspend", "watch-vendor", "-n", ns, kubeconfig=kubeconfig)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("cronjob.batch/vendor suspended (scheduledtask watch-vendor")
    cronjob = cluster.get("cronjob", "vendor")
    assert cronjob is not None
    assert cronjob["spec"]["suspend"] is True
    assert "suspend" not in cluster.task("watch-vendor")["spec"]


def test_a_missing_task_exits_1(crd: str, namespace: str, kubeconfig: Path) -> None:
    missing = plugin("get", "nosuch", "-n", namespace, kubeconfig=kubeconfig)
    assert missing.returncode == 1
    assert missing.stderr == f'error: scheduledtask "nosuch" not found in namespace "{namespace}"\n'
    assert plugin("why", "nosuch", "-n", namespace, kubeconfig=kubeconfig).returncode == 1
    unreachable = plugin("get", kubeconfig=Path("/nonexistent/kubeconfig"))
    assert unreachable.returncode == 1
    assert "no kubeconfig at /nonexistent/kubeconfig" in unreachable.stderr


def test_next_shows_the_slot_that_spring_forward_skips() -> None:
    shown = plugin(
        "next",
        "0 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--count",
        "3",
        "--from",
        "2027-03-27T00:00:00Z",
    )
    assert shown.returncode == 0, shown.stderr
    assert [line.split()[0] for line in shown.stdout.splitlines()[2:5]] == [
        "2027-03-27T01:00:00Z",
        "2027-03-29T00:00:00Z",  # 2027-03-28 02:00 does not exist in Berlin
        "2027-03-30T00:00:00Z",
    ]
    assert (
        "Europe/Berlin: on 2027-03-28 clocks go forward by 1 hour at 02:00 local time; "
        "the CronJob controller will skip the run at 02:00 that day"
    ) in shown.stdout
    invalid = plugin("next", "0 2 * * 7")
    assert invalid.returncode == 2
    assert "day-of-week" in invalid.stderr


def test_kubectl_conventions(cluster: Cluster, kubeconfig: Path, tmp_path: Path) -> None:
    """Global flags before or after the verb, -o wide|name|json|yaml on every read verb,
    -l on get, --as, --context and --request-timeout, as kubectl reads them."""
    ns = cluster.namespace
    labelled = quiet("labelled", owner="team-a")
    labelled["metadata"]["labels"] = {"tier": "batch"}
    cluster.apply(labelled)
    cluster.apply(quiet("other", owner="team-b"))
    cluster.wait_ready("labelled")
    cluster.wait_ready("other")

    # Global flags before the verb (the helper puts --kubeconfig first, too).
    everywhere = plugin("-A", "get", kubeconfig=kubeconfig)
    assert everywhere.returncode == 0, everywhere.stderr
    assert everywhere.stdout.split()[:2] == ["NAMESPACE", "NAME"]
    assert [ns, "labelled"] in [line.split()[:2] for line in everywhere.stdout.splitlines()]
    before = plugin(
        "-n", ns, "--request-timeout", "10s", "get", "-o", "name", kubeconfig=kubeconfig
    )
    after = plugin("get", "-o", "name", "--request-timeout=10s", "-n", ns, kubeconfig=kubeconfig)
    assert (
        before.stdout
        == after.stdout
        == ("scheduledtask.cronwarden.io/labelled\nscheduledtask.cronwarden.io/other\n")
    )

    # -l, and -o wide with its extra columns.
    selected = plugin("-n", ns, "get", "-l", "tier=batch", "-o", "wide", kubeconfig=kubeconfig)
    assert selected.returncode == 0, selected.stderr
    header, *rows = selected.stdout.splitlines()
    assert header.split()[-7:] == [
        "SCHEDULE", "LAST", "RESULT", "FAILURES", "MISSED", "CRONJOB", "AGE"
    ]  # fmt: skip
    assert [r.split()[0] for r in rows] == ["labelled"]
    assert rows[0].split()[-2] == "labelled"  # CRONJOB
    as_yaml = plugin("-n", ns, "get", "-l", "tier=batch", "-o", "yaml", kubeconfig=kubeconfig)
    assert "kind: List" in as_yaml.stdout
    assert "name: other" not in as_yaml.stdout

    # Every read verb takes -o: why and next too.
    why_json = plugin("why", "labelled", "-n", ns, "-o", "json", kubeconfig=kubeconfig)
    assert why_json.returncode == 0, why_json.stderr
    report = json.loads(why_json.stdout)
    assert (report["name"], report["state"], report["cronJob"]) == ("labelled", "OK", "labelled")
    why_name = plugin("-n", ns, "why", "labelled", "-o", "name", kubeconfig=kubeconfig)
    assert why_name.stdout == "scheduledtask.cronwarden.io/labelled\n"
    uid = cluster.task("labelled")["metadata"]["uid"]
    assert (
        f"UID:             {uid}"
        in plugin("-n", ns, "why", "labelled", "-o", "wide", kubeconfig=kubeconfig).stdout
    )
    slots = plugin(
        "next", "@hourly", "-o", "name", "--count", "2", "--from", "2027-01-01T00:00:00Z"
    )
    assert slots.stdout == "2027-01-01T01:00:00Z\n2027-01-01T02:00:00Z\n"

    # --context picks a context of the kubeconfig; an unknown one is refused.
    context = cluster.kubectl("config", "current-context").stdout.strip()
    assert plugin("--context", context, "-n", ns, "get", kubeconfig=kubeconfig).returncode == 0
    wrong = plugin("get", "--context", "nosuch", "-n", ns, kubeconfig=kubeconfig)
    assert wrong.returncode == 1
    assert "nosuch" in wrong.stderr

    # --as impersonates: a ServiceAccount without RBAC is Forbidden, in one line.
    cluster.kubectl("-n", ns, "create", "serviceaccount", "nobody")
    denied = plugin(
        "--as", f"system:serviceaccount:{ns}:nobody", "-n", ns, "get", kubeconfig=kubeconfig
    )
    assert denied.returncode == 1
    assert denied.stderr.startswith("Error from server (Forbidden): ")
    assert f'User "system:serviceaccount:{ns}:nobody" cannot list' in denied.stderr
    assert denied.stderr.count("\n") == 1


def test_unreachable_cluster_is_one_line_that_says_whether_to_retry(
    kubeconfig: Path, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    closed = tmp_path / "kubeconfig"
    closed.write_text(yaml.safe_dump(config))
    failed = plugin("get", "-A", "--request-timeout", "5s", kubeconfig=closed)
    assert failed.returncode == 1
    assert failed.stderr == (
        f"error: cannot connect to the API server at https://127.0.0.1:{port}: connection "
        "refused (is the cluster running?); retrying helps once it listens again\n"
    )
    for noise in ("urllib3", "HTTPSConnectionPool", "Max retries", "object at 0x"):
        assert noise not in failed.stderr


def test_next_refuses_what_the_crd_refuses() -> None:
    refused = plugin("next", "@every 30s")
    assert refused.returncode == 2
    assert refused.stderr == (
        "error: spec.schedule: @every must be at least 1m (a Go duration such as 5m or 1h30m): "
        "the CronJob controller starts at most one run per minute (the ScheduledTask CRD "
        "refuses '@every 30s')\n"
    )
    shown = plugin("next", "@every 90s", "--count", "2", "--from", "2027-01-01T00:00:15Z")
    assert shown.returncode == 0, shown.stderr
    assert [line.split()[:3] for line in shown.stdout.splitlines()[2:4]] == [
        ["2027-01-01T00:01:45Z", "2027-01-01", "00:01:45"],
        ["2027-01-01T00:03:15Z", "2027-01-01", "00:03:15"],
    ]


def test_the_single_file_plugin_on_a_bare_python(
    cluster: Cluster, kubeconfig: Path, tmp_path: Path
) -> None:
    """The artifact of make dist (hack/plugin_zipapp.py), run by a Python without
    site-packages (-S -I: no kubernetes client, pydantic, kopf): every verb works."""
    build = subprocess.run(
        [sys.executable, str(ROOT / "hack/plugin_zipapp.py"), "--out", str(tmp_path),
         "--version", "0.0.0"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    bare = [sys.executable, "-S", "-I", str(tmp_path / "kubectl-cronwarden")]
    assert subprocess.run([*bare[:3], "-c", "import pydantic"]).returncode != 0

    ns = cluster.namespace
    cluster.apply(quiet("single-file", owner="team-zip"))
    cluster.wait_ready("single-file")
    got = plugin("-n", ns, "get", kubeconfig=kubeconfig, program=bare)
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[1].split()[0] == "single-file"
    started = plugin("-n", ns, "trigger", "single-file", "-o", "name", kubeconfig=kubeconfig,
                     program=bare)  # fmt: skip
    assert started.returncode == 0, started.stderr
    job = started.stdout.strip().removeprefix("job.batch/")
    assert cluster.get("job", job) is not None
    wait_for(lambda: job_done(cluster, job), timeout=60, what=f"Job {job} to complete")
    why = wait_for(
        lambda: (
            out
            if job in (out := plugin("-n", ns, "why", "single-file", kubeconfig=kubeconfig,
                                     program=bare).stdout) and "Succeeded" in out
            else None
        ),
        timeout=60,
        what="why to show the run",
    )  # fmt: skip
    assert "Owner:           team-zip" in why
    paused = plugin("-n", ns, "suspend", "single-file", kubeconfig=kubeconfig, program=bare)
    assert paused.stdout == "scheduledtask.cronwarden.io/single-file suspended\n"
    assert cluster.task("single-file")["spec"]["suspend"] is True
    resumed = plugin("-n", ns, "resume", "single-file", kubeconfig=kubeconfig, program=bare)
    assert resumed.returncode == 0, resumed.stderr
    assert cluster.task("single-file")["spec"]["suspend"] is False
