"""`kubectl cronwarden`: arguments, exit codes and dispatch.

Installed as the console script `kubectl-cronwarden`, which kubectl runs as the
plugin `kubectl cronwarden` (krew's naming). Exit codes: 0 success, 1 the cluster
answered with an error or could not be reached (including a task not found),
2 a usage error (bad arguments, an invalid schedule or zone for `next`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from cronwarden import __version__
from cronwarden.core import schedule
from cronwarden.plugin import slots
from cronwarden.plugin.errors import ClusterError, UsageError, describe
from cronwarden.plugin.text import dump, timestamp
from cronwarden.wire import ApiError

DEFAULT_TIMEOUT = 30.0

PROG = "kubectl cronwarden"
EXAMPLES = """\
examples:
  kubectl cronwarden get -A                       every task, with its state
  kubectl cronwarden -n team-a get -l tier=batch -o wide
  kubectl cronwarden why nightly-backup           conditions, runs and Events, explained
  kubectl cronwarden trigger nightly-backup       start a run now
  kubectl cronwarden suspend nightly-backup       stop starting runs (resume undoes it)
  kubectl cronwarden next '30 2 * * *' --tz Europe/Berlin --count 3
"""


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """kubectl's global flags, accepted before or after the subcommand, as kubectl
    accepts them (the copy on a subcommand does not overwrite a value given before it)."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument(
        "-n",
        "--namespace",
        default=default(None),
        help="namespace of the task (default: the context's namespace)",
    )
    parser.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        default=default(False),
        help="get: tasks in every namespace",
    )
    parser.add_argument(
        "--kubeconfig",
        default=default(None),
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)",
    )
    parser.add_argument("--context", default=default(None), help="kubeconfig context to use")
    parser.add_argument(
        "--request-timeout",
        default=default(None),
        metavar="DURATION",
        help="how long to wait for each answer of the API server, as kubectl reads it "
        "(30s, 1m, 5 for seconds; 0 waits forever; default 30s)",
    )
    parser.add_argument(
        "--as", dest="as_user", default=default(None), metavar="USER", help="impersonate USER"
    )


OUTPUTS = ["json", "yaml", "name", "wide"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect and operate cronwarden ScheduledTasks: list them with their "
        "state, explain why one is Late, Blocked, Failing or Stale, start a run now, "
        "suspend and resume, and show the coming slots of a schedule exactly as the "
        "CronJob controller computes them.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    get = commands.add_parser(
        "get",
        help="list tasks with schedule, last success, next run and state",
        description="List ScheduledTasks (or one): schedule (or the monitored CronJob), time "
        "zone, age of the last success, next run, state (the Late, Blocked, Failing and "
        "Stale conditions that are True; OK, Suspended or NotReady:<reason>) and owner.",
    )
    _global_options(get, top=False)
    get.add_argument("name", nargs="?", metavar="NAME", help="one task")
    get.add_argument(
        "-l", "--selector", metavar="SELECTOR", help="label selector, such as team=storage"
    )
    get.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        help="wide: also last schedule, last result, failures and missed runs, CronJob; "
        "name: kind/name; json, yaml: the objects",
    )

    nxt = commands.add_parser(
        "next",
        help="the coming slots of a schedule (no cluster needed)",
        description="The coming slots of a CronJob schedule, as the CronJob controller "
        "computes them (robfig/cron v3, with spec.timeZone): in UTC and in the zone, with "
        "the runs that a daylight-saving change skips or repeats.",
    )
    nxt.add_argument("schedule", metavar="SCHEDULE", help="five fields, or @hourly, @daily ...")
    nxt.add_argument("--tz", metavar="ZONE", help="IANA time zone (default Etc/UTC)")
    nxt.add_argument("--count", type=int, default=5, metavar="N", help="how many slots (default 5)")
    nxt.add_argument(
        "--from",
        dest="start",
        metavar="TIME",
        help="slots after this time, ISO 8601 such as 2027-03-27T00:00:00Z; without an "
        "offset it is wall time in --tz (default: now)",
    )
    _global_options(nxt, top=False)
    nxt.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        help="wide: also how far ahead and Unix seconds; name: the UTC times only; "
        "json, yaml: as data",
    )

    trig = commands.add_parser(
        "trigger",
        help="start a run now, from the task's CronJob",
        description="Create a Job from the task's CronJob (in monitor mode, the referenced "
        "one) as `kubectl create job --from=cronjob/NAME` does, named "
        "<cronjob>-manual-<unix seconds> and annotated with who asked. The operator records "
        "it as a Manual run in status.lastRun.",
    )
    _global_options(trig, top=False)
    trig.add_argument("name", metavar="NAME")
    trig.add_argument("-o", "--output", choices=["json", "yaml", "name"], help="print the Job")

    for verb, value in (("suspend", "true"), ("resume", "false")):
        sub = commands.add_parser(
            verb,
            help=f"set spec.suspend={value}",
            description=f"Set spec.suspend={value} on the task (merge patch); in monitor mode "
            "on the CronJob it references. Warns when Argo CD or Flux manage the object: "
            "they revert changes made by hand.",
        )
        _global_options(sub, top=False)
        sub.add_argument("name", metavar="NAME")

    why = commands.add_parser(
        "why",
        help="explain a task's state: conditions, runs, Events, owner and runbook",
        description="Why a task is Late, Blocked, Failing or Stale (or that it is healthy), "
        "with its conditions, recorded and recent runs, Events, owner, runbook, expected "
        "result and rollback note.",
    )
    _global_options(why, top=False)
    why.add_argument("name", metavar="NAME")
    why.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        help="wide: also uid, creation time and generations; name: kind/name; "
        "json, yaml: the report as data",
    )
    return parser


