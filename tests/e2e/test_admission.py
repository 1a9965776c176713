"""The chart's ValidatingAdmissionPolicy and its ClusterRoles for people on the real API
server: who may read, create and change ScheduledTasks, and where.

Users are impersonated (`kubectl --as=alice`) and given Roles by the admin
kubeconfig, which is in system:masters (RBAC, and so the policy's authorizer
check, allows it everything). alice may create, read, update and delete
ScheduledTasks and patch their status, nothing about CronJobs; bob may do the same
and create CronJobs. With the policy bound:

| who   | request                                  | result                         |
|-------|------------------------------------------|--------------------------------|
| alice | create a task                            | denied, naming cronjobs.batch  |
| bob   | create a task                            | allowed                        |
| alice | update bob's task                        | denied, naming cronjobs.batch  |
| bob   | update his task                          | allowed                        |
| alice | patch the task's status                  | allowed: status is not matched |
| alice | delete bob's task                        | allowed: RBAC decides          |
| alice | change its spec while it is deleted      | denied, naming cronjobs.batch  |
| alice | remove its finalizer (spec unchanged)    | allowed: the deletion ends     |
| alice | create a task where the binding does not | allowed: RBAC decides          |
| admin | create a task in the operator namespace  | denied, naming the namespace   |
| bob   | the same, with both rights there         | denied, naming the namespace   |
| admin | update a task already there              | denied, naming the namespace   |
| admin | patch its status, delete it (foreground) | allowed, and the deletion ends |
| carol | suspend, resume bob's task (spec.suspend) | allowed: suspend-only updates     |
| carol | change its schedule, or suspend + label | denied, naming cronjobs.batch  |

(carol may get and patch ScheduledTasks, an on-call role), and with
tenancy.allowTasksInOperatorNamespace=true, the admin may create a task in the
operator namespace while alice there still may not.

The aggregated ClusterRoles (`helm template --show-only
templates/rbac-aggregated.yaml`): users bound in a namespace to the built-in
`view`, `edit` and `admin` ClusterRoles may, once the roles are installed and
aggregated by kube-controller-manager, do with ScheduledTasks what those roles
allow with CronJobs: view reads (get, list, watch) and cannot patch; edit and admin
create, patch and delete.

Each test installs only the policy objects of a release of its own (`helm template
--show-only templates/admissionpolicy.yaml`), bound through
admissionPolicy.namespaceSelector to a label that only its own namespaces carry,
so the policy never applies to the other tests sharing the cluster; the objects
are deleted afterwards. The API server loads a new policy asynchronously: each
install waits until the policy refuses a request, never a fixed time.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.support import BIN, ROOT, Kubectl, load_example, wait_for

CHART = ROOT / "helm" / "cronwarden"
LABEL = "cronwarden.io/e2e-admission"
# How long a new policy (and new RoleBindings) may take to be enforced.
POLICY_TIMEOUT = 30
FORBIDDEN = "Error from server (Forbidden)"
# How RBAC refuses a request, as opposed to the policy.
RBAC_REFUSAL = '" cannot '


def cronjob_message(user: str, namespace: str) -> str:
    return (
        f"user {user} may not create cronjobs.batch in namespace {namespace}: a ScheduledTask "
        "runs its jobTemplate as a CronJob would, so creating or updating one (other than "
        "changing only spec.suspend) requires that permission"
    )


def namespace_message(namespace: str) -> str:
    return (
        f"ScheduledTasks are not allowed in namespace {namespace}, where cronwarden runs: a task "
        "there could run pods under the operator's ServiceAccount (chart value "
        "tenancy.allowTasksInOperatorNamespace)"
    )


def task(name: str) -> dict[str, Any]:
    obj = load_example("heartbeat")
    obj["metadata"]["name"] = name
    obj["spec"]["schedule"] = "0 3 * * *"
    return obj


@dataclass
class Tenants:
    """The test's namespaces and what its users may do there, by RBAC alone."""

    kubectl: Kubectl
    team: str
    operator_ns: str
    outside: str

    def grant(self, namespace: str, user: str, verbs: str, resource: str) -> None:
        role = f"{user}-{resource.replace('/', '-').replace('.', '-')}"
        self.kubectl(
            "-n", namespace, "create", "role", role, f"--verb={verbs}", f"--resource={resource}"
        )
        self.kubectl(
            "-n", namespace, "create", "rolebinding", role, f"--role={role}", f"--user={user}"
        )

    def as_user(
        self, user: str | None, namespace: str, *args: str, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """kubectl in `namespace` as `user` (None: the admin), never raising."""
        who = [f"--as={user}"] if user else []
        return self.kubectl("-n", namespace, *who, *args, input=input, check=False)

    def create(
        self, user: str | None, namespace: str, name: str, *, dry_run: bool = False
    ) -> subprocess.CompletedProcess[str]:
        args = ["create", "-f", "-"] + (["--dry-run=server"] if dry_run else [])
        return self.as_user(user, namespace, *args, input=json.dumps(task(name)))

    def label(
        self, user: str | None, namespace: str, name: str
    ) -> subprocess.CompletedProcess[str]:
        """An update of the task (its metadata: the policy checks every update)."""
        return self.as_user(
            user, namespace, "label", "scheduledtask", name, f"edited-by={user or 'admin'}"
        )

    def patch_status(
        self, user: str | None, namespace: str, name: str
    ) -> subprocess.CompletedProcess[str]:
        """A status write, as the operator makes them."""
        return self.as_user(
            user,
            namespace,
            "patch",
            "scheduledtask",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"missedRuns": 0}}),
        )


