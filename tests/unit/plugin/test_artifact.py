"""The single-file plugin (hack/plugin_zipapp.py) carries everything the plugin imports
and runs on a bare Python: no site-packages, so no pydantic, kopf, prometheus-client or
kubernetes client."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from cronwarden.api import models
from cronwarden.plugin import names

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("plugin_zipapp", ROOT / "hack/plugin_zipapp.py")
assert spec is not None
assert spec.loader is not None
plugin_zipapp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin_zipapp)


def test_names_are_the_models_names() -> None:
    for name in ("GROUP", "VERSION", "KIND", "PLURAL", "API_VERSION", "DEFAULT_TIME_ZONE"):
        assert getattr(names, name) == getattr(models, name), name


def test_the_models_stand_in_serves_what_the_carried_modules_import() -> None:
    wanted = set()
    for path, data in plugin_zipapp.entries().items():
        if not path.endswith(".py") or path == "cronwarden/api/models.py":
            continue
        for node in ast.walk(ast.parse(data)):
            if isinstance(node, ast.ImportFrom) and node.module == "cronwarden.api.models":
                wanted |= {alias.name for alias in node.names}
    served = set(vars(names)) | {"LastRun"}
    assert wanted
    assert wanted <= served, wanted - served


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "kubectl-cronwarden"
    path.write_bytes(plugin_zipapp.zipapp())
    return path


def bare(*args: str) -> subprocess.CompletedProcess[str]:
    """This Python without site-packages (-S) or the environment (-I)."""
    return subprocess.run([sys.executable, "-S", "-I", *args], capture_output=True, text=True)


def test_runs_on_a_bare_python_and_imports_every_module(program: Path) -> None:
    assert bare("-c", "import pydantic").returncode != 0  # the premise
    check = (
        f"import sys; sys.path.insert(0, {str(program)!r}); import pkgutil, cronwarden.plugin;"
        "mods = [m.name for m in pkgutil.iter_modules(cronwarden.plugin.__path__)];"
        "[__import__('cronwarden.plugin.' + m) for m in mods];"
        "bad = [m for m in ('pydantic', 'kopf', 'prometheus_client', 'kubernetes', 'urllib3')"
        " if m in sys.modules]; print(len(mods), bad)"
    )
    done = bare("-c", check)
    assert done.returncode == 0, done.stderr
    count, bad = done.stdout.split(" ", 1)
    assert int(count) == len(list((ROOT / "operator/cronwarden/plugin").glob("[!_]*.py")))
    assert bad.strip() == "[]"


def test_the_file_is_a_working_plugin(program: Path) -> None:
    shown = bare(
        str(program), "next", "@every 90s", "--count", "1", "--from", "2027-01-01T00:00:15Z"
    )
    assert shown.returncode == 0, shown.stderr
    assert "2027-01-01T00:01:45Z   2027-01-01 00:01:45 UTC" in shown.stdout
    assert bare(str(program), "next", "@every 30s").returncode == 2
    assert program.read_bytes().startswith(b"#!/usr/bin/env python3\n")


def test_the_same_sources_give_the_same_bytes() -> None:
    assert plugin_zipapp.zipapp() == plugin_zipapp.zipapp()