def next_slots(args: argparse.Namespace, now: datetime, out: TextIO) -> int:
    if not 1 <= args.count <= 1000:
        raise UsageError("--count must be between 1 and 1000")
    refusal = slots.crd_refusal(args.schedule)
    if refusal is not None:
        raise UsageError(f"{refusal} (the ScheduledTask CRD refuses {args.schedule!r})")
    try:
        start = slots.parse_from(args.start, args.tz) if args.start else now
        up = slots.upcoming(args.schedule, args.tz, start, args.count)
    except (schedule.ScheduleError, schedule.UnknownTimeZoneError, ValueError) as err:
        raise UsageError(str(err)) from None
    if args.output in ("json", "yaml"):
        dump(slots.as_data(up), args.output, out)
    elif args.output == "name":
        out.write("".join(f"{timestamp(s)}\n" for s in up.slots))
    else:
        out.write(slots.render(up, wide=args.output == "wide"))
    return 0


def on_cluster(args: argparse.Namespace, now: datetime, out: TextIO, err: TextIO) -> int:
    """The subcommands that need the cluster; the kubernetes client is loaded for them only."""
    from cronwarden.plugin import commands
    from cronwarden.plugin.client import connect

    c = connect(
        args.kubeconfig,
        args.context,
        timeout=request_timeout(args.request_timeout),
        user=args.as_user,
    )
    ns = args.namespace or c.namespace
    if args.command == "get":
        return commands.get(
            c,
            ns,
            args.name,
            all_namespaces=args.all_namespaces,
            selector=args.selector,
            output=args.output,
            now=now,
            out=out,
            err=err,
        )
    if args.command == "trigger":
        return commands.start_run(c, ns, args.name, output=args.output, now=now, out=out, err=err)
    if args.command in ("suspend", "resume"):
        suspend = args.command == "suspend"
        return commands.set_suspend(c, ns, args.name, suspend=suspend, out=out, err=err)
    return commands.explain(c, ns, args.name, output=args.output, now=now, out=out, err=err)


_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def request_timeout(value: str | None) -> float | None:
    """--request-timeout as kubectl reads it: a Go duration (30s, 1m30s) or a number
    of seconds; 0 means no timeout (None). Unset: 30 s."""
    if value is None:
        return DEFAULT_TIMEOUT
    text = value.strip()
    if re.fullmatch(r"\d+", text):
        seconds = float(text)
    elif text and _DURATION.sub("", text) == "":
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(text))
    else:
        raise UsageError(
            f"--request-timeout: {value!r} is not a duration (such as 30s, 1m or 5; 0 for none)"
        )
    return seconds or None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    if args.command is None:
        parser.print_help()
        return 2
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        if args.all_namespaces and args.command != "get":
            raise UsageError(f"-A/--all-namespaces is for get, not {args.command}")
        if args.command == "next":
            return next_slots(args, now, sys.stdout)
        return on_cluster(args, now, sys.stdout, sys.stderr)
    except UsageError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    except (ClusterError, ApiError) as error:
        text = describe(error)
        sys.stderr.write(text if text.startswith("Error from server") else f"error: {text}")
        sys.stderr.write("\n")
        return 1
    except KeyboardInterrupt:
        return 130
