"""`kubectl cronwarden why`: what the operator concluded about a task, and why, in
words. Pure: the task, the runs of its CronJob's Jobs, its Events and `now` in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cronwarden.core.runs import Run, parse_time
from cronwarden.plugin.tasks import conditions, cronjob_ref, state, zone_column
from cronwarden.plugin.text import NONE, age, human_duration, table, timestamp

CONDITION_ORDER = ("Ready", "Late", "Blocked", "Failing", "Stale", "LongRunning", "Suspended")


def explain(task: dict[str, Any]) -> list[str]:
    """One sentence or two per problem, from the condition reasons and messages the
    operator wrote; a single "Healthy" line when there is none."""
    name = task["metadata"]["name"]
    spec = task.get("spec") or {}
    conds = conditions(task)

    def message(type_: str) -> str:
        c = conds[type_]
        return f"{c.get('message') or c.get('reason')} (reason {c.get('reason')})"

    def true(type_: str) -> bool:
        return conds.get(type_, {}).get("status") == "True"

    out: list[str] = []
    ready = conds.get("Ready")
    if ready is None:
        out.append(
            "Not reconciled yet: the operator has written no status for this task. Is it "
            "running, and does it watch this namespace?"
        )
    elif ready.get("status") != "True":
        out.append(
            f"Not ready: {message('Ready')}. Until that is fixed the operator does not keep "
            "the CronJob in sync."
        )
    if true("Late"):
        out.append(
            f"Late: {message('Late')}. It clears when a run that starts after the missed slot "
            f"succeeds; `kubectl cronwarden trigger {name}` starts one now."
        )
    if true("Blocked"):
        if conds["Blocked"].get("reason") == "PodsNotAdmitted":
            hint = (
                "The API server refuses the pods of the run's Job (Pod Security, a "
                "ResourceQuota, a LimitRange, a webhook): change the pod template or the "
                "namespace's policy. A Job keeps the template it was created with: delete it "
                "once the template is fixed (the Job controller retries by itself after a "
                "policy change)."
            )
        elif conds["Blocked"].get("reason") == "RunsReplaced":
            hint = (
                "With concurrencyPolicy Replace each run is stopped when the next slot "
                "comes: the runs take longer than the schedule leaves them."
            )
        else:
            hint = (
                "With concurrencyPolicy Forbid the CronJob controller starts no new run "
                "while that one is active: look at its pods, and delete the Job if it hangs."
            )
        out.append(f"Blocked: {message('Blocked')}. {hint}")
    if true("Failing"):
        out.append(
            f"Failing: {message('Failing')}. See why in the failed Job's pods "
            "(kubectl logs job/NAME); it clears with the next successful run."
        )
    if true("Stale"):
        deadline = spec.get("successDeadlineSeconds")
        out.append(
            f"Stale: {message('Stale')}; spec.successDeadlineSeconds is {deadline}s. "
            "It clears with the next successful run."
        )
    if true("LongRunning"):
        out.append(f"Long-running: {message('LongRunning')}.")
    if true("Suspended"):
        where = "the CronJob's spec.suspend" if cronjob_ref(task) else "spec.suspend"
        out.append(f"Suspended: {where} is true: no new runs start and slots are not judged.")
    if not out:
        out.append(
            "Healthy: the CronJob is in sync, and the task is not Late, Blocked, Failing or Stale."
        )
    for text in (task.get("status") or {}).get("applyWarnings") or []:
        out.append(f"API server warning on the CronJob's last apply: {text}")
    return out


def _when(t: datetime | None, now: datetime, unset: str) -> str:
    """A time and how far it is from now: 2027-01-01T00:00:00Z (in 33d), or (3m ago)."""
    if t is None:
        return unset
    if t > now:
        return f"{timestamp(t)} (in {human_duration(t - now)})"
    return f"{timestamp(t)} ({human_duration(now - t)} ago)"


def _duration(run: Run, now: datetime) -> str:
    if run.start is None:
        return NONE
    return human_duration((run.finished or now) - run.start)


def _trigger(manual: bool, who: str | None) -> str:
    if not manual:
        return "Scheduled"
    return f"Manual by {who}" if who else "Manual"


def runs_table(runs: Sequence[Run], now: datetime) -> str:
    """The runs, newest first (by start, or creation while pending)."""
    newest = sorted(
        runs,
        key=lambda r: (r.since or r.finished or datetime.min.replace(tzinfo=now.tzinfo), r.job),
        reverse=True,
    )
    rows = [
        [
            r.job,
            _trigger(r.manual, r.triggered_by),
            r.result + (f" ({r.reason})" if r.reason else ""),
            timestamp(r.scheduled) if r.scheduled else NONE,
            age(r.since, now) + (" ago" if r.since else ""),
            _duration(r, now),
        ]
        for r in newest
    ]
    return table(["JOB", "TRIGGER", "RESULT", "SCHEDULED", "STARTED", "DURATION"], rows, "  ")


def last_run_line(last: dict[str, Any], now: datetime) -> str:
    """status.lastRun in one line."""
    trigger = last.get("trigger")
    how = _trigger(trigger == "Manual", last.get("triggeredBy")) if trigger else NONE
    start, end = parse_time(last.get("startTime")), parse_time(last.get("completionTime"))
    took = f", took {human_duration(end - start)}" if start and end else ""
    when = f", finished {age(end, now)} ago" if end else ""
    reason = f" ({last['reason']})" if last.get("reason") else ""
    return f"Job {last.get('job')}: {last.get('result')}{reason}, {how}{when}{took}"


def events_table(events: Sequence[dict[str, Any]], now: datetime) -> str:
    """As kubectl describe shows Events: oldest first, repeats as "3m (x5 over 1h)"."""

    def last(e: dict[str, Any]) -> datetime | None:
        series = (e.get("series") or {}).get("lastObservedTime")
        return parse_time(series or e.get("lastTimestamp") or e.get("eventTime"))

    def first(e: dict[str, Any]) -> datetime | None:
        return parse_time(e.get("eventTime") or e.get("firstTimestamp"))

    ordered = sorted(events, key=lambda e: (last(e) or now, e.get("metadata", {}).get("name")))
    rows = []
    for e in ordered:
        count = int((e.get("series") or {}).get("count") or e.get("count") or 1)
        interval = age(first(e), now, never="<unknown>")
        if count > 1:
            interval = f"{age(last(e), now, never='<unknown>')} (x{count} over {interval})"
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        rows.append(
            [
                e.get("type", ""),
                e.get("reason", ""),
                interval,
                source,
                (e.get("message") or "").strip(),
            ]
        )
    return table(["TYPE", "REASON", "AGE", "FROM", "MESSAGE"], rows, "  ")


def render(
    task: dict[str, Any],
    runs: Sequence[Run],
    events: Sequence[dict[str, Any]],
    now: datetime,
    cronjob: str | None = None,
    cronjob_note: str = "",
    *,
    wide: bool = False,
) -> str:
    """The whole report. `cronjob` names the CronJob whose Jobs `runs` come from;
    `cronjob_note` says why there is none (not found, not the task's). `wide` adds the
    object's uid, creation time and generations."""
    meta = task["metadata"]
    spec = task.get("spec") or {}
    status = task.get("status") or {}
    ref = cronjob_ref(task)
    if ref is not None:
        judged = (status.get("judging") or {}).get("schedule") or NONE
        sched = f"{judged} ({zone_column(task)}), read from cronjob/{ref} (monitor mode)"
    else:
        sched = f"{spec.get('schedule') or NONE} ({zone_column(task)})"
    fields = [
        ("Name", f"{meta.get('namespace')}/{meta['name']}"),
        ("State", state(task)),
        ("Schedule", sched),
        ("Next run", _when(parse_time(status.get("nextScheduleTime")), now, NONE)),
        ("Last success", _when(parse_time(status.get("lastSuccessfulTime")), now, "<never>")),
        ("CronJob", (cronjob or NONE) + (f" ({cronjob_note})" if cronjob_note else "")),
        ("Owner", spec.get("owner") or NONE),
        ("Runbook", spec.get("runbookURL") or NONE),
        ("Description", spec.get("description") or NONE),
        ("Expected result", spec.get("expectedResult") or NONE),
        ("Rollback note", spec.get("rollbackNote") or NONE),
    ]
    if wide:
        created = parse_time(meta.get("creationTimestamp"))
        observed = status.get("observedGeneration")
        fields += [
            ("UID", meta.get("uid") or NONE),
            ("Created", _when(created, now, NONE)),
            ("Generation", f"{meta.get('generation', NONE)} (observed {observed or NONE})"),
        ]
    width = max(len(k) for k, _ in fields) + 2
    out = "".join(f"{k + ':':<{width}}{v}\n" for k, v in fields)

    out += "\nWhy:\n" + "".join(f"  {line}\n" for line in explain(task))

    conds = conditions(task)
    shown = [t for t in CONDITION_ORDER if t in conds] + sorted(
        t for t in conds if t not in CONDITION_ORDER
    )
    out += "\nConditions:\n"
    if shown:
        rows = [
            [
                t,
                conds[t].get("status", ""),
                conds[t].get("reason", ""),
                age(parse_time(conds[t].get("lastTransitionTime")), now),
                conds[t].get("message", ""),
            ]
            for t in shown
        ]
        out += table(["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], rows, "  ")
    else:
        out += f"  {NONE}\n"

    counts = (
        f"{status.get('succeeded', 0)} succeeded, {status.get('failed', 0)} failed, "
        f"{status.get('missedRuns', 0)} missed, "
        f"{status.get('consecutiveFailures', 0)} failed in a row"
    )
    out += f"\nRuns recorded: {counts}\n"
    last = status.get("lastRun")
    out += "Last run:      " + (last_run_line(last, now) if last else NONE) + "\n"
    title = f"Jobs of cronjob/{cronjob}" if cronjob else "Jobs"
    out += f"\n{title} (newest first):\n"
    out += runs_table(runs, now) if runs else f"  {NONE}\n"

    out += "\nEvents:\n"
    out += events_table(events, now) if events else f"  {NONE}\n"
    return out


def as_data(
    task: dict[str, Any],
    runs: Sequence[Run],
    events: Sequence[dict[str, Any]],
    now: datetime,
    cronjob: str | None = None,
    cronjob_note: str = "",
) -> dict[str, Any]:
    """The report as data, for -o json|yaml: the same facts, times in RFC 3339."""

    def when(t: datetime | None) -> str | None:
        return timestamp(t) if t else None

    meta = task["metadata"]
    return {
        "name": meta["name"],
        "namespace": meta.get("namespace"),
        "state": state(task),
        "why": explain(task),
        "cronJob": cronjob,
        "cronJobNote": cronjob_note or None,
        "conditions": list(conditions(task).values()),
        "lastRun": (task.get("status") or {}).get("lastRun"),
        "runs": [
            {
                "job": r.job,
                "trigger": "Manual" if r.manual else "Scheduled",
                "triggeredBy": r.triggered_by,
                "result": r.result,
                "reason": r.reason,
                "scheduledTime": when(r.scheduled),
                "startTime": when(r.since),
                "completionTime": when(r.finished),
            }
            for r in runs
        ],
        "events": list(events),
        "now": timestamp(now),
    }
