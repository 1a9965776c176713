"""Monitor mode: the spec a task is judged by when it references a CronJob it does
not own. Pure.

Schedule, time zone, suspension and the policies come from the CronJob, which
cronwarden only reads; the monitoring contract (grace, deadlines, owner, runbook)
comes from the task.
"""

from __future__ import annotations

from typing import Any

from cronwarden.api.models import ScheduledTaskSpec


def effective_spec(spec: ScheduledTaskSpec, cronjob: dict[str, Any]) -> ScheduledTaskSpec:
    cj = cronjob.get("spec") or {}
    return spec.model_copy(
        update={
            "schedule": cj.get("schedule"),
            "time_zone": cj.get("timeZone"),
            "suspend": cj.get("suspend"),
            "concurrency_policy": cj.get("concurrencyPolicy"),
            "starting_deadline_seconds": cj.get("startingDeadlineSeconds"),
            "successful_jobs_history_limit": cj.get("successfulJobsHistoryLimit"),
            "failed_jobs_history_limit": cj.get("failedJobsHistoryLimit"),
        }
    )
