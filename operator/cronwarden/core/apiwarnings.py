"""Warnings the API server sent back when it accepted the CronJob, passed on.

An apply can succeed with `Warning` response headers: PodSecurity in `warn` mode
checks a CronJob's pod template (in `enforce` mode it refuses the pods later, see
admission.py), and deprecated fields or API versions are named. cronwarden keeps the
warnings of the CronJob's last apply in `status.applyWarnings` (what `kubectl
cronwarden why` shows) and posts a Warning Event `CronJobWarning` for each text it
did not hold already: once per distinct text, however often the CronJob is
applied. The status field is the bounded memory: at most MAX_WARNINGS texts of at
most MAX_TEXT characters. Pure.
"""

from __future__ import annotations

from cronwarden.core.conditions import Event

MAX_WARNINGS = 10
MAX_TEXT = 1024
PREFIX = "the API server warned when the CronJob was applied: "


def record(previous: list[str], received: list[str] | None) -> tuple[list[str], list[Event]]:
    """status.applyWarnings after a reconcile, and the Events to post. `received` is
    what the CronJob's apply returned in this reconcile, None when nothing was applied
    (the previous warnings still describe the CronJob as last applied)."""
    if received is None:
        return previous, []
    kept: list[str] = []
    for text in received:
        text = " ".join(text.split())
        text = text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."
        if text and text not in kept:
            kept.append(text)
    kept = kept[:MAX_WARNINGS]
    events = [
        Event("Warning", "CronJobWarning", f"{PREFIX}{text}", distinct=True)
        for text in kept
        if text not in previous
    ]
    return kept, events
