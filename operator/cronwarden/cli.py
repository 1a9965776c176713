"""The `cronwarden` command line: `run` the operator, print the `crd`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cronwarden import __version__, settings
from cronwarden.core.sharding import MAX_SHARDS

ENV_PREFIX = "CRONWARDEN_"


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name, default)


def env_int(name: str, default: int) -> int:
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(
            f"cronwarden: {ENV_PREFIX}{name}={value!r} is not a whole number"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cronwarden",
        description="Kubernetes operator that reconciles ScheduledTasks into CronJobs "
        "and reports missed and failing runs.",
    )
    parser.add_argument("--version", action="version", version=f"cronwarden {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the operator",
        description="Run the operator: watch ScheduledTasks and the CronJobs and Jobs it "
        "manages, keep each CronJob in sync and write status and Events. Every option "
        f"can also be set with an environment variable ({ENV_PREFIX}<NAME>).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        default=[n for n in (env("NAMESPACES") or "").split(",") if n],
        metavar="NS",
        help="watch this namespace; repeat for more; globs such as team-* work, and are "
        "followed with cluster-wide watches filtered by the operator, so they need the "
        f"permissions of --all-namespaces (env {ENV_PREFIX}NAMESPACES, comma-separated)",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        default=env("ALL_NAMESPACES", "") in ("1", "true"),
        help=f"watch every namespace (env {ENV_PREFIX}ALL_NAMESPACES=true)",
    )
    run.add_argument(
        "--kubeconfig",
        default=env("KUBECONFIG") or os.environ.get("KUBECONFIG"),
        help="kubeconfig to use; in a pod the service account is used when unset "
        f"(env {ENV_PREFIX}KUBECONFIG or KUBECONFIG)",
    )
    run.add_argument(
        "--liveness-port",
        type=int,
        default=env_int("LIVENESS_PORT", settings.DEFAULT_LIVENESS_PORT),
        help="port of the liveness endpoint /healthz; 0 disables it "
        f"(env {ENV_PREFIX}LIVENESS_PORT)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=env_int("METRICS_PORT", settings.DEFAULT_METRICS_PORT),
        help="port of the Prometheus endpoint /metrics; 0 disables it "
        f"(env {ENV_PREFIX}METRICS_PORT)",
    )
    run.add_argument(
        "--bind-address",
        default=env("BIND_ADDRESS", settings.DEFAULT_BIND_ADDRESS),
        help=f"address the liveness and metrics endpoints listen on (env {ENV_PREFIX}BIND_ADDRESS)",
    )
    run.add_argument(
        "--log-format",
        choices=["plain", "json"],
        default=env("LOG_FORMAT", "plain"),
        help=f"log lines as plain text or one JSON object each (env {ENV_PREFIX}LOG_FORMAT)",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=env("VERBOSE", "") in ("1", "true"),
        help=f"log debug details (env {ENV_PREFIX}VERBOSE=true)",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=env_int("WORKERS", settings.DEFAULT_WORKERS),
        help=f"tasks reconciled in parallel (env {ENV_PREFIX}WORKERS)",
    )
    run.add_argument(
        "--resync-seconds",
        type=int,
        default=env_int("RESYNC_SECONDS", settings.DEFAULT_RESYNC_SECONDS),
        help="safety net: how often every task is reconciled from the watch cache even without "
        "a watch event or a time-driven wake-up (slots, deadlines); it sends requests only for "
        "what is out of sync "
        f"(env {ENV_PREFIX}RESYNC_SECONDS)",
    )
    run.add_argument(
        "--audit-seconds",
        type=int,
        default=env_int("AUDIT_SECONDS", settings.DEFAULT_AUDIT_SECONDS),
        help="how often the watch cache is checked against a full list of tasks, managed "
        "CronJobs and Jobs (served from the API server's watch cache); what differs is "
        "corrected and counted in cronwarden_cache_corrections_total. A watch that lists "
        "again has its own listing checked 5 s later, at most once a minute "
        f"(env {ENV_PREFIX}AUDIT_SECONDS)",
    )
    run.add_argument(
        "--leader-election",
        action="store_true",
        default=env("LEADER_ELECTION", "") in ("1", "true"),
        help="run as one of several replicas: only the one holding a coordination.k8s.io Lease "
        "reconciles, writes and exports task metrics; the others stand by with warm caches "
        f"(env {ENV_PREFIX}LEADER_ELECTION=true)",
    )
    run.add_argument(
        "--leader-election-namespace",
        default=env("LEADER_ELECTION_NAMESPACE") or settings.default_lease_namespace(),
        metavar="NS",
        help="namespace of the Lease; default $POD_NAMESPACE, else 'default' "
        f"(env {ENV_PREFIX}LEADER_ELECTION_NAMESPACE)",
    )
    run.add_argument(
        "--leader-election-id",
        default=env("LEADER_ELECTION_ID", settings.DEFAULT_LEADER_ELECTION_ID),
        metavar="NAME",
        help=f"name of the Lease (env {ENV_PREFIX}LEADER_ELECTION_ID)",
    )
    run.add_argument(
        "--shards",
        type=int,
        default=env_int("SHARDS", settings.DEFAULT_SHARDS),
        metavar="N",
        help="split the tasks into N shards by the hash of their namespace; each replica "
        "takes one free shard (a Lease named after --leader-election-id, '-shard-<i>'), "
        "reconciles, writes and exports only that shard's tasks and watches only its "
        "objects; a replica with no free shard stands by and takes the shard of one whose "
        "Lease expires. Run N+1 replicas for a standby. 1: no sharding "
        f"(env {ENV_PREFIX}SHARDS; docs/sharding.md)",
    )
    run.add_argument(
        "--shard-filter",
        choices=settings.SHARD_FILTERS,
        default=env("SHARD_FILTER", "auto"),
        help="auto: the API server selects a shard's objects where its ShardedListAndWatch "
        "feature gate is on, else the operator filters them; client: always the operator "
        f"(env {ENV_PREFIX}SHARD_FILTER)",
    )

    run.add_argument(
        "--exclude-namespace",
        action="append",
        dest="excluded_namespaces",
        default=None,
        metavar="NS",
        help="refuse to act on ScheduledTasks in this namespace (Ready=False, NamespaceExcluded); "
        "repeat for more; default: kube-system and $POD_NAMESPACE, the operator's own "
        f"(env {ENV_PREFIX}EXCLUDED_NAMESPACES, comma-separated; an empty value excludes none)",
    )
    run.add_argument(
        "--max-tasks-per-namespace",
        type=int,
        default=env_int("MAX_TASKS_PER_NAMESPACE", settings.DEFAULT_MAX_TASKS_PER_NAMESPACE),
        metavar="N",
        help="reconcile at most N ScheduledTasks per namespace, oldest first; the others "
        "report Ready=False TaskLimitExceeded; 0 means no limit "
        f"(env {ENV_PREFIX}MAX_TASKS_PER_NAMESPACE)",
    )

    crd = commands.add_parser(
        "crd",
        help="print or write the ScheduledTask CRD generated from the models",
        description="Print the ScheduledTask CustomResourceDefinition (YAML) generated from "
        "the pydantic models, or write it to a file.",
    )
    crd.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "crd":
        from cronwarden.api.crd import render

        text = render()
        if args.output:
            args.output.write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    if args.command == "run":
        if not args.namespaces and not args.all_namespaces:
            parser.error("run: give --namespace NS (repeatable) or --all-namespaces")
        if args.workers < 1:
            parser.error("run: --workers must be at least 1")
        if args.audit_seconds < 1:
            parser.error("run: --audit-seconds must be at least 1")
        if args.max_tasks_per_namespace < 0:
            parser.error("run: --max-tasks-per-namespace must be 0 (no limit) or more")
        if not 1 <= args.shards <= MAX_SHARDS:
            parser.error(f"run: --shards must be between 1 and {MAX_SHARDS}, not {args.shards}")
        if args.shard_filter not in settings.SHARD_FILTERS:
            parser.error(
                f"run: --shard-filter must be one of {', '.join(settings.SHARD_FILTERS)}, "
                f"not {args.shard_filter!r}"
            )
        excluded = args.excluded_namespaces
        if excluded is None:
            from_env = env("EXCLUDED_NAMESPACES")
            excluded = (
                [n for n in from_env.split(",") if n]
                if from_env is not None
                else settings.default_excluded_namespaces()
            )
        from cronwarden.runtime.leader import identity
        from cronwarden.runtime.runner import run

        return run(
            settings.Settings(
                namespaces=args.namespaces,
                all_namespaces=args.all_namespaces,
                kubeconfig=args.kubeconfig,
                liveness_port=args.liveness_port,
                metrics_port=args.metrics_port,
                bind_address=args.bind_address,
                log_format=args.log_format,
                verbose=args.verbose,
                workers=args.workers,
                resync_seconds=args.resync_seconds,
                audit_seconds=args.audit_seconds,
                # A shard is taken by its Lease: sharding implies leader election.
                leader_election=args.leader_election or args.shards > 1,
                leader_election_namespace=args.leader_election_namespace,
                leader_election_id=args.leader_election_id,
                identity=identity(settings.pod_name()),
                excluded_namespaces=excluded,
                max_tasks_per_namespace=args.max_tasks_per_namespace,
                shards=args.shards,
                shard_filter=args.shard_filter,
            )
        )
    return 2
