#!/usr/bin/env python3
"""Audit the locked runtime dependencies for known vulnerabilities with pip-audit.

Usage: hack/audit.py [--lock requirements.lock] [--service pypi|osv ...]
                     [--cache-dir DIR] [--osv-url URL] [--timeout SECONDS]

pip-audit reads the lock as it is (`--disable-pip`: no virtualenv, no resolution,
every line pinned and hashed) and asks a vulnerability service about each pin.
pip-audit has no offline database, only an HTTP cache (`--cache-dir`, here under
~/.cache/cronwarden/pip-audit) that answers while PyPI's responses are fresh, so
the services are tried in order and each is probed with one query first:

- a service answers: the audit runs, and the script fails (exit 1) on any known
  vulnerability, or when the service could not audit some of the pins;
- none answers: it prints "pip-audit skipped: <reason>" and exits 0, unless
  CRONWARDEN_AUDIT_REQUIRED=1 (for a pipeline that must audit), which fails.

PyPI's per-version JSON API (pypi.org/pypi/<name>/<version>/json) is what the
default `pypi` service reads; a network that lets only the package index through
answers it with 404, which pip-audit alone would report as "No known
vulnerabilities found" with every package skipped: that is a skip, not a pass.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OSV_URL = "https://api.osv.dev/v1/query"
PYPI_URL = "https://pypi.org/pypi/{name}/{version}/json"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
PROBE_TIMEOUT = 10.0


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cronwarden" / "pip-audit"


def probe(service: str, name: str, version: str, osv_url: str) -> str | None:
    """None when the service answers a query for one locked pin, else why not."""
    if service == "pypi":
        url = PYPI_URL.format(name=name, version=version)
        request = urllib.request.Request(url)
    else:
        url = osv_url
        query = {"package": {"name": name, "ecosystem": "PyPI"}, "version": version}
        request = urllib.request.Request(
            url, data=json.dumps(query).encode(), headers={"Content-Type": "application/json"}
        )
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT) as response:
            body = json.load(response)
    except urllib.error.HTTPError as err:
        return f"{url} answered HTTP {err.code}"
    except urllib.error.URLError as err:
        return f"{url}: {err.reason}"
    except (OSError, ValueError) as err:
        return f"{url}: {err}"
    if not isinstance(body, dict):
        return f"{url} answered {type(body).__name__}, not an object"
    if service == "pypi" and "vulnerabilities" not in body:
        return f"{url} answered without a vulnerabilities field"
    return None


def run_pip_audit(args: argparse.Namespace, service: str) -> dict[str, Any] | str:
    """pip-audit's JSON report, or why there is none."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            sys.executable, "-m", "pip_audit",
            "--requirement", str(args.lock), "--require-hashes", "--disable-pip",
            "--vulnerability-service", service,
            "--cache-dir", str(args.cache_dir), "--timeout", str(args.timeout),
            "--progress-spinner", "off", "--format", "json", "--output", str(report),
        ]  # fmt: skip
        if service == "osv":
            cmd += ["--osv-url", args.osv_url]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if not report.exists():
            lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
            return f"pip-audit -s {service} exited {proc.returncode}: {lines[-1]}"
        result: dict[str, Any] = json.loads(report.read_text())
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--service", action="append", choices=("pypi", "osv"))
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--osv-url", default=OSV_URL)
    parser.add_argument("--timeout", type=int, default=15, help="pip-audit's socket timeout")
    args = parser.parse_args()
    services = args.service or ["pypi", "osv"]
    required = os.environ.get("CRONWARDEN_AUDIT_REQUIRED") == "1"

    pins = PIN.findall(args.lock.read_text())
    if not pins:
        print(f"pip-audit: no pins in {args.lock}", file=sys.stderr)
        return 2
    name, version = pins[0]
    start = time.monotonic()
    unreachable: list[str] = []
    for service in services:
        reason = probe(service, name, version, args.osv_url)
        result = run_pip_audit(args, service) if reason is None else reason
        if isinstance(result, str):
            unreachable.append(f"{service}: {result}")
            continue
        deps = result["dependencies"]
        skipped = [d for d in deps if "skip_reason" in d]
        if len(skipped) == len(deps):
            unreachable.append(f"{service}: every pin skipped ({skipped[0]['skip_reason']})")
            continue
        return report(args.lock, service, deps, skipped, time.monotonic() - start)

    where = "; ".join(unreachable)
    if required:
        print(f"pip-audit failed: no vulnerability service answered ({where})", file=sys.stderr)
        return 1
    print(f"pip-audit skipped: no vulnerability service answered from here ({where})")
    return 0


def report(
    lock: Path, service: str, deps: list[dict[str, Any]], skipped: list[dict[str, Any]], took: float
) -> int:
    found = [(d, v) for d in deps for v in d.get("vulns", [])]
    for dep, vuln in found:
        aliases = ", ".join(sorted(vuln.get("aliases", [])))
        fixed = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
        print(
            f"  {dep['name']} {dep['version']}: {vuln['id']}"
            + (f" ({aliases})" if aliases else "")
            + f"; fixed in {fixed}"
        )
    for dep in skipped:
        print(f"  {dep['name']}: not audited: {dep['skip_reason']}")
    summary = f"{len(deps)} pins of {lock.name} against {service} in {took:.1f}s"
    if found:
        print(
            f"pip-audit failed: {len(found)} known vulnerabilities in {summary}; "
            "raise the pin in pyproject.toml (or `make lock UPGRADE=1` for a transitive one)",
            file=sys.stderr,
        )
        return 1
    if skipped:
        print(f"pip-audit failed: {len(skipped)} pins not audited in {summary}", file=sys.stderr)
        return 1
    print(f"pip-audit: no known vulnerabilities in {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