def denied(proc: subprocess.CompletedProcess[str], policy: str, message: str) -> bool:
    """Refused by this policy (not by RBAC) with this message."""
    return (
        proc.returncode != 0
        and FORBIDDEN in proc.stderr
        and f"ValidatingAdmissionPolicy '{policy}'" in proc.stderr
        and message in proc.stderr
    )


def allowed(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == 0


def past_rbac(
    request: Callable[[], subprocess.CompletedProcess[str]],
) -> subprocess.CompletedProcess[str]:
    """The first answer to `request` that is not RBAC's refusal: a RoleBinding just
    created takes a moment to be seen by the authorizer."""
    return wait_for(
        lambda: None if RBAC_REFUSAL in (proc := request()).stderr else proc,
        timeout=POLICY_TIMEOUT,
        what="a new RoleBinding to be seen by the authorizer",
    )


@pytest.fixture
def tenants(kubectl: Kubectl, crd: str, namespace: str) -> Iterator[Tenants]:
    """Three namespaces: `namespace` as a team's, one playing the operator's (release)
    namespace, both labelled for this test's policy, and an unlabelled one. alice may
    create, read, update and delete ScheduledTasks and write their status in the team
    namespace, nothing about CronJobs; bob may do the same and create CronJobs."""
    key = uuid.uuid4().hex[:8]
    operator_ns, outside = f"e2e-admission-{key}", f"e2e-admission-{key}-outside"
    for ns in (operator_ns, outside):
        kubectl("create", "namespace", ns)
        kubectl("label", "namespace", ns, "cronwarden.io/e2e-test=true")
    t = Tenants(kubectl, namespace, operator_ns, outside)
    for user in ("alice", "bob"):
        t.grant(namespace, user, "create,get,update,patch,delete", "scheduledtasks.cronwarden.io")
        t.grant(namespace, user, "get,patch", "scheduledtasks.cronwarden.io/status")
    t.grant(namespace, "bob", "create", "cronjobs.batch")
    yield t
    for ns in (operator_ns, outside):
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def install_policy(kubectl: Kubectl, tenants: Tenants) -> Iterator[Callable[..., str]]:
    """Render the policy objects of a release of this test in the operator namespace,
    bound to namespaces labelled for it (the team and operator namespaces), apply them,
    and wait until they are enforced. Returns the policy's name; deleted afterwards."""
    applied: list[str] = []

    def install(values: dict[str, Any] | None = None) -> str:
        release = f"adm-{uuid.uuid4().hex[:8]}"
        for ns in (tenants.team, tenants.operator_ns):
            kubectl("label", "namespace", ns, f"{LABEL}={release}", "--overwrite")
        sets = {"admissionPolicy.namespaceSelector": {"matchLabels": {LABEL: release}}}
        sets |= values or {}
        args: list[str] = []
        for key, value in sets.items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        rendered = subprocess.run(
            [
                str(BIN / "helm"),
                "template",
                release,
                str(CHART),
                f"--namespace={tenants.operator_ns}",
                "--show-only=templates/admissionpolicy.yaml",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        applied.append(rendered)
        kubectl("apply", "-f", "-", input=rendered)
        policy = f"{release}-cronwarden"

        # Enforced once alice is refused, and bob (whose Roles are as new) is not.
        def enforced() -> bool:
            alice = tenants.create("alice", tenants.team, "probe", dry_run=True)
            bob = tenants.create("bob", tenants.team, "probe", dry_run=True)
            return denied(alice, policy, cronjob_message("alice", tenants.team)) and allowed(bob)

        wait_for(enforced, timeout=POLICY_TIMEOUT, what=f"the policy {policy} to be enforced")
        return policy

    yield install
    for rendered in applied:
        kubectl("delete", "--ignore-not-found", "-f", "-", input=rendered, check=False)


def test_creating_or_updating_a_task_needs_permission_to_create_cronjobs(
    tenants: Tenants, install_policy: Callable[..., str]
) -> None:
    policy = install_policy()
    team = tenants.team

    # alice may create ScheduledTasks by RBAC, not CronJobs: refused, and told why.
    refused = tenants.create("alice", team, "alices")
    assert denied(refused, policy, cronjob_message("alice", team)), refused.stderr
    assert tenants.as_user(None, team, "get", "scheduledtask", "alices").returncode != 0

    # bob may create both: his task is created.
    created = tenants.create("bob", team, "bobs")
    assert allowed(created), created.stderr

    # An update needs the same permission: alice may not edit bob's task, bob may.
    edited = tenants.label("alice", team, "bobs")
    assert denied(edited, policy, cronjob_message("alice", team)), edited.stderr
    assert allowed(tenants.label("bob", team, "bobs"))
    labels = json.loads(tenants.as_user(None, team, "get", "st", "bobs", "-o", "json").stdout)[
        "metadata"
    ]["labels"]
    assert labels == {"edited-by": "bob"}

    # The status subresource is not matched (the operator writes it), and deletion
    # runs nothing: both are left to RBAC.
    status = tenants.patch_status("alice", team, "bobs")
    assert allowed(status), status.stderr
    hold = {"metadata": {"finalizers": ["cronwarden.io/e2e-hold"]}}
    tenants.kubectl("-n", team, "patch", "st", "bobs", "--type=merge", "-p", json.dumps(hold))
    deleted = tenants.as_user("alice", team, "delete", "scheduledtask", "bobs", "--wait=false")
    assert allowed(deleted), deleted.stderr
    # While it is being deleted, its spec still cannot be changed by alice (only
    # updates that leave the spec alone, such as removing a finalizer, pass).
    reschedule = {"spec": {"schedule": "* * * * *"}}
    respec = tenants.as_user(
        "alice", team, "patch", "st", "bobs", "--type=merge", "-p", json.dumps(reschedule)
    )
    assert denied(respec, policy, cronjob_message("alice", team)), respec.stderr
    release = tenants.as_user(
        "alice",
        team,
        "patch",
        "st",
        "bobs",
        "--type=json",
        "-p",
        json.dumps([{"op": "remove", "path": "/metadata/finalizers"}]),
    )
    assert allowed(release), release.stderr
    assert "NotFound" in tenants.as_user(None, team, "get", "st", "bobs").stderr

    # The binding's namespaceSelector: where it does not match, only RBAC decides.
    tenants.grant(tenants.outside, "alice", "create", "scheduledtasks.cronwarden.io")
    outside = past_rbac(lambda: tenants.create("alice", tenants.outside, "alices"))
    assert allowed(outside), outside.stderr


def test_tasks_in_the_operator_namespace_are_refused_even_for_the_admin(
    tenants: Tenants, install_policy: Callable[..., str]
) -> None:
    ops = tenants.operator_ns
    # A task that was there before the policy (or before the chart was installed).
    assert allowed(tenants.create(None, ops, "earlier"))
    policy = install_policy()
    message = namespace_message(ops)

    refused = tenants.create(None, ops, "admins")
    assert denied(refused, policy, message), refused.stderr

    # Not even for someone who may create CronJobs there: the namespace check comes first.
    tenants.grant(ops, "bob", "create", "scheduledtasks.cronwarden.io")
    tenants.grant(ops, "bob", "create", "cronjobs.batch")
    bobs = past_rbac(lambda: tenants.create("bob", ops, "bobs"))
    assert denied(bobs, policy, message), bobs.stderr

    # The task already there cannot be changed, but its status can (the operator
    # reports Ready=False, NamespaceExcluded on it), and it can be deleted, also in
    # the foreground: the garbage collector's removal of the foregroundDeletion
    # finalizer (an update) is let through, or the task would stay Terminating.
    edited = tenants.label(None, ops, "earlier")
    assert denied(edited, policy, message), edited.stderr
    assert allowed(tenants.patch_status(None, ops, "earlier"))
    deleting = tenants.as_user(
        None, ops, "delete", "scheduledtask", "earlier", "--cascade=foreground", "--wait=false"
    )
    assert allowed(deleting), deleting.stderr
    wait_for(
        lambda: "NotFound" in tenants.as_user(None, ops, "get", "scheduledtask", "earlier").stderr,
        timeout=POLICY_TIMEOUT,
        what="the foreground deletion of the task to finish",
    )


def test_allowing_the_operator_namespace_still_needs_the_cronjob_permission(
    tenants: Tenants, install_policy: Callable[..., str]
) -> None:
    policy = install_policy({"tenancy.allowTasksInOperatorNamespace": True})
    ops = tenants.operator_ns

    created = tenants.create(None, ops, "admins")
    assert allowed(created), created.stderr

    tenants.grant(ops, "alice", "create", "scheduledtasks.cronwarden.io")
    refused = past_rbac(lambda: tenants.create("alice", ops, "alices"))
    assert denied(refused, policy, cronjob_message("alice", ops)), refused.stderr


def test_an_on_call_user_may_suspend_and_resume_but_change_nothing_else(
    tenants: Tenants, install_policy: Callable[..., str]
) -> None:
    """carol may get and patch ScheduledTasks (RBAC), not create CronJobs. Suspending or
    resuming starts nothing that bob, who may create CronJobs, has not approved: an
    update that changes spec.suspend alone passes; one that also changes anything else
    is checked as any other."""
    policy = install_policy()
    team = tenants.team
    assert allowed(tenants.create("bob", team, "nightly"))
    tenants.grant(team, "carol", "get,patch", "scheduledtasks.cronwarden.io")

    def patch(body: Any, kind: str = "merge") -> subprocess.CompletedProcess[str]:
        return tenants.as_user(
            "carol", team, "patch", "st", "nightly", f"--type={kind}", "-p", json.dumps(body)
        )

    def stored() -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(
            tenants.as_user(None, team, "get", "st", "nightly", "-o", "json").stdout
        )
        return obj

    suspended = past_rbac(lambda: patch({"spec": {"suspend": True}}))
    assert allowed(suspended), suspended.stderr
    assert stored()["spec"]["suspend"] is True
    resumed = patch({"spec": {"suspend": False}})
    assert allowed(resumed), resumed.stderr
    assert stored()["spec"]["suspend"] is False
    # Back to the default (the field removed) is a suspend-only change too.
    unset = patch([{"op": "remove", "path": "/spec/suspend"}], kind="json")
    assert allowed(unset), unset.stderr
    assert "suspend" not in stored()["spec"]

    refused = cronjob_message("carol", team)
    for body in (
        {"spec": {"schedule": "* * * * *"}},
        {"spec": {"suspend": True, "schedule": "* * * * *"}},
        {"spec": {"suspend": True, "jobTemplate": {"spec": {"backoffLimit": 5}}}},
        {"spec": {"suspend": True}, "metadata": {"labels": {"on-call": "carol"}}},
        {"spec": {"suspend": True}, "metadata": {"annotations": {"on-call": "carol"}}},
    ):
        proc = patch(body)
        assert denied(proc, policy, refused), (body, proc.stderr)
    after = stored()
    assert after["spec"]["schedule"] == "0 3 * * *"
    assert "suspend" not in after["spec"]
    assert "on-call" not in (after["metadata"].get("labels") or {})
    # alice, who may update tasks too, is held to the same rule.
    assert allowed(
        tenants.as_user(
            "alice",
            team,
            "patch",
            "st",
            "nightly",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"suspend": True}}),
        )
    )


