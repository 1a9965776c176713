"""`trigger`: the Job is the one `kubectl create job --from=cronjob/NAME` makes, plus who
asked and blockOwnerDeletion."""

from __future__ import annotations

from datetime import UTC, datetime

from cronwarden.core.runs import run_of
from cronwarden.plugin.trigger import controlled_by, cronjob_of, job_from_cronjob, job_name
from tests.unit.plugin.objects import CRONJOB_UID, NOON, TASK_UID, cronjob, task

UNIX_NOON = int(NOON.timestamp())  # 1795867800


def test_job_from_cronjob() -> None:
    cj = cronjob(labels={"cronwarden.io/task": "backup"}, annotations={"team": "storage"})
    job = job_from_cronjob(cj, "backup-manual-1795867800", "alice@example.com")
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    assert job["metadata"] == {
        "name": "backup-manual-1795867800",
        "namespace": "team-a",
        "labels": {"cronwarden.io/task": "backup"},
        "annotations": {
            "cronjob.kubernetes.io/instantiate": "manual",
            "team": "storage",
            "cronwarden.io/triggered-by": "alice@example.com",
        },
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": "backup",
                "uid": CRONJOB_UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    assert job["spec"] == cj["spec"]["jobTemplate"]["spec"]
    assert job["spec"] is not cj["spec"]["jobTemplate"]["spec"]  # a copy


def test_without_a_known_user_or_labels() -> None:
    job = job_from_cronjob(cronjob(), "x", None, block_owner_deletion=False)
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert "labels" not in job["metadata"]
    assert "blockOwnerDeletion" not in job["metadata"]["ownerReferences"][0]


def test_the_template_may_override_kubectls_annotation_as_in_kubectl() -> None:
    job = job_from_cronjob(cronjob(annotations={"cronjob.kubernetes.io/instantiate": "x"}), "x")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "x"


def test_the_operator_reads_it_as_a_manual_run_by_that_user() -> None:
    run = run_of(job_from_cronjob(cronjob(), "backup-manual-1", "alice@example.com"))
    assert run.manual
    assert run.triggered_by == "alice@example.com"


def test_name_is_the_cronjob_and_unix_seconds() -> None:
    assert job_name("backup", NOON) == f"backup-manual-{UNIX_NOON}"


def test_long_names_are_cut_in_the_cronjob_part_never_the_seconds() -> None:
    longest = "a" * 52  # the longest CronJob name the API server accepts
    name = job_name(longest, NOON)
    assert len(name) == 63
    assert name == "a" * 45 + f"-manual-{UNIX_NOON}"
    # A cut that would end on a dash or dot drops it: names end alphanumeric.
    assert job_name("b" * 44 + "-x" * 4, NOON) == "b" * 44 + f"-manual-{UNIX_NOON}"
    later = datetime(2286, 11, 20, 17, 46, 40, tzinfo=UTC)  # 11-digit seconds
    assert len(job_name(longest, later)) == 63


def test_which_cronjob() -> None:
    assert cronjob_of(task(status={"cronJobName": "backup"})) == "backup"
    assert cronjob_of(task()) is None  # not reconciled yet
    assert cronjob_of(task(spec={"cronJobRef": {"name": "vendor"}})) == "vendor"


def test_controlled_by() -> None:
    assert controlled_by(cronjob(), TASK_UID)
    assert not controlled_by(cronjob(), CRONJOB_UID)
    assert not controlled_by({"metadata": {}}, TASK_UID)
