"""The chaos recorder is ground truth only if it shares no code with what it judges:
it imports the standard library, the kubernetes client and croniter, nothing from
cronwarden or the rest of the harness, and cronwarden cannot be imported in it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RECORDER = ROOT / "hack" / "harness" / "recorder.py"
RECORDED = ROOT / "hack" / "harness" / "recorded.py"  # its sibling: the object summaries
ALLOWED = {"kubernetes", "croniter", "__future__", "recorded"}


@pytest.mark.parametrize("module", [RECORDER, RECORDED], ids=lambda p: p.name)
def test_the_recorder_imports_only_the_stdlib_the_kubernetes_client_and_croniter(
    module: Path,
) -> None:
    tree = ast.parse(module.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in the recorder"
            imported.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            raise AssertionError("dynamic import in the recorder")
    foreign = {m for m in imported if m not in ALLOWED and m not in sys.stdlib_module_names}
    assert foreign == set(), f"{module.name} imports {foreign}"


def test_cronwarden_is_not_on_the_recorders_import_path() -> None:
    """Run as the harness runs it (the dev venv, whose editable install puts operator/
    on sys.path): once the recorder's module has loaded, cronwarden cannot be imported
    and no cronwarden module is loaded."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{str(RECORDER)!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_path({str(RECORDER)!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('cronwarden', 'harness')]\n"
        "try:\n"
        "    import cronwarden\n"
        "except ImportError:\n"
        "    print('isolated')\n"
        "else:\n"
        "    print('cronwarden importable from', cronwarden.__file__)\n"
    )
    # The venv can import cronwarden: the check is meaningful.
    assert subprocess.run([sys.executable, "-c", "import cronwarden"]).returncode == 0
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "isolated", out.stdout + out.stderr
