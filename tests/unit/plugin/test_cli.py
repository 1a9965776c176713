"""The command line: options before or after the subcommand, exit codes, and the
cluster subcommands against an in-memory stand-in for the client (no cluster)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

from cronwarden.plugin import client as client_module
from cronwarden.plugin.cli import build_parser, main, request_timeout
from cronwarden.plugin.errors import ClusterError, UsageError
from cronwarden.wire import ApiError
from tests.unit.plugin.objects import HEALTHY, cronjob, event, job, task


class FakeClient:
    """What commands.py needs of client.Client, kept in dicts."""

    namespace = "team-a"

    def __init__(self, *tasks: dict[str, Any], cronjobs: list[dict[str, Any]] | None = None):
        self.tasks = {t["metadata"]["name"]: t for t in tasks}
        self.cronjobs = {c["metadata"]["name"]: c for c in cronjobs or []}
        self.jobs: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.user: str | None = "alice@example.com"
        self.refuse_block_owner_deletion = False
        self.selectors: list[str | None] = []

    def get_task(self, namespace: str, name: str) -> dict[str, Any]:
        if name not in self.tasks:
            raise ClusterError(f'scheduledtask "{name}" not found in namespace "{namespace}"')
        return copy.deepcopy(self.tasks[name])

    def list_tasks(
        self, namespace: str | None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.selectors.append(selector)
        return list(self.tasks.values())

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.cronjobs.get(name)

    def patch_task(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(("scheduledtask", name, patch))
        return {}

    def patch_cronjob(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(("cronjob", name, patch))
        return {}

    def list_jobs(self, namespace: str) -> list[dict[str, Any]]:
        return self.jobs

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        owner = body["metadata"]["ownerReferences"][0]
        if self.refuse_block_owner_deletion and "blockOwnerDeletion" in owner:
            raise ApiError(
                403,
                "Forbidden",
                'jobs.batch "x" is forbidden: cannot set blockOwnerDeletion if an '
                "ownerReference refers to a resource you can't set finalizers on",
            )
        self.jobs.append(body)
        return body

    def list_events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return self.events

    def whoami(self) -> str | None:
        return self.user


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    ready = task(status={"conditions": HEALTHY, "cronJobName": "backup"})
    monitor = task("watch", spec={"cronJobRef": {"name": "vendor"}}, status={"conditions": HEALTHY})
    stand_in = FakeClient(ready, monitor, cronjobs=[cronjob(), cronjob("vendor")])
    stand_in.cronjobs["vendor"]["metadata"]["ownerReferences"] = []
    seen: dict[str, Any] = {}

    def connect(kubeconfig: str | None, context: str | None, **options: Any) -> FakeClient:
        seen.update(kubeconfig=kubeconfig, context=context, **options)
        return stand_in

    monkeypatch.setattr(client_module, "connect", connect)
    stand_in.seen = seen  # type: ignore[attr-defined]
    return stand_in


GLOBALS = ["-n", "ns", "-A", "--kubeconfig", "k", "--context", "c", "--request-timeout", "5s"]


@pytest.mark.parametrize(
    "argv",
    [
        [*GLOBALS, "--as", "bob", "get"],
        ["get", *GLOBALS, "--as=bob"],
        ["-n", "ns", "--as", "bob", "get", "-A", "--kubeconfig", "k", "--context=c"],
        ["-n", "other", "--as", "eve", "get", "--namespace", "ns", "-A", "--kubeconfig=k",
         "--context=c", "--request-timeout=5s", "--as", "bob"],
    ],
)  # fmt: skip
def test_global_options_before_or_after_the_subcommand(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.namespace, args.all_namespaces, args.kubeconfig, args.context) == (
        "ns",
        True,
        "k",
        "c",
    )
    assert args.as_user == "bob"
    assert args.request_timeout in ("5s", None)


def test_defaults_when_no_option_is_given() -> None:
    args = build_parser().parse_args(["trigger", "x"])
    assert (args.namespace, args.kubeconfig, args.context) == (None, None, None)
    assert (args.all_namespaces, args.request_timeout, args.as_user) == (False, None, None)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 30.0), ("5", 5.0), ("5s", 5.0), ("1m30s", 90.0), ("1.5h", 5400.0), ("0", None),
     ("250ms", 0.25)],
)  # fmt: skip
def test_request_timeout_as_kubectl_reads_it(value: str | None, seconds: float | None) -> None:
    assert request_timeout(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5x", "-1s", "s", ""])
def test_request_timeout_refuses_what_is_not_a_duration(value: str) -> None:
    with pytest.raises(UsageError, match="--request-timeout"):
        request_timeout(value)


def test_global_options_reach_the_client(fake: FakeClient) -> None:
    assert main(["--request-timeout", "1m", "--as", "bob", "get"]) == 0
    assert fake.seen == {  # type: ignore[attr-defined]
        "kubeconfig": None,
        "context": None,
        "timeout": 60.0,
        "user": "bob",
    }


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: kubectl cronwarden" in capsys.readouterr().out


def test_all_namespaces_is_for_get_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["why", "x", "-A"]) == 2
    assert capsys.readouterr().err == "error: -A/--all-namespaces is for get, not why\n"


@pytest.mark.parametrize(
    "argv", [["get", "-o", "xml"], ["frobnicate"], ["trigger"], ["trigger", "x", "-o", "wide"]]
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_next_needs_no_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["next", "0 2 * * *", "--tz", "Europe/Berlin", "--count", "3"]
    assert main([*argv, "--from", "2027-03-27T00:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "2027-03-29T00:00:00Z   2027-03-29 02:00 CEST (+02:00) Mon" in out
    assert "will skip the run at 02:00" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["next", "0 2 * * 8"], "day-of-week field '8' is out of range"),
        (["next", "0 2 * *"], "schedule"),
        (["next", "@daily", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["next", "@daily", "--from", "soon"], "--from: 'soon' is not a time"),
        (["next", "@daily", "--count", "0"], "--count must be between 1 and 1000"),
    ],
)
def test_next_rejects_invalid_input_with_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_get_lists_and_passes_the_options(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["get", "--kubeconfig", "/k", "--context", "c", "-l", "team=a"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[1:]] == [
        ["backup", "30"],
        ["watch", "->"],
    ]
    assert fake.seen["kubeconfig"] == "/k"  # type: ignore[attr-defined]
    assert fake.seen["context"] == "c"  # type: ignore[attr-defined]
    assert fake.selectors == ["team=a"]


def test_get_output_name_and_wide(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "-o", "name"]) == 0
    assert capsys.readouterr().out == (
        "scheduledtask.cronwarden.io/backup\nscheduledtask.cronwarden.io/watch\n"
    )
    assert main(["get", "-o", "wide"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[header.index("OWNER") :] == [
        "OWNER", "LAST", "SCHEDULE", "LAST", "RESULT", "FAILURES", "MISSED", "CRONJOB", "AGE"
    ]  # fmt: skip


def test_get_by_name_with_a_selector_is_a_usage_error(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["get", "backup", "-l", "a=b"]) == 2
    assert "name cannot be provided when a selector is specified" in capsys.readouterr().err


def test_why_output_name_json_and_wide(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["why", "backup", "-o", "name"]) == 0
    assert capsys.readouterr().out == "scheduledtask.cronwarden.io/backup\n"
    assert main(["why", "backup", "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["name"], data["state"], data["cronJob"]) == ("backup", "OK", "backup")
    assert data["why"][0].startswith("Healthy")
    assert main(["why", "backup", "-o", "wide"]) == 0
    wide = capsys.readouterr().out
    assert "UID:" in wide
    assert "Generation:      1 (observed 1)" in wide
    assert main(["why", "backup"]) == 0
    assert "UID:" not in capsys.readouterr().out


def test_get_a_missing_task_exits_1(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "nosuch"]) == 1
    assert (
        capsys.readouterr().err == 'error: scheduledtask "nosuch" not found in namespace "team-a"\n'
    )


def test_get_by_name_across_namespaces_is_a_usage_error(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["get", "backup", "-A"]) == 2
    assert "across all namespaces" in capsys.readouterr().err


def test_get_output_json(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "backup", "-o", "json"]) == 0
    assert '"name": "backup"' in capsys.readouterr().out
    assert main(["get", "-o", "yaml"]) == 0
    assert capsys.readouterr().out.startswith("apiVersion: v1\nkind: List\n")


def test_trigger_creates_the_job_and_prints_its_name(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trigger", "backup"]) == 0
    [created] = fake.jobs
    name = created["metadata"]["name"]
    assert name.startswith("backup-manual-")
    assert capsys.readouterr().out == f"job.batch/{name} created\n"
    assert created["metadata"]["annotations"]["cronwarden.io/triggered-by"] == "alice@example.com"
    assert created["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True


def test_trigger_without_permission_for_block_owner_deletion_does_as_kubectl(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.refuse_block_owner_deletion = True
    fake.user = None  # the SelfSubjectReview failed: no annotation
    assert main(["trigger", "backup", "-o", "name"]) == 0
    [created] = fake.jobs
    assert "blockOwnerDeletion" not in created["metadata"]["ownerReferences"][0]
    assert "cronwarden.io/triggered-by" not in created["metadata"]["annotations"]
    out, err = capsys.readouterr()
    assert out == f"job.batch/{created['metadata']['name']}\n"
    assert "blockOwnerDeletion" in err


def test_trigger_in_monitor_mode_uses_the_referenced_cronjob(fake: FakeClient) -> None:
    assert main(["trigger", "watch"]) == 0
    assert fake.jobs[0]["metadata"]["ownerReferences"][0]["name"] == "vendor"


def test_trigger_refuses_a_cronjob_the_task_does_not_control(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.cronjobs["backup"]["metadata"]["ownerReferences"] = []
    assert main(["trigger", "backup"]) == 1
    assert "not controlled by scheduledtask backup" in capsys.readouterr().err
    assert fake.jobs == []


def test_trigger_before_the_operator_made_a_cronjob(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.tasks["new"] = task("new")
    assert main(["trigger", "new"]) == 1
    assert "scheduledtask new has no CronJob yet" in capsys.readouterr().err


def test_suspend_and_resume_patch_the_task(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["suspend", "backup"]) == 0
    assert fake.patches == [("scheduledtask", "backup", {"spec": {"suspend": True}})]
    assert capsys.readouterr() == ("scheduledtask.cronwarden.io/backup suspended\n", "")
    fake.tasks["backup"]["spec"]["suspend"] = True
    assert main(["suspend", "backup"]) == 0
    assert "already suspended (no change)" in capsys.readouterr().out
    assert main(["resume", "backup"]) == 0
    assert fake.patches[-1] == ("scheduledtask", "backup", {"spec": {"suspend": False}})


def test_suspend_in_monitor_mode_patches_the_cronjob_and_says_so(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["suspend", "watch"]) == 0
    assert fake.patches == [("cronjob", "vendor", {"spec": {"suspend": True}})]
    assert "cronjob.batch/vendor suspended (scheduledtask watch monitors it" in (
        capsys.readouterr().out
    )


def test_suspend_warns_when_gitops_manages_the_object(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = {"kustomize.toolkit.fluxcd.io/name": "apps"}
    fake.tasks["backup"]["metadata"]["labels"] = labels
    assert main(["suspend", "backup"]) == 0
    err = capsys.readouterr().err
    assert "managed by Flux (label kustomize.toolkit.fluxcd.io/name=apps)" in err
    assert "they will revert it" in err


def test_why_shows_the_runs_of_the_cronjob_and_the_events(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.jobs = [
        job("backup-manual-1", created="2026-11-28T12:00:00Z", triggered_by="alice@example.com"),
        {**job("other", created="2026-11-28T12:00:00Z"), "metadata": {"name": "other"}},
    ]
    fake.events = [
        event(
            "RunSucceeded",
            "Job x succeeded",
            first="2026-11-28T12:00:00Z",
            last="2026-11-28T12:00:00Z",
        )
    ]
    assert main(["why", "backup"]) == 0
    out = capsys.readouterr().out
    assert "backup-manual-1   Manual by alice@example.com" in out
    assert "other" not in out  # not a Job of the task's CronJob
    assert "RunSucceeded" in out
    assert "Healthy" in out


def test_the_plugin_loads_neither_kopf_nor_prometheus_and_next_not_even_kubernetes() -> None:
    code = (
        "import sys\n"
        "from cronwarden.plugin.cli import main\n"
        "assert main(['next', '@daily', '--count', '1']) == 0\n"
        "import cronwarden.plugin.commands, cronwarden.plugin.client\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'kopf', 'prometheus_client'}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-1] == "[]"
    lazy = (
        "import sys\n"
        "from cronwarden.plugin.cli import main\n"
        "main(['next', '@daily', '--count', '1'])\n"
        "print('kubernetes' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", lazy], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-1] == "False"
