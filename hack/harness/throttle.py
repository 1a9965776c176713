"""Scenario `throttling`: API priority and fairness squeezes the operator's user to a
trickle, under churn, then lets go.

The operator runs as its own ServiceAccount with the chart's RBAC
(harness/accounts.py). A FlowSchema matching that ServiceAccount only sends its
requests to a PriorityLevelConfiguration with no nominal concurrency and no
borrowing, rejecting what it cannot run: the API server then runs one of the
operator's requests at a time (a level whose limit is 0 still dispatches a request
when none of its own is executing) and refuses the others at once with
429 Too Many Requests and Retry-After: 1. The harness and the recorder use the
admin kubeconfig (system:masters, exempt), and other users keep their levels: the
squeeze touches nobody else.

It holds for 3 minutes (--small: 60 s), from 20 s before a minute boundary, so a
minute's runs finish under it; meanwhile tasks are created and deleted every 5 s.
Then the FlowSchema goes and the operator must converge. Its behaviour is judged
from the API server: the rejections counted by APF, and from the audit log
(hack/cluster.sh audits this namespace's ServiceAccounts) the operator's 429s and
how soon it sent a refused request again (harness/audit.py); beside them, the
operator's own count of 429s (cronwarden_api_requests_total).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

from harness import audit
from harness.accounts import operator_users
from harness.chaosrun import ChaosRun
from harness.load import chaos_task
from harness.setup import BenchError, kubectl, log

NAME = "cronwarden-chaos-throttling"
CHURN_EVERY = 5.0  # seconds between churn steps during the squeeze


def flow_control(user_ns: str, account: str) -> list[dict[str, Any]]:
    """The PriorityLevelConfiguration and the FlowSchema that squeeze one ServiceAccount."""
    level = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": NAME},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": 0,
                "lendablePercent": 0,
                "borrowingLimitPercent": 0,
                "limitResponse": {"type": "Reject"},
            },
        },
    }
    everything = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
    schema = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": NAME},
        "spec": {
            "priorityLevelConfiguration": {"name": NAME},
            # Before every suggested schema that could match a ServiceAccount (the
            # lowest of which, system-leader-election, has 100).
            "matchingPrecedence": 90,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [
                        {
                            "kind": "ServiceAccount",
                            "serviceAccount": {"name": account, "namespace": user_ns},
                        }
                    ],
                    "resourceRules": [{**everything, "namespaces": ["*"], "clusterScope": True}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }
    return [level, schema]


def start(run: ChaosRun) -> None:
    """The operator as its own ServiceAccount; its figures are taken at the end."""
    run.accounts = operator_users(run.kc, run.ns, ["op"], run.out_dir)
    run.start_operator("op", kc=run.accounts.kubeconfigs["op"])
    since, offset = time.time(), audit.size(audit.AUDIT_LOG)
    run.at_finish.append(lambda: remove(run))
    run.at_finish.append(lambda: figures(run, since, offset))


def throttling(run: ChaosRun, times: int) -> None:
    assert run.accounts is not None
    hold = 60 if run.small else 180
    user = run.accounts.user("op")
    account = user.rsplit(":", 1)[1]
    rejected = 0.0
    for i in range(times):
        run.wait_until(run.next_minute(-20))
        before = apf_rejected(run)
        with run.fault(f"squeeze-{i + 1}"):
            doc = {"apiVersion": "v1", "kind": "List", "items": flow_control(run.ns, account)}
            kubectl(run.kc, "apply", "-f", "-", input=json.dumps(doc))
            end = time.time() + hold
            created = churn(run, i, end)
            remove(run)
            rejected += apf_rejected(run) - before  # its series outlives the FlowSchema
        log(f"squeeze {i + 1}: {created} tasks created and as many deleted meanwhile")
        run.settle()
    run.extra["apf_rejected_requests"] = rejected


def churn(run: ChaosRun, rep: int, end: float) -> int:
    """Until `end`: every CHURN_EVERY s, create a task and delete one that never fires."""
    step = 0
    while time.time() < end:
        name = f"s{rep + 1}-{step:03d}"
        kubectl(run.kc, "create", "-f", "-", input=json.dumps(chaos_task(name, run.ns, "never")))
        old = kubectl(
            run.kc,
            *("-n", run.ns, "get", "scheduledtasks", "-o", "name"),
            "-l",
            "cronwarden.io/chaos-kind=never",
        ).split()
        victims = [o for o in old if not o.endswith(f"/{name}")]
        if victims:
            kubectl(run.kc, "-n", run.ns, "delete", run.rng.choice(victims), "--wait=false")
        step += 1
        run.wait_until(min(end, time.time() + CHURN_EVERY))
    return step


def apf_rejected(run: ChaosRun) -> float:
    """The API server's own count of the requests its APF rejected for NAME (since it
    started: the counter outlives the FlowSchema)."""
    text = kubectl(run.kc, "get", "--raw", "/metrics")
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_flowcontrol_rejected_requests_total{") and (
            f'flow_schema="{NAME}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def remove(run: ChaosRun) -> dict[str, Any]:
    kubectl(
        run.kc,
        *("delete", "--ignore-not-found", f"flowschema/{NAME}"),
        f"prioritylevelconfiguration/{NAME}",
    )
    return {}


def operator_429s(url: str) -> dict[str, float]:
    """The operator's own count of its requests and of the 429s among them."""
    with urllib.request.urlopen(url, timeout=60) as resp:
        text = resp.read().decode()
    out = {"requests": 0.0, "429": 0.0}
    for line in text.splitlines():
        if line.startswith("cronwarden_api_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            value = float(line.rsplit(" ", 1)[1])
            out["requests"] += value
            if labels.get("code") == "429":
                out["429"] += value
    return out


def figures(run: ChaosRun, since: float, offset: int) -> dict[str, Any]:
    assert run.accounts is not None
    op = run.ops["op"]
    own = operator_429s(op.metrics_url) if op.alive() else {}
    requests = audit.read(audit.AUDIT_LOG, set(run.accounts.users), since, offset)
    if not requests:
        raise BenchError(
            f"no request of the operator in the audit log {audit.AUDIT_LOG}: a cluster "
            "created before hack/cluster.sh audited the chaos namespaces? Recreate it."
        )
    seen = audit.throttling(requests)
    log(
        f"throttling: the API server refused {seen['rejected_429']} of the operator's "
        f"{seen['requests']} requests; {seen['retries_sooner_than_retry_after']} of "
        f"{seen['retries_after_429']} follow-ups came sooner than Retry-After"
    )
    return {
        "throttle": {
            **seen,
            "operator_counted_requests": own.get("requests"),
            "operator_counted_429": own.get("429"),
        }
    }