# The ClusterRoles aggregated into the built-in user-facing roles


def can_i(kubectl: Kubectl, user: str, namespace: str, verb: str, *more: str) -> bool:
    """The API server's answer (a SubjectAccessReview) for `user` and scheduledtasks."""
    proc = kubectl(
        "auth",
        "can-i",
        verb,
        "scheduledtasks.cronwarden.io",
        "-n",
        namespace,
        f"--as={user}",
        *more,
        check=False,
    )
    return proc.stdout.strip() == "yes"


def test_users_bound_to_view_edit_and_admin_get_scheduledtasks(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    team = tenants.team
    key = uuid.uuid4().hex[:8]
    users = {role: f"{role}-{key}" for role in ("view", "edit", "admin")}
    for role, user in users.items():
        kubectl(
            "-n",
            team,
            "create",
            "rolebinding",
            f"{user}",
            f"--clusterrole={role}",
            f"--user={user}",
        )
    viewer, editor, admin = users["view"], users["edit"], users["admin"]
    # The built-in roles alone know nothing of ScheduledTasks.
    wait_for(
        lambda: (
            kubectl("-n", team, "get", "cronjobs", f"--as={viewer}", check=False).returncode == 0
        ),
        timeout=POLICY_TIMEOUT,
        what="the view RoleBinding to be seen by the authorizer",
    )
    before = tenants.as_user(viewer, team, "get", "scheduledtasks")
    assert RBAC_REFUSAL in before.stderr, before.stderr

    rendered = subprocess.run(
        [
            str(BIN / "helm"),
            "template",
            f"rbac-{key}",
            str(CHART),
            "--show-only=templates/rbac-aggregated.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    kubectl("apply", "-f", "-", input=rendered)
    try:
        # kube-controller-manager's aggregation controller copies the rules into the
        # built-in roles.
        for user, verb in ((viewer, "watch"), (editor, "patch"), (admin, "delete")):
            wait_for(
                lambda: can_i(kubectl, user, team, verb),  # noqa: B023
                timeout=POLICY_TIMEOUT,
                what=f"{user} to be allowed to {verb} scheduledtasks",
            )
        task_json = json.dumps(task("team-task"))
        # edit and admin write tasks (and, holding create cronjobs, pass any policy).
        created = tenants.as_user(editor, team, "create", "-f", "-", input=task_json)
        assert allowed(created), created.stderr
        patched = tenants.as_user(
            admin,
            team,
            "patch",
            "st",
            "team-task",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"suspend": True}}),
        )
        assert allowed(patched), patched.stderr
        # view reads: get, list, and a watch (served until its timeout).
        got = tenants.as_user(viewer, team, "get", "scheduledtask", "team-task", "-o", "json")
        assert allowed(got), got.stderr
        assert json.loads(got.stdout)["spec"]["suspend"] is True
        listed = tenants.as_user(viewer, team, "get", "scheduledtasks", "-o", "name")
        assert listed.stdout.split() == ["scheduledtask.cronwarden.io/team-task"], listed.stderr
        watched = tenants.as_user(
            viewer,
            team,
            "get",
            "--raw",
            f"/apis/cronwarden.io/v1alpha1/namespaces/{team}/scheduledtasks"
            "?watch=true&timeoutSeconds=1",
        )
        assert allowed(watched), watched.stderr
        assert '"type":"ADDED"' in watched.stdout
        # ... and nothing else.
        for args in (
            ("patch", "st", "team-task", "--type=merge", "-p", '{"spec":{"suspend":false}}'),
            ("delete", "st", "team-task"),
            ("create", "-f", "-"),
        ):
            proc = tenants.as_user(viewer, team, *args, input=task_json)
            assert RBAC_REFUSAL in proc.stderr, (args, proc.stderr)
        # Not the status either, which only the operator writes.
        assert not can_i(kubectl, admin, team, "patch", "--subresource=status")
        deleted = tenants.as_user(admin, team, "delete", "st", "team-task")
        assert allowed(deleted), deleted.stderr
    finally:
        kubectl("delete", "--ignore-not-found", "-f", "-", input=rendered, check=False)
    # Without the aggregated roles, view reads no task again.
    wait_for(
        lambda: not can_i(kubectl, viewer, team, "list"),
        timeout=POLICY_TIMEOUT,
        what="the rules to leave the view role",
    )


def test_policy_objects_are_named_after_the_release(
    kubectl: Kubectl, tenants: Tenants, install_policy: Callable[..., str]
) -> None:
    policy = install_policy()
    binding = json.loads(
        kubectl("get", "validatingadmissionpolicybinding", policy, "-o", "json").stdout
    )
    assert binding["spec"]["policyName"] == policy
    assert binding["spec"]["validationActions"] == ["Deny"]
    release = policy.removesuffix("-cronwarden")
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {LABEL: release}
    }

    # The API server type-checked the expressions and found nothing to warn about.
    def checked() -> dict[str, Any] | None:
        obj = json.loads(kubectl("get", "validatingadmissionpolicy", policy, "-o", "json").stdout)
        status: dict[str, Any] = obj.get("status") or {}
        return status if status.get("observedGeneration") == obj["metadata"]["generation"] else None

    status = wait_for(checked, timeout=POLICY_TIMEOUT, what=f"{policy} to be type-checked")
    assert not (status.get("typeChecking") or {}).get("expressionWarnings"), status
