from __future__ import annotations

import copy

import pytest

from cronwarden.core import builder
from tests.unit.factories import TASK_UID, task

LABELS = {"app.kubernetes.io/managed-by": "cronwarden", "cronwarden.io/task": "backup"}


def test_cronjob_has_fixed_name_labels_and_controller_owner() -> None:
    cronjob = builder.build_cronjob(task())
    meta = cronjob["metadata"]
    assert (meta["name"], meta["namespace"]) == ("backup", "team-a")
    assert meta["labels"] == LABELS
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "cronwarden.io/v1alpha1",
            "kind": "ScheduledTask",
            "name": "backup",
            "uid": TASK_UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_defaults_are_filled_in() -> None:
    spec = builder.build_cronjob(task())["spec"]
    assert spec["suspend"] is False
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 300
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    assert spec["timeZone"] == "Etc/UTC"  # always explicit: never the controller's own zone
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("schedule", "*/5 * * * *"),
        ("timeZone", "Europe/Berlin"),
        ("suspend", True),
        ("concurrencyPolicy", "Replace"),
        ("startingDeadlineSeconds", 0),
        ("successfulJobsHistoryLimit", 0),
        ("failedJobsHistoryLimit", 7),
    ],
)
def test_every_cronjob_field_passes_through(field: str, value: object) -> None:
    assert builder.build_cronjob(task({field: value}))["spec"][field] == value


def test_job_template_passes_through_with_labels_added() -> None:
    template = {
        "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 60,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": {"app": "backup"}},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [{"name": "m", "image": "x", "args": ["--all"]}],
                },
            },
        },
    }
    out = builder.build_cronjob(task({"jobTemplate": copy.deepcopy(template)}))["spec"]
    job_template = out["jobTemplate"]
    assert job_template["metadata"]["labels"] == {"team": "a", **LABELS}
    assert job_template["metadata"]["annotations"] == {"note": "x"}
    assert job_template["spec"]["backoffLimit"] == 2
    assert job_template["spec"]["activeDeadlineSeconds"] == 60
    assert job_template["spec"]["ttlSecondsAfterFinished"] == 600
    pod = job_template["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app": "backup", **LABELS}
    assert pod["spec"] == template["spec"]["template"]["spec"]  # type: ignore[index]


def test_same_task_builds_the_same_cronjob() -> None:
    assert builder.build_cronjob(task()) == builder.build_cronjob(task())


def test_spec_hash_changes_with_the_spec() -> None:
    a = builder.build_cronjob(task())["metadata"]["annotations"]
    b = builder.build_cronjob(task({"suspend": True}))["metadata"]["annotations"]
    assert a[builder.SPEC_HASH_ANNOTATION] != b[builder.SPEC_HASH_ANNOTATION]


def live_from(desired: dict[str, object]) -> dict[str, object]:
    """What the API server returns for `desired`: the same, plus defaults."""
    live = copy.deepcopy(desired)
    live["metadata"]["resourceVersion"] = "5"  # type: ignore[index]
    live["spec"]["jobTemplate"]["spec"]["completions"] = 1  # type: ignore[index]
    live["status"] = {}
    return live


def test_in_sync_with_server_defaults_added() -> None:
    desired = builder.build_cronjob(task())
    assert builder.in_sync(desired, live_from(desired))


def test_not_in_sync_when_missing_or_edited_or_task_changed() -> None:
    desired = builder.build_cronjob(task())
    assert not builder.in_sync(desired, None)
    edited = live_from(desired)
    edited["spec"]["schedule"] = "0 0 * * *"  # type: ignore[index]
    assert not builder.in_sync(desired, edited)
    relabelled = live_from(desired)
    relabelled["metadata"]["labels"] = {}  # type: ignore[index]
    assert not builder.in_sync(desired, relabelled)
    changed = builder.build_cronjob(task({"suspend": True}))
    assert not builder.in_sync(changed, live_from(desired))


@pytest.mark.parametrize(
    ("desired", "actual", "expected"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 2, "d": 3}]}}, True),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}, False),
        ({"a": 1}, {}, False),
        # What the API server normalises when it stores an object:
        ({"memory": "1.5Gi"}, {"memory": "1536Mi"}, True),
        ({"cpu": 1}, {"cpu": "1"}, True),
        ({"cpu": "500m"}, {"cpu": "0.5"}, True),
        ({"cpu": "1k"}, {"cpu": "1e3"}, True),
        ({"args": []}, {}, True),
        ({"env": None, "volumes": {}}, {}, True),
        ({"memory": "1Gi"}, {"memory": "1G"}, False),
        ({"cpu": "2"}, {"cpu": "1"}, False),
        ({"args": []}, {"args": ["x"]}, False),
        ({"parallelism": 1}, {"parallelism": True}, False),
        ({"name": "a"}, {"name": None}, False),
    ],
)
def test_is_subset(desired: object, actual: object, expected: bool) -> None:
    assert builder.is_subset(desired, actual) is expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", "1"),
        ("1.5Gi", "1610612736"),
        ("1536Mi", "1610612736"),
        ("500m", "0.5"),
        ("100n", "1.00E-7"),
        ("2k", "2000"),
        ("1e3", "1000"),
        (".5", "0.5"),
        (3, "3"),
    ],
)
def test_quantity(text: object, value: str) -> None:
    from decimal import Decimal

    assert builder.quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["busybox:1.37", "1.5GiB", "", "Gi", True, None, "1 Gi"])
def test_not_a_quantity(text: object) -> None:
    assert builder.quantity(text) is None


def test_in_sync_when_the_api_server_normalised_the_template() -> None:
    containers = [
        {
            "name": "main",
            "image": "busybox:1.37",
            "args": [],
            "resources": {"requests": {"cpu": 1, "memory": "1.5Gi"}},
        }
    ]
    spec = {"jobTemplate": {"spec": {"template": {"spec": {"containers": containers}}}}}
    desired = builder.build_cronjob(task(spec))
    live = live_from(desired)
    stored = live["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    del stored["args"]
    stored["resources"]["requests"] = {"cpu": "1", "memory": "1536Mi"}
    assert builder.in_sync(desired, live)
