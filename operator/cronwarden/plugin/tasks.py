"""What `kubectl cronwarden get` shows for a ScheduledTask. Pure: objects and `now` in.

Tasks are read as plain dicts in their wire form rather than with the pydantic
models, so that the plugin can show a task written by a newer operator (fields it
does not know) or one the operator has not reconciled yet (no status).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from cronwarden.core.runs import parse_time
from cronwarden.plugin.names import DEFAULT_TIME_ZONE
from cronwarden.plugin.text import NONE, age, human_duration, table, timestamp

# The conditions that mean something is wrong when True, in the order shown.
FLAGS = ("Late", "Blocked", "Failing", "Stale")
HEADERS = ("NAME", "SCHEDULE", "TZ", "ACTIVE", "LAST SUCCESS", "NEXT RUN", "STATE", "OWNER", "AGE")
# -o wide adds these before AGE.
WIDE_HEADERS = ("LAST SCHEDULE", "LAST RESULT", "FAILURES", "MISSED", "CRONJOB")
# Closer than this, NEXT RUN is relative ("in 4m"); further, a timestamp.
RELATIVE_FOR = timedelta(hours=24)


def conditions(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The task's status conditions by type."""
    found = ((task.get("status") or {}).get("conditions")) or []
    return {c["type"]: c for c in found if isinstance(c, dict) and "type" in c}


def is_true(task: dict[str, Any], type_: str) -> bool:
    return conditions(task).get(type_, {}).get("status") == "True"


def cronjob_ref(task: dict[str, Any]) -> str | None:
    """The referenced CronJob of a monitor-mode task (spec.cronJobRef.name), else None."""
    ref = (task.get("spec") or {}).get("cronJobRef") or {}
    name = ref.get("name")
    return str(name) if name else None


def state(task: dict[str, Any]) -> str:
    """NotReady:<reason>, then the bad conditions that are True, then Suspended,
    comma-separated; OK when none applies."""
    conds = conditions(task)
    parts: list[str] = []
    ready = conds.get("Ready")
    if ready is None:
        parts.append("NotReady:NotObserved")  # the operator has not written status yet
    elif ready.get("status") != "True":
        parts.append(f"NotReady:{ready.get('reason') or 'Unknown'}")
    parts += [t for t in FLAGS if conds.get(t, {}).get("status") == "True"]
    if conds.get("Suspended", {}).get("status") == "True" or (
        "Suspended" not in conds and (task.get("spec") or {}).get("suspend") is True
    ):
        parts.append("Suspended")
    return ",".join(parts) or "OK"


def schedule_column(task: dict[str, Any]) -> str:
    ref = cronjob_ref(task)
    if ref is not None:
        return f"-> cronjob/{ref}"
    return str((task.get("spec") or {}).get("schedule") or NONE)


def zone_column(task: dict[str, Any]) -> str:
    """spec.timeZone; in monitor mode the CronJob's, as the operator judges it
    (status.judging.timeZone); Etc/UTC when unset, as the built CronJob names it."""
    zone = (task.get("spec") or {}).get("timeZone")
    if zone is None and cronjob_ref(task) is not None:
        zone = ((task.get("status") or {}).get("judging") or {}).get("timeZone")
    return str(zone or DEFAULT_TIME_ZONE)


def next_run_column(task: dict[str, Any], now: datetime) -> str:
    """ "in 4m" within a day, the UTC time beyond; "<none>" while suspended or not
    judged; "5s ago" if the status has not caught up with a slot that passed."""
    when = parse_time((task.get("status") or {}).get("nextScheduleTime"))
    if when is None:
        return NONE
    ahead = when - now
    if ahead < timedelta(0):
        return f"{human_duration(-ahead)} ago"
    if ahead < RELATIVE_FOR:
        return f"in {human_duration(ahead)}"
    return timestamp(when)


def last_result_column(task: dict[str, Any]) -> str:
    """status.lastRun's result, with its reason: Failed(BackoffLimitExceeded)."""
    last = (task.get("status") or {}).get("lastRun") or {}
    if not last.get("result"):
        return NONE
    return str(last["result"]) + (f"({last['reason']})" if last.get("reason") else "")


def row(
    task: dict[str, Any], now: datetime, *, with_namespace: bool = False, wide: bool = False
) -> list[str]:
    meta = task.get("metadata") or {}
    status = task.get("status") or {}
    cells = [
        str(meta.get("name", "")),
        schedule_column(task),
        zone_column(task),
        str(len(status.get("active") or [])),
        age(parse_time(status.get("lastSuccessfulTime")), now, never="<never>"),
        next_run_column(task, now),
        state(task),
        str((task.get("spec") or {}).get("owner") or NONE),
    ]
    if wide:
        cells += [
            age(parse_time(status.get("lastScheduleTime")), now, never="<never>"),
            last_result_column(task),
            str(status.get("consecutiveFailures", 0)),
            str(status.get("missedRuns", 0)),
            str(cronjob_ref(task) or status.get("cronJobName") or NONE),
        ]
    cells.append(age(parse_time(meta.get("creationTimestamp")), now))
    return [str(meta.get("namespace", "")), *cells] if with_namespace else cells


def get_table(
    tasks: Sequence[dict[str, Any]],
    now: datetime,
    *,
    with_namespace: bool = False,
    wide: bool = False,
) -> str:
    """The `get` table, sorted by namespace and name as kubectl sorts a list; AGE last,
    as kubectl puts it."""
    ordered = sorted(
        tasks,
        key=lambda t: ((t.get("metadata") or {}).get("namespace", ""), t["metadata"]["name"]),
    )
    headers = list(HEADERS[:-1]) + (list(WIDE_HEADERS) if wide else []) + [HEADERS[-1]]
    if with_namespace:
        headers.insert(0, "NAMESPACE")
    rows = [row(t, now, with_namespace=with_namespace, wide=wide) for t in ordered]
    return table(headers, rows)
