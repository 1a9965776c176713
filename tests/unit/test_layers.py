"""The package layers stay visible: core/ is pure, api/ is the API alone.

core/ decides from its inputs and never talks to the cluster or to Prometheus, so
it must not import kopf, the kubernetes client or prometheus_client (directly or
through runtime/); api/ depends on nothing of ours but itself. The kubectl plugin
(plugin/) runs without the operator's runtime and its dependencies: no kopf,
prometheus_client, pydantic or kubernetes client, and only its client module talks
to the API. The request path both share (wire.py) is the standard library alone.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "cronwarden"
FORBIDDEN = {
    "core": ("kopf", "kubernetes", "prometheus_client", "cronwarden.runtime", "urllib3"),
    "api": ("kopf", "kubernetes", "prometheus_client", "cronwarden.runtime", "cronwarden.core"),
    # The plugin runs as a single file on the standard library and PyYAML: no kopf,
    # no pydantic (so not cronwarden.api), no kubernetes client (it needs pydantic).
    "plugin": (
        "kopf",
        "prometheus_client",
        "pydantic",
        "kubernetes",
        "urllib3",
        "cronwarden.runtime",
        "cronwarden.api",
    ),
}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_forbidden(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no modules found under {PACKAGE / layer}"
    offending = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in files
        for name in sorted(imports(path))
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer])
    ]
    assert not offending, "\n".join(offending)


def test_only_the_plugins_client_talks_to_the_api() -> None:
    talkers = {
        path.name
        for path in (PACKAGE / "plugin").rglob("*.py")
        if any(n.split(".")[0] in ("http", "urllib") for n in imports(path))
    }
    assert talkers == {"client.py"}


def test_the_shared_request_path_needs_only_the_standard_library() -> None:
    outside = {
        name
        for name in imports(PACKAGE / "wire.py")
        if name.split(".")[0] not in sys.stdlib_module_names and name != "__future__"
    }
    assert not outside


def test_forbidden_import_is_detected(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import kopf\nfrom kubernetes import client\nfrom . import status\n")
    assert imports(sample) == {"kopf", "kubernetes"}
