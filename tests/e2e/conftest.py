"""Fixtures for end-to-end tests: one local control plane per test session,
one namespace per test.

The cluster is started with hack/cluster.sh once per session (pytest-xdist
workers share it through a file lock), or an already running one is reused:
set CRONWARDEN_E2E_KUBECONFIG to its kubeconfig. A cluster that this session
started is deleted at the end unless CRONWARDEN_E2E_KEEP_CLUSTER=1.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client import ApiClient

from tests.e2e.support import (
    ROOT,
    STATE_DIR,
    Cluster,
    Kubectl,
    Operator,
    launch_operator,
    stop_operator,
    wait_for,
    watching,
    worker_id,
)

STARTED_MARKER = STATE_DIR / "cluster-started-by-tests"


def expected_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("long")
    return float(marker.args[0]) if marker else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)
    # The long tests first, so that the concurrent phase is not left waiting for a
    # ten-minute test that started last. pytest-xdist (`--maxschedchunk 1`, as `make
    # test-e2e` runs it) gives each worker the next two tests, then one at a time
    # as it finishes one: the longest are paired with the shortest of the long ones
    # so that no worker starts with two of the longest. Every worker collects the
    # same order (the sorts are stable).
    long = sorted((i for i in items if expected_seconds(i)), key=expected_seconds, reverse=True)
    rest = [i for i in items if not expected_seconds(i)]
    paired = [
        item
        for first, last in zip(long[: (len(long) + 1) // 2], reversed(long), strict=False)
        for item in ((first,) if first is last else (first, last))
    ]
    items[:] = paired + rest


def _start_cluster() -> Path:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kubeconfig = STATE_DIR / "kubeconfig"
        was_running = (
            subprocess.run(
                [str(ROOT / "hack/cluster.sh"), "status"], capture_output=True
            ).returncode
            == 0
        )
        if not was_running:
            subprocess.run([str(ROOT / "hack/cluster.sh"), "up"], check=True)
            STARTED_MARKER.touch()
        return kubeconfig


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Runs in the xdist controller (or the only process) after every worker is done.
    if hasattr(session.config, "workerinput"):
        return
    if STARTED_MARKER.exists() and os.environ.get("CRONWARDEN_E2E_KEEP_CLUSTER") != "1":
        subprocess.run([str(ROOT / "hack/cluster.sh"), "down"], check=False)
        STARTED_MARKER.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    given = os.environ.get("CRONWARDEN_E2E_KUBECONFIG")
    return Path(given) if given else _start_cluster()


@pytest.fixture(scope="session")
def api(kubeconfig: Path) -> Iterator[ApiClient]:
    with config.new_client_from_config(config_file=str(kubeconfig)) as api_client:
        yield api_client


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    return Kubectl(kubeconfig)


def _namespace(api: ApiClient, name: str) -> Iterator[str]:
    """Create namespace `name`, yield it, then delete it with everything in it."""
    core = client.CoreV1Api(api)
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"cronwarden.io/e2e-test": "true"})
        )
    )
    # Pods are rejected until the namespace's default ServiceAccount exists.
    wait_for(
        lambda: any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items
        ),
        timeout=30,
        what=f"the default ServiceAccount in {name}",
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def namespace(api: ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, watched by this worker's shared operator."""
    yield from _namespace(api, f"e2e-{worker_id()}-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def solo_namespace(api: ApiClient) -> Iterator[str]:
    """A fresh namespace that the shared per-worker operator does not watch, for a test
    that runs operators of its own (restarts, replicas)."""
    yield from _namespace(api, f"e2e-solo-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def crd(kubectl: Kubectl) -> str:
    """The ScheduledTask CRD from crds/, applied once (server-side) and served."""
    name = "scheduledtasks.cronwarden.io"
    with open(STATE_DIR / "crd.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(ROOT / "crds" / f"{name}.yaml"),
        )
        wait_for(
            lambda: (
                kubectl(
                    "wait",
                    "--for=condition=Established",
                    f"crd/{name}",
                    "--timeout=5s",
                    check=False,
                ).returncode
                == 0
            ),
            timeout=30,
            what=f"CRD {name} to be established",
        )
        wait_for(
            lambda: kubectl("get", "scheduledtasks", "-A", check=False).returncode == 0,
            timeout=30,
            what="ScheduledTasks to be served",
        )
    return name


@pytest.fixture
def cluster(kubectl: Kubectl, namespace: str, operator: Operator) -> Cluster:
    """kubectl views of this test's namespace, once the shared operator watches.

    The operator follows its namespace pattern with cluster-wide watches that it
    filters itself, so a namespace created at any moment is seen: waiting for the
    watch on tasks to have started is enough."""
    started = "Starting the watch-stream for scheduledtasks.v1alpha1.cronwarden.io cluster-wide"
    wait_for(lambda: started in operator.log(), timeout=30, what="the operator's watch on tasks")
    return Cluster(kubectl, namespace)


@pytest.fixture(scope="session")
def operator(kubeconfig: Path, crd: str) -> Iterator[Operator]:
    """One operator per pytest worker, watching that worker's test namespaces."""
    op = launch_operator(watching(f"e2e-{worker_id()}-*"), kubeconfig, worker_id())
    yield op
    stop_operator(op)
