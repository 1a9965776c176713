"""hack/audit.py against a fake OSV service on 127.0.0.1: it fails on a known
vulnerability, passes a clean lock, and skips (exit 0, "pip-audit skipped") when no
service answers. No network beyond the loopback address.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HASH = "--hash=sha256:" + "0" * 64  # pip-audit --disable-pip needs a hash, never checks it
# One advisory as OSV serves it (PyYAML's full_load, fixed in 5.4).
ADVISORY = {
    "id": "PYSEC-2021-142",
    "aliases": ["CVE-2020-14343", "GHSA-8q59-q68h-6hv4"],
    "summary": "Arbitrary code execution in full_load",
    "affected": [
        {
            "package": {"name": "pyyaml", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.4"}]}],
        }
    ],
}


class FakeOsv(BaseHTTPRequestHandler):
    """POST /v1/query: the advisory for pyyaml below 5.4, nothing for anything else."""

    def do_POST(self) -> None:
        query: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name, version = query["package"]["name"], query["version"]
        vulnerable = name == "pyyaml" and tuple(map(int, version.split("."))) < (5, 4)
        body = json.dumps({"vulns": [ADVISORY]} if vulnerable else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def osv_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOsv)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/query"
    server.shutdown()
    server.server_close()


def audit(
    tmp_path: Path, pins: list[str], osv_url: str, **env: str
) -> subprocess.CompletedProcess[str]:
    lock = tmp_path / "requirements.lock"
    lock.write_text("".join(f"{pin} \\\n    {HASH}\n" for pin in pins))
    return subprocess.run(
        [sys.executable, str(ROOT / "hack" / "audit.py"), "--lock", str(lock),
         "--service", "osv", "--osv-url", osv_url, "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", **env},
    )  # fmt: skip


def test_fails_on_a_known_vulnerability(tmp_path: Path, osv_url: str) -> None:
    proc = audit(tmp_path, ["pyyaml==5.3.1", "idna==3.20"], osv_url)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "pyyaml 5.3.1: PYSEC-2021-142 (CVE-2020-14343, GHSA-8q59-q68h-6hv4)" in proc.stdout
    assert "fixed in 5.4" in proc.stdout
    assert "pip-audit failed: 1 known vulnerabilities in 2 pins" in proc.stderr


def test_passes_a_clean_lock(tmp_path: Path, osv_url: str) -> None:
    proc = audit(tmp_path, ["pyyaml==6.0.3", "idna==3.20"], osv_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pip-audit: no known vulnerabilities in 2 pins of requirements.lock" in proc.stdout


def unreachable_url() -> str:
    # A port that was free a moment ago: nothing listens there.
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOsv)
    port = server.server_port
    server.server_close()
    return f"http://127.0.0.1:{port}/v1/query"


def test_skips_with_the_reason_when_no_service_answers(tmp_path: Path) -> None:
    proc = audit(tmp_path, ["pyyaml==5.3.1"], unreachable_url())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("pip-audit skipped: no vulnerability service answered")
    assert "Connection refused" in proc.stdout


def test_a_required_audit_fails_when_no_service_answers(tmp_path: Path) -> None:
    proc = audit(tmp_path, ["pyyaml==5.3.1"], unreachable_url(), CRONWARDEN_AUDIT_REQUIRED="1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "pip-audit failed: no vulnerability service answered" in proc.stderr
