"""The checked-in robfig/cron answers (testdata/cron_expected.json) are still robfig's.

Runs hack/crondiff, the Go program that calls robfig/cron v3.0.1 the way Kubernetes does,
on testdata/cron_cases.json and compares its output with the golden file, so that the
differential test in test_schedule.py never compares against a stale or hand-edited file.
Needs `go` on PATH (our CI machines have it); a missing toolchain is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CRONDIFF = ROOT / "hack" / "crondiff"
TESTDATA = Path(__file__).parent / "testdata"
REGENERATE = (
    "cd hack/crondiff && GOTOOLCHAIN=local GOFLAGS=-mod=mod go run . "
    "< ../../tests/unit/core/testdata/cron_cases.json "
    "> ../../tests/unit/core/testdata/cron_expected.json"
)


def test_golden_file_matches_robfig() -> None:
    go = shutil.which("go")
    assert go is not None, "the Go toolchain is needed to check cron_expected.json (go on PATH)"
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    proc = subprocess.run(
        [go, "run", "."],
        cwd=CRONDIFF,
        env=env,
        input=(TESTDATA / "cron_cases.json").read_bytes(),
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    got = json.loads(proc.stdout)
    want = json.loads((TESTDATA / "cron_expected.json").read_text(encoding="utf-8"))
    changed = [g["id"] for g, w in zip(got, want, strict=False) if g != w]
    assert len(got) == len(want), f"case count differs; regenerate with: {REGENERATE}"
    assert not changed, f"{len(changed)} cases differ, e.g. {changed[:5]}; regenerate: {REGENERATE}"
