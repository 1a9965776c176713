#!/usr/bin/env python3
"""`make rehearse`: install, upgrade and roll back the chart on the real node.

On the local cluster with a real node (`make cluster-up REAL_NODE=1`) and the
images of `make images`:

1. `helm install` the chart (as "version 1": its CRD without `spec.description`)
   with the built image, on the real node; the operator pod must become Ready
   through its probes, run as 65532 and have a read-only root filesystem.
2. Per-minute tasks: on the real node a command that succeeds, one that exits 1,
   one that runs past its maxRunDurationSeconds; on kwok nodes one that succeeds
   and one that fails.
3. `helm upgrade` to "version 2" (the repository's chart, whose CRD has
   `spec.description`) with a second image tag; a task sets the field.
4. `helm rollback` to revision 1: the chart's CRD guard refuses the CRD's update,
   so the field stays; then the same rollback with the guard waived, which prunes
   the field (lost for good once the operator writes the task's status), and a
   rollback to version 2.
5. Tasks suspended, running Jobs drained; the Jobs that finished (the recorder's
   own watch) against each task's counters: runs lost, counted twice; the time
   with no Ready operator pod.
6. `helm test`; Prometheus scrapes /metrics from the pod IP.

Each step's duration goes to the report (printed, and .state/rehearse-report.json).
Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config
from recorder import Recorder, compare
from steps import (
    CHART,
    RELEASE,
    Failed,
    Step,
    Tools,
    chart_without_field,
    prometheus_scrape,
    tasks,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("STATE_DIR", ROOT / ".state"))
OPERATOR_NS = "cronwarden-rehearsal"
REAL_NS = "rehearse-real"
KWOK_NS = "rehearse-kwok"
FIELD = "description"
CRD_NAME = "scheduledtasks.cronwarden.io"
ALLOW_REMOVAL = "cronwarden.io/allow-field-removal"
NODE_LABEL = "cronwarden.io/real-node"


def values(image: str, tag: str) -> dict[str, Any]:
    return {
        "image": {"repository": image, "tag": tag, "pullPolicy": "Never"},
        "watch": {"allNamespaces": False, "namespaces": [REAL_NS, KWOK_NS]},
        "nodeSelector": {NODE_LABEL: "true"},
        "tolerations": [
            {"key": NODE_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=STATE / "rehearse-report.json")
    args = parser.parse_args()
    env = dict(line.split("=", 1) for line in (STATE / "images.env").read_text().split())
    image, tag1 = env["CRONWARDEN_OPERATOR_IMAGE"].rsplit(":", 1)
    tag2 = f"{tag1}-2"
    t = Tools(STATE)
    step = Step()
    failures: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="rehearse-"))

    # 0. The second tag, the charts, the namespaces, the recorder.
    t.node("tag", f"{image}:{tag1}", f"{image}:{tag2}")
    chart1 = chart_without_field(work / "v1", FIELD)
    for ns in (OPERATOR_NS, REAL_NS, KWOK_NS):
        t.kubectl("create", "namespace", ns, check=False)
    (work / "values1.yaml").write_text(yaml.safe_dump(values(image, tag1)))
    (work / "values2.yaml").write_text(yaml.safe_dump(values(image, tag2)))
    api = config.new_client_from_config(config_file=str(t.kubeconfig))
    selector = f"app.kubernetes.io/instance={RELEASE}"
    recorder = Recorder(api, [REAL_NS, KWOK_NS], OPERATOR_NS, selector)
    recorder.start()

    # 1. Install version 1; the pod Ready through its probes; uid and read-only root.
    with step("install to Ready"):
        t.helm("install", RELEASE, str(chart1), "-n", OPERATOR_NS, "-f", str(work / "values1.yaml"))
        pod = t.wait_operator_ready(OPERATOR_NS, selector, tag1)
    uid = t.kubectl("exec", "-n", OPERATOR_NS, pod, "--", "id", "-u").stdout.strip()
    step.note("operator uid", uid)
    touch = t.kubectl("exec", "-n", OPERATOR_NS, pod, "--", "touch", "/probe", check=False)
    step.note("write to /", touch.stderr.strip().splitlines()[0] if touch.stderr else "allowed")
    if uid != "65532":
        failures.append(f"the operator runs as uid {uid}, not 65532")
    if "Read-only file system" not in touch.stderr:
        failures.append("the operator's root filesystem is writable")
    begin = time.monotonic()  # the operator's downtime counts from its first Ready

    # 2. Tasks on the real node and on kwok nodes; the first runs of each.
    with step("first runs"):
        for task in tasks(REAL_NS, KWOK_NS, env["CRONWARDEN_JOB_IMAGE"], NODE_LABEL):
            t.apply(task)
        wait_for(
            lambda: all(recorder.counts().get(k) for k in _task_keys()),
            timeout=150,
            what="a finished run of every task",
        )

    # 3. Upgrade to version 2 (the repository's chart and CRD) with the second tag.
    with step("upgrade to Ready"):
        t.helm("upgrade", RELEASE, str(CHART), "-n", OPERATOR_NS, "-f", str(work / "values2.yaml"))
        t.wait_operator_ready(OPERATOR_NS, selector, tag2)
    t.kubectl(
        "patch", "st", "real-ok", "-n", REAL_NS, "--type=merge",
        "-p", json.dumps({"spec": {FIELD: "set after the upgrade to version 2"}}),
    )  # fmt: skip
    step.note("field after upgrade", t.task_field(REAL_NS, "real-ok", FIELD))
    before = len(recorder.runs)
    wait_for(lambda: len(recorder.runs) > before, timeout=90, what="a run after the upgrade")

    # 4. Roll back to revision 1: the CRD of version 1 and the first tag.
    with step("rollback to Ready"):
        rollback = t.helm("rollback", RELEASE, "1", "-n", OPERATOR_NS, check=False)
        step.note("helm rollback", (rollback.stdout + rollback.stderr).strip().splitlines()[-1])
        t.wait_operator_ready(OPERATOR_NS, selector, tag1)
    step.note("field after rollback", t.task_field(REAL_NS, "real-ok", FIELD))
    step.note("CRD serves the field after rollback", t.crd_has_field(FIELD))
    if t.task_field(REAL_NS, "real-ok", FIELD) is None or not t.crd_has_field(FIELD):
        failures.append(f"helm rollback dropped spec.{FIELD} despite the CRD guard")
    before = len(recorder.runs)
    wait_for(lambda: len(recorder.runs) > before, timeout=90, what="a run after the rollback")

    # 4b. What the rollback does without the guard: the API server prunes the field, and
    # the operator's next status write stores the task without it.
    t.kubectl("annotate", "crd", CRD_NAME, f"{ALLOW_REMOVAL}=true", "--overwrite")
    with step("rollback without the guard"):
        t.helm("rollback", RELEASE, "1", "-n", OPERATOR_NS)
    step.note("field after unguarded rollback", t.task_field(REAL_NS, "real-ok", FIELD))
    step.note("CRD serves the field after unguarded rollback", t.crd_has_field(FIELD))
    runs = t.task_status(REAL_NS, "real-ok").get("succeeded", 0)
    wait_for(
        lambda: t.task_status(REAL_NS, "real-ok").get("succeeded", 0) > runs,
        timeout=90,
        what="a status write to real-ok",
    )
    with step("rollback to version 2 to Ready"):
        t.helm("rollback", RELEASE, "2", "-n", OPERATOR_NS)
        t.wait_operator_ready(OPERATOR_NS, selector, tag2)
    t.kubectl("annotate", "crd", CRD_NAME, f"{ALLOW_REMOVAL}-")
    step.note("field once the CRD serves it again", t.task_field(REAL_NS, "real-ok", FIELD))

    # 5. Suspend, drain, compare the Jobs with the tasks' counters.
    with step("drain"):
        for ns, name in _task_keys():
            suspend = json.dumps({"spec": {"suspend": True}})
            t.kubectl("patch", "st", name, "-n", ns, "--type=merge", "-p", suspend)
        t.wait_drained([REAL_NS, KWOK_NS], recorder)
    end = time.monotonic()
    statuses = {key: t.task_status(*key) for key in _task_keys()}
    verdict = compare(recorder.counts(), statuses)
    verdict["seconds_without_ready_operator"] = round(recorder.downtime(begin, end), 1)
    long_running = t.event_reasons(REAL_NS, "real-slow")
    step.note("real-slow events", sorted(long_running))
    if "RunTooLong" not in long_running:
        failures.append("real-slow ran past maxRunDurationSeconds without a RunTooLong Event")
    if verdict["lost"] or verdict["counted_twice"]:
        failures.append(f"runs lost {verdict['lost']}, counted twice {verdict['counted_twice']}")

    # 6. helm test; Prometheus scrapes the pod.
    with step("helm test"):
        test = t.helm("test", RELEASE, "-n", OPERATOR_NS, check=False)
        if test.returncode:
            failures.append(f"helm test failed: {test.stdout}{test.stderr}")
    with step("prometheus scrape"):
        pod_ip = t.operator_pod_ip(OPERATOR_NS, selector)
        scraped = prometheus_scrape(STATE, f"{pod_ip}:9090", work)
        step.note("prometheus", scraped)
        if not scraped.get("up"):
            failures.append(f"Prometheus did not scrape {pod_ip}:9090: {scraped}")

    recorder.stop()
    report = {"steps": step.durations, "notes": step.notes, "runs": verdict, "failures": failures}
    args.report.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"rehearse: report in {args.report}")
    return 1 if failures else 0


def _task_keys() -> list[tuple[str, str]]:
    return [(REAL_NS, "real-ok"), (REAL_NS, "real-fail"), (REAL_NS, "real-slow"),
            (KWOK_NS, "kwok-ok"), (KWOK_NS, "kwok-fail")]  # fmt: skip


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Failed, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or ""
        print(f"rehearse: failed: {err} {detail}", file=sys.stderr)
        sys.exit(1)
