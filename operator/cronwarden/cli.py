"""The `cronwarden` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cronwarden import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cronwarden",
        description="Kubernetes operator that reconciles ScheduledTasks into CronJobs "
        "and reports missed and failing runs.",
    )
    parser.add_argument("--version", action="version", version=f"cronwarden {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return 0
