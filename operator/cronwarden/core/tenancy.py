"""Which tasks the operator refuses to act on. Pure.

Defence in depth behind the chart's admission policy: a task in an excluded
namespace (the operator's own, kube-system) could run pods with the operator's
or the system's privileges; a task beyond its namespace's limit would let one
tenant grow the operator's footprint without bound. Such tasks get no CronJob,
only Ready=False with the reason.
"""

from __future__ import annotations

from collections.abc import Collection

from cronwarden.core.conditions import Problem


def refusal(
    namespace: str, rank: int, excluded: Collection[str], max_per_namespace: int
) -> Problem | None:
    """Why a task is refused, or None. `rank` is its position among its namespace's
    tasks, oldest first; `max_per_namespace` 0 means no limit."""
    if namespace in excluded:
        return Problem(
            "NamespaceExcluded",
            f"cronwarden does not act on ScheduledTasks in namespace {namespace} (the "
            "operator's own namespace or kube-system, where a task could run pods with the "
            "operator's or the system's privileges); create it in another namespace",
        )
    if max_per_namespace and rank >= max_per_namespace:
        return Problem(
            "TaskLimitExceeded",
            f"namespace {namespace} is limited to {max_per_namespace} ScheduledTasks "
            "(--max-tasks-per-namespace) and this one is beyond the limit (oldest first), so "
            "it has no CronJob; delete other tasks here or raise the limit",
        )
    return None
