#!/usr/bin/env python3
"""Write the batch/v1 JobTemplateSpec schema of the running API server as one
self-contained structural schema, for embedding in the ScheduledTask CRD.

Usage: hack/job-template-schema.py KUBECTL KUBECONFIG OUTPUT.json

References are inlined; what a CRD schema cannot hold is translated: IntOrString
and Quantity become x-kubernetes-int-or-string, and defaults, list-map and patch
markers are dropped (the CronJob's own API applies them when it is created).
Descriptions are kept down to the fields of containers (DESCRIPTION_DEPTH), so
that `kubectl explain` describes the Job and Pod fields while the CRD stays under
the 256 KiB that client-side `kubectl apply` can store in its annotation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

ROOT = "io.k8s.api.batch.v1.JobTemplateSpec"
INT_OR_STRING = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
}
KEEP = {
    "type",
    "description",
    "properties",
    "items",
    "required",
    "enum",
    "format",
    "additionalProperties",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "nullable",
}
DROP_FORMATS = {"int-or-string", "byte"}
# jobTemplate=0, .spec=1, .spec.X=2, .spec.template.X=3, pod spec fields=4, container fields=5
DESCRIPTION_DEPTH = 5


def inline(
    node: dict[str, Any], schemas: dict[str, Any], seen: tuple[str, ...], depth: int = 0
) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None and len(node.get("allOf", [])) == 1:
        ref = node["allOf"][0].get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            raise SystemExit(f"recursive schema at {name}: cannot inline")
        out: dict[str, Any]
        if name in INT_OR_STRING:
            out = {"x-kubernetes-int-or-string": True}
        elif name == "io.k8s.apimachinery.pkg.apis.meta.v1.Time":
            out = {"type": "string", "format": "date-time"}
        else:
            out = inline(schemas[name], schemas, (*seen, name), depth)
        if node.get("description") and depth <= DESCRIPTION_DEPTH:
            out = {**out, "description": node["description"]}
        return out
    out = {k: v for k, v in node.items() if k in KEEP}
    if depth > DESCRIPTION_DEPTH:
        out.pop("description", None)
    if out.get("format") in DROP_FORMATS:
        del out["format"]
    if "properties" in out:
        out["properties"] = {
            k: inline(v, schemas, seen, depth + 1) for k, v in out["properties"].items()
        }
    if "items" in out:
        out["items"] = inline(out["items"], schemas, seen, depth)
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = inline(out["additionalProperties"], schemas, seen, depth)
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def main() -> None:
    kubectl, kubeconfig, output = sys.argv[1:4]
    raw = subprocess.run(
        [kubectl, "--kubeconfig", kubeconfig, "get", "--raw", "/openapi/v3/apis/batch/v1"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    schemas = json.loads(raw)["components"]["schemas"]
    schema = inline({"$ref": f"#/components/schemas/{ROOT}"}, schemas, ())
    schema["type"] = "object"
    with open(output, "w") as f:
        json.dump(schema, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {output}: {len(json.dumps(schema))} bytes")


if __name__ == "__main__":
    main()
