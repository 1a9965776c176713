"""Generate the ScheduledTask CustomResourceDefinition from the pydantic models.

pydantic's JSON Schema is turned into a structural OpenAPI v3 schema: references
inlined, optional fields unwrapped, titles and defaults dropped (defaults are the
operator's, see models.py), and `jobTemplate` replaced by the batch/v1
JobTemplateSpec schema of the pinned Kubernetes release (schemas/), so that the
API server validates the Job template and `kubectl explain` describes it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

import yaml

from cronwarden.api import models

JOB_TEMPLATE_SCHEMA = "jobtemplatespec-v1.36.json"

# Cross-field rules the API server checks at admission (CEL).
ROOT_RULES = [
    {
        "rule": f"self.metadata.name.size() <= {models.MAX_NAME_LENGTH}",
        "message": f"metadata.name must be at most {models.MAX_NAME_LENGTH} characters: "
        "it names the CronJob, whose Jobs add an 11-character suffix",
    }
]
# Go durations as robfig's @every reads them (time.ParseDuration), e.g. 90s, 1h30m.
_GO_DURATION = r"^([0-9]+(\\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$"
# Fields that belong to the CronJob: in monitor mode they are read from it.
CRONJOB_FIELDS = (
    "schedule",
    "timeZone",
    "suspend",
    "concurrencyPolicy",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "jobTemplate",
)
SPEC_RULES = [
    {
        "rule": "has(self.cronJobRef) || (has(self.schedule) && has(self.jobTemplate))",
        "message": "spec: give schedule and jobTemplate (cronwarden creates the CronJob), or "
        "cronJobRef (cronwarden monitors an existing CronJob)",
    },
    {
        "rule": "!has(self.cronJobRef) || !("
        + " || ".join(f"has(self.{f})" for f in CRONJOB_FIELDS)
        + ")",
        "message": "spec.cronJobRef cannot be combined with "
        + ", ".join(CRONJOB_FIELDS)
        + ": a monitored CronJob keeps its own schedule, time zone and policies",
    },
    {
        "rule": "!has(self.schedule) || !self.schedule.contains('TZ=')",
        "message": "spec.schedule must not contain TZ= or CRON_TZ=: set spec.timeZone instead",
    },
    {
        "rule": "!has(self.schedule) || !self.schedule.trim().startsWith('@every') || ("
        f"self.schedule.trim().substring(6).trim().matches('{_GO_DURATION}') && "
        "duration(self.schedule.trim().substring(6).trim()) >= duration('1m'))",
        "message": "spec.schedule: @every must be at least 1m (a Go duration such as 5m or "
        "1h30m): the CronJob controller starts at most one run per minute",
    },
]
JOB_TEMPLATE_RULES = [
    {
        "rule": "!has(self.spec.template.spec) || !has(self.spec.template.spec.restartPolicy)"
        " || self.spec.template.spec.restartPolicy != 'Always'",
        "message": "spec.jobTemplate.spec.template.spec.restartPolicy must be Never or "
        "OnFailure (Jobs cannot use Always); it defaults to Never",
    },
]

PRINTER_COLUMNS = [
    {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
    {"name": "TZ", "type": "string", "jsonPath": ".spec.timeZone"},
    {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
    {"name": "Active", "type": "string", "jsonPath": ".status.active[*]"},
    {"name": "Last Success", "type": "date", "jsonPath": ".status.lastSuccessfulTime"},
    {"name": "Next Run", "type": "string", "jsonPath": ".status.nextScheduleTime"},
    {
        "name": "Late",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Late")].status',
    },
    {
        "name": "Blocked",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Blocked")].status',
    },
    {
        "name": "Ready",
        "type": "string",
        "priority": 1,
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {
        "name": "Failing",
        "type": "string",
        "priority": 1,
        "jsonPath": '.status.conditions[?(@.type=="Failing")].status',
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


@cache
def job_template_schema() -> dict[str, Any]:
    text = resources.files("cronwarden.api.schemas").joinpath(JOB_TEMPLATE_SCHEMA).read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn one pydantic JSON Schema node into a structural OpenAPI v3 node."""
    description = schema.get("description")
    if "$ref" in schema:
        resolved = structural(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {**resolved, "description": description} if description else resolved
    if "anyOf" in schema:
        # Optional[X] is anyOf [X, null]: a field that may be omitted.
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express union {schema['anyOf']} structurally")
        inner = structural(branches[0], defs)
        return {**inner, "description": description} if description else inner

    out: dict[str, Any] = {}
    if description:
        out["description"] = description
    kind = schema.get("type")
    if kind == "object" and "properties" not in schema:
        out.update({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
        return out
    if "const" in schema:
        out.update({"type": "string", "enum": [schema["const"]]})
        return out
    out["type"] = kind
    for key in (
        "enum",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "maxItems",
    ):
        if key in schema:
            out[key] = schema[key]
    if kind == "array":
        out["items"] = structural(schema["items"], defs)
    if kind == "object":
        out["properties"] = {
            name: structural(prop, defs) for name, prop in schema["properties"].items()
        }
        if schema.get("required"):
            out["required"] = list(schema["required"])
    return out


# Job fields that the Job API requires to be non-negative; the published schema
# does not say so, so without these they would pass admission and fail later.
NON_NEGATIVE_JOB_FIELDS = (
    "backoffLimit",
    "backoffLimitPerIndex",
    "completions",
    "maxFailedIndexes",
    "parallelism",
    "ttlSecondsAfterFinished",
)


def tighten(template: dict[str, Any]) -> dict[str, Any]:
    """Add what a Job needs but the upstream schema leaves to Job validation, so that
    `kubectl apply` of the ScheduledTask rejects it at once."""
    template["required"] = ["spec"]
    job = template["properties"]["spec"]
    for name in NON_NEGATIVE_JOB_FIELDS:
        job["properties"][name]["minimum"] = 0
    job["properties"]["activeDeadlineSeconds"]["minimum"] = 1
    pod = job["properties"]["template"]
    pod["required"] = ["spec"]
    containers = pod["properties"]["spec"]["properties"]["containers"]
    containers["minItems"] = 1
    return template


def spec_schema() -> dict[str, Any]:
    raw = models.ScheduledTaskSpec.model_json_schema(by_alias=True)
    spec = structural(raw, raw.get("$defs", {}))
    spec["description"] = models.ScheduledTaskSpec.__doc__
    template = tighten(copy.deepcopy(job_template_schema()))
    template["description"] = spec["properties"]["jobTemplate"]["description"]
    template["x-kubernetes-validations"] = JOB_TEMPLATE_RULES
    spec["properties"]["jobTemplate"] = template
    spec["x-kubernetes-validations"] = SPEC_RULES
    return spec


def status_schema() -> dict[str, Any]:
    raw = models.ScheduledTaskStatus.model_json_schema(by_alias=True)
    status = structural(raw, raw.get("$defs", {}))
    status["description"] = models.ScheduledTaskStatus.__doc__
    conditions = status["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return status


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    schema = {
        "type": "object",
        "description": "A CronJob that cronwarden keeps in sync and watches: it reports "
        "missed, late and failing runs in status, Events and metrics.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        "x-kubernetes-validations": ROOT_RULES,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{models.PLURAL}.{models.GROUP}",
            "labels": {"app.kubernetes.io/name": "cronwarden"},
        },
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": models.KIND,
                "listKind": f"{models.KIND}List",
                "plural": models.PLURAL,
                "singular": models.SINGULAR,
                "shortNames": list(models.SHORT_NAMES),
                "categories": ["cronwarden"],
            },
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def render() -> str:
    header = (
        "# Generated by `cronwarden crd` from operator/cronwarden/api/models.py; do not edit.\n"
        "# Regenerate with `make crd`.\n"
    )
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)
