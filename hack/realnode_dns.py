#!/usr/bin/env python3
"""Cluster DNS for the real node (hack/real-node.sh), the part of CoreDNS it needs.

Writes `<ClusterIP> <service>.<namespace>.svc.cluster.local` for every Service
with a ClusterIP into a hosts file that dnsmasq serves (--addn-hosts), and sends
dnsmasq SIGHUP to re-read it when the set changes. It lists Services with kubectl
every 2 s (a real node has only a few); names outside cluster.local are not
resolved at all (dnsmasq runs with --no-resolv).

Standard library only: it runs with the system's python3, without the venv.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PERIOD_SECONDS = 2.0


def hosts_lines(services: dict[str, object]) -> list[str]:
    """The hosts-file lines for a `kubectl get services -o json` answer, sorted."""
    lines = []
    for item in services.get("items", []):  # type: ignore[union-attr]
        meta, spec = item["metadata"], item.get("spec", {})
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        lines.append(f"{ip} {meta['name']}.{meta['namespace']}.svc.cluster.local")
    return sorted(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--hosts", required=True, type=Path)
    parser.add_argument("--dnsmasq-pid-file", required=True, type=Path)
    parser.add_argument("--kubectl", default="kubectl")
    args = parser.parse_args()
    running = True

    def stop(signum: int, frame: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    written: list[str] | None = None
    while running:
        done = subprocess.run(
            [args.kubectl, "--kubeconfig", args.kubeconfig, "get", "services", "-A", "-o", "json"],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            lines = hosts_lines(json.loads(done.stdout))
            if lines != written:
                tmp = args.hosts.with_suffix(".tmp")
                tmp.write_text("".join(f"{line}\n" for line in lines))
                os.replace(tmp, args.hosts)
                try:
                    os.kill(int(args.dnsmasq_pid_file.read_text().strip()), signal.SIGHUP)
                    written = lines
                    print(f"realnode-dns: {len(lines)} service name(s)", flush=True)
                except (OSError, ValueError) as err:
                    print(f"realnode-dns: dnsmasq not signalled yet: {err}", flush=True)
        else:
            print(f"realnode-dns: kubectl: {done.stderr.strip()}", file=sys.stderr, flush=True)
        time.sleep(PERIOD_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
