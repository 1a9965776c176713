from __future__ import annotations

from pathlib import Path

import yaml

from cronwarden.api import crd

CHECKED_IN = Path(__file__).resolve().parents[3] / "crds" / "scheduledtasks.cronwarden.io.yaml"


def test_checked_in_crd_is_what_the_models_generate() -> None:
    assert CHECKED_IN.read_text() == crd.render(), "crds/ is stale: run `make crd`"


def test_crd_is_structural_with_status_subresource_and_short_name() -> None:
    obj = yaml.safe_load(crd.render())
    assert obj["spec"]["names"]["shortNames"] == ["st"]
    version = obj["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c]
    assert columns == [
        "Schedule",
        "TZ",
        "Suspend",
        "Active",
        "Last Success",
        "Next Run",
        "Late",
        "Blocked",
        "Age",
    ]

    def walk(node: dict[str, object], path: str) -> None:
        # Structural: every node has a type, or is int-or-string / preserve-unknown.
        assert (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), path
        for key in ("anyOf", "oneOf", "allOf", "$ref", "default"):
            assert key not in node, f"{path} has {key}"
        for name, child in (node.get("properties") or {}).items():  # type: ignore[attr-defined]
            walk(child, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")  # type: ignore[arg-type]

    walk(version["schema"]["openAPIV3Schema"], "")


def test_job_template_embeds_real_job_fields() -> None:
    spec = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    job_spec = spec["properties"]["jobTemplate"]["properties"]["spec"]
    assert {"backoffLimit", "activeDeadlineSeconds", "template"} <= set(job_spec["properties"])
    pod_spec = job_spec["properties"]["template"]["properties"]["spec"]
    assert "containers" in pod_spec["required"]
    # schedule and jobTemplate, or cronJobRef: required through CEL, not "required".
    assert "required" not in spec
    rules = " ".join(r["rule"] for r in spec["x-kubernetes-validations"])
    assert "has(self.cronJobRef) || (has(self.schedule) && has(self.jobTemplate))" in rules
