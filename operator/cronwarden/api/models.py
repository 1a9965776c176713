"""The ScheduledTask API (cronwarden.io/v1alpha1) as pydantic models.

These models are the one source of truth: the CRD's OpenAPI schema is generated
from them (`cronwarden crd`), and the operator parses incoming objects with them.
Field names are snake_case in Python and camelCase on the wire.

Defaults are applied by the operator, not stored by the API server, so that the
object in the cluster is exactly what was applied (no drift for GitOps tools).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "cronwarden.io"
VERSION = "v1alpha1"
KIND = "ScheduledTask"
PLURAL = "scheduledtasks"
SINGULAR = "scheduledtask"
SHORT_NAMES = ("st",)
API_VERSION = f"{GROUP}/{VERSION}"

# CronJob names are limited to 52 characters, because the Jobs they start append
# an 11-character suffix to a 63-character limit.
MAX_NAME_LENGTH = 52

DEFAULT_CONCURRENCY_POLICY = "Forbid"
DEFAULT_STARTING_DEADLINE_SECONDS = 300
DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT = 3
DEFAULT_FAILED_JOBS_HISTORY_LIMIT = 1
DEFAULT_MISSED_RUN_GRACE_SECONDS = 60
DEFAULT_MAX_CONSECUTIVE_FAILURES = 1
DEFAULT_BLOCKED_AFTER_SKIPPED_RUNS = 1
# The CronJob always names its zone, so that kube-controller-manager's own zone
# never matters and the operator predicts the slots the controller starts.
DEFAULT_TIME_ZONE = "Etc/UTC"

# robfig/cron v3 (which the CronJob controller uses) accepts five whitespace-separated
# fields or a descriptor; the field contents are checked by the operator.
SCHEDULE_PATTERN = r"^\s*(@[a-z]+(\s+\S+)?|\S+(\s+\S+){4})\s*$"


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class JobTemplate(Model):
    """A batch/v1 JobTemplateSpec. In the CRD this field carries the full
    Kubernetes schema of the pinned release, so the API server validates it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    metadata: dict[str, Any] | None = None
    spec: dict[str, Any]


class CronJobRef(Model):
    """An existing CronJob in the task's namespace, monitored but never written."""

    name: Annotated[
        str,
        Field(min_length=1, max_length=253, description="Name of the CronJob to monitor."),
    ]


class ScheduledTaskSpec(Model):
    """Desired state: a CronJob (schedule and jobTemplate), or a reference to an existing
    CronJob to monitor (cronJobRef), plus the contract cronwarden monitors it against."""

    schedule: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=256,
            pattern=SCHEDULE_PATTERN,
            description="Cron schedule as the CronJob controller reads it: five fields "
            "(minute hour day-of-month month day-of-week; names, ranges, steps, '?') or "
            "a descriptor such as @hourly or @daily. Evaluated in timeZone. Required "
            "unless cronJobRef is set.",
        ),
    ] = None
    time_zone: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=64,
            description="IANA time zone of the schedule, such as Europe/Berlin. Defaults to "
            f"{DEFAULT_TIME_ZONE}: the CronJob that cronwarden builds always carries an explicit "
            f"timeZone (this one, or {DEFAULT_TIME_ZONE} when unset), so the time zone of "
            "kube-controller-manager never matters and cronwarden predicts the slots that the "
            "CronJob controller starts.",
        ),
    ] = None
    suspend: Annotated[
        bool | None,
        Field(description="Stop starting new runs; running Jobs continue. Defaults to false."),
    ] = None
    concurrency_policy: Annotated[
        Literal["Allow", "Forbid", "Replace"] | None,
        Field(
            description="What to do when a run is due while the previous one still runs: "
            "Allow (run both), Forbid (skip the new run) or Replace (stop the old run). "
            f"Defaults to {DEFAULT_CONCURRENCY_POLICY}."
        ),
    ] = None
    starting_deadline_seconds: Annotated[
        int | None,
        Field(
            ge=0,
            description="A run that cannot start within this many seconds of its slot is "
            "skipped (and reported as missed). Bounds catch-up after controller downtime. "
            f"Defaults to {DEFAULT_STARTING_DEADLINE_SECONDS}.",
        ),
    ] = None
    successful_jobs_history_limit: Annotated[
        int | None,
        Field(
            ge=0,
            description="Finished successful Jobs to keep. Defaults to "
            f"{DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT}.",
        ),
    ] = None
    failed_jobs_history_limit: Annotated[
        int | None,
        Field(
            ge=0,
            description=f"Failed Jobs to keep. Defaults to {DEFAULT_FAILED_JOBS_HISTORY_LIMIT}.",
        ),
    ] = None
    job_template: Annotated[
        JobTemplate | None,
        Field(
            description="The Job to run at each slot (batch/v1 JobTemplateSpec). Required "
            "unless cronJobRef is set."
        ),
    ] = None
    cron_job_ref: Annotated[
        CronJobRef | None,
        Field(
            description="Monitor mode: watch this existing CronJob (for example one from a "
            "vendor Helm chart) instead of creating one. cronwarden never writes it; "
            "schedule, timeZone, suspend and the policies are read from it. Exclusive with "
            "schedule, jobTemplate and the CronJob fields."
        ),
    ] = None
    missed_run_grace_seconds: Annotated[
        int | None,
        Field(
            ge=0,
            description="How late a run may start before its slot counts as missed. "
            f"Defaults to {DEFAULT_MISSED_RUN_GRACE_SECONDS}.",
        ),
    ] = None
    success_deadline_seconds: Annotated[
        int | None,
        Field(
            ge=1,
            description="Longest acceptable time since the last successful run (or since "
            "creation, if it never succeeded) before the task is Stale. No deadline if unset.",
        ),
    ] = None
    max_consecutive_failures: Annotated[
        int | None,
        Field(
            ge=1,
            description="Failed runs in a row before the task is Failing. Defaults to "
            f"{DEFAULT_MAX_CONSECUTIVE_FAILURES}.",
        ),
    ] = None
    max_run_duration_seconds: Annotated[
        int | None,
        Field(
            ge=1,
            description="Alert (not kill) when a run takes longer than this. No limit if unset.",
        ),
    ] = None
    blocked_after_skipped_runs: Annotated[
        int | None,
        Field(
            ge=1,
            description="How many slots one run may hold back before the task is Blocked. "
            "With concurrencyPolicy Forbid: Blocked when a due slot did not start because a "
            "run is still active, and that run has been active (running, or pending since its "
            "Job was created) for longer than this many schedule intervals, counted from its "
            "own slot, plus missedRunGraceSeconds. Runs shorter than that are never Blocked, "
            "however many slots they skip by design. With Replace: Blocked when this many "
            "runs in a row were stopped before they finished. Defaults to "
            f"{DEFAULT_BLOCKED_AFTER_SKIPPED_RUNS}.",
        ),
    ] = None
    owner: Annotated[
        str | None,
        Field(max_length=256, description="Who is paged for this task (team or person)."),
    ] = None
    runbook_url: Annotated[
        str | None,
        Field(
            alias="runbookURL",
            max_length=2048,
            pattern=r"^https?://\S+$",
            description="Link to what to do when this task alerts (http or https URL).",
        ),
    ] = None
    description: Annotated[
        str | None, Field(max_length=1024, description="What this task does.")
    ] = None
    expected_result: Annotated[
        str | None,
        Field(
            max_length=1024,
            description="What a good run produces, for whoever is paged (for example "
            "'orders.sql.gz > 1 MB in s3://backups'). Shown by kubectl describe and "
            "kubectl cronwarden why; not a metric label.",
        ),
    ] = None
    rollback_note: Annotated[
        str | None,
        Field(
            max_length=1024,
            description="How to undo or re-run a run safely. Shown by kubectl describe and "
            "kubectl cronwarden why; not a metric label.",
        ),
    ] = None

    @property
    def monitored(self) -> bool:
        return self.cron_job_ref is not None


# The spec's optional fields with cronwarden's defaults applied: the one place
# where defaults are resolved (builder, status and metrics all read these).
def _default(value: int | None, default: int) -> int:
    return default if value is None else value


def effective_grace_seconds(spec: ScheduledTaskSpec) -> int:
    return _default(spec.missed_run_grace_seconds, DEFAULT_MISSED_RUN_GRACE_SECONDS)


def effective_max_consecutive_failures(spec: ScheduledTaskSpec) -> int:
    return _default(spec.max_consecutive_failures, DEFAULT_MAX_CONSECUTIVE_FAILURES)


def effective_time_zone(spec: ScheduledTaskSpec) -> str:
    return spec.time_zone if spec.time_zone is not None else DEFAULT_TIME_ZONE


def effective_blocked_after_skipped_runs(spec: ScheduledTaskSpec) -> int:
    return _default(spec.blocked_after_skipped_runs, DEFAULT_BLOCKED_AFTER_SKIPPED_RUNS)


def effective_concurrency_policy(spec: ScheduledTaskSpec) -> str:
    return spec.concurrency_policy or DEFAULT_CONCURRENCY_POLICY


def effective_starting_deadline_seconds(spec: ScheduledTaskSpec) -> int:
    return _default(spec.starting_deadline_seconds, DEFAULT_STARTING_DEADLINE_SECONDS)


def effective_history_limits(spec: ScheduledTaskSpec) -> tuple[int, int]:
    """(successfulJobsHistoryLimit, failedJobsHistoryLimit)."""
    return (
        _default(spec.successful_jobs_history_limit, DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT),
        _default(spec.failed_jobs_history_limit, DEFAULT_FAILED_JOBS_HISTORY_LIMIT),
    )


class StatusModel(Model):
    """Status is written by the operator; fields from other versions are ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Condition(StatusModel):
    """A status condition, following the Kubernetes API conventions."""

    type: Annotated[
        str,
        Field(description="Ready, Late, Blocked, Failing, Stale, LongRunning or Suspended."),
    ]
    status: Annotated[
        Literal["True", "False", "Unknown"], Field(description="True, False or Unknown.")
    ]
    reason: Annotated[str, Field(description="CamelCase reason for the last transition.")]
    message: Annotated[str, Field(description="Human-readable details.")] = ""
    last_transition_time: Annotated[datetime, Field(description="When status last changed.")]
    observed_generation: Annotated[
        int | None, Field(description="The generation this condition was computed for.")
    ] = None


class LastRun(StatusModel):
    """The most recent run that finished."""

    job: Annotated[str, Field(description="Name of the Job.")]
    scheduled_time: Annotated[datetime | None, Field(description="The slot it ran for.")] = None
    start_time: Annotated[datetime | None, Field(description="When the Job started.")] = None
    completion_time: Annotated[
        datetime | None, Field(description="When the Job finished (succeeded or failed).")
    ] = None
    result: Annotated[
        Literal["Succeeded", "Failed", "Unknown"],
        Field(
            description="Succeeded or Failed; Unknown when the Job disappeared before cronwarden "
            "saw it finish and the CronJob's lastSuccessfulTime does not account for it."
        ),
    ]
    reason: Annotated[
        str | None,
        Field(
            description="Why the Job failed, from its condition; JobVanished for an Unknown "
            "result; CronJobLastSuccess when a vanished Job's success was taken from the "
            "CronJob's lastSuccessfulTime."
        ),
    ] = None
    trigger: Annotated[
        Literal["Scheduled", "Manual"] | None,
        Field(
            description="Scheduled (started by the CronJob controller for a slot) or Manual "
            "(kubectl create job --from, kubectl cronwarden trigger)."
        ),
    ] = None
    triggered_by: Annotated[
        str | None, Field(description="Who started a manual run, when known.")
    ] = None


class Watermark(StatusModel):
    """How far finished runs are recorded: every run that finished before
    completionTime, and the Jobs named here, which finished within that second."""

    completion_time: Annotated[
        datetime, Field(description="Completion time of the latest recorded run.")
    ]
    jobs: Annotated[
        list[str],
        Field(description="The Jobs recorded that finished within the second of completionTime."),
    ] = []
    unseen_success: Annotated[
        bool,
        Field(
            description="A success at completionTime was counted from the CronJob's "
            "lastSuccessfulTime alone, its Job never seen (created and deleted while "
            "cronwarden was not watching); a Job later seen to succeed within that second and "
            "not named in jobs is that run, not another."
        ),
    ] = False


class SkippedRuns(StatusModel):
    """Runs that did not happen, or did not finish, because of an earlier run."""

    forbid: Annotated[
        int,
        Field(
            ge=0,
            description="Due slots that did not start within missedRunGraceSeconds because "
            "a run the controller had started was still active (concurrencyPolicy Forbid).",
        ),
    ] = 0
    replace: Annotated[
        int,
        Field(
            ge=0,
            description="Runs that disappeared before they finished while concurrencyPolicy "
            "is Replace (stopped to start the next slot, or deleted by hand).",
        ),
    ] = 0


class Judging(StatusModel):
    """The schedule whose slots are judged, and since when. A slot at or before `since`
    is never judged, so editing the schedule or time zone, or resuming, raises no
    alarm about slots of the new schedule that lie before the change."""

    schedule: Annotated[str, Field(description="The spec.schedule being judged.")]
    time_zone: Annotated[
        str,
        Field(description=f"The zone it is evaluated in (spec.timeZone or {DEFAULT_TIME_ZONE})."),
    ]
    since: Annotated[
        datetime,
        Field(
            description="Slots at or before this instant are not judged: the task's creation, "
            "or when the operator observed the last change of schedule or time zone, or the "
            "last resume."
        ),
    ]


class ScheduledTaskStatus(StatusModel):
    """Observed state, written by the operator through the status subresource."""

    observed_generation: Annotated[
        int | None, Field(description="The spec generation this status reflects.")
    ] = None
    cron_job_name: Annotated[str | None, Field(description="Name of the owned CronJob.")] = None
    active: Annotated[list[str], Field(description="Names of the Jobs running now.")] = []
    last_schedule_time: Annotated[
        datetime | None, Field(description="When the CronJob last started a Job.")
    ] = None
    last_successful_time: Annotated[
        datetime | None, Field(description="When the last successful run finished.")
    ] = None
    last_failure_time: Annotated[
        datetime | None, Field(description="When the last failed run failed.")
    ] = None
    last_run: Annotated[LastRun | None, Field(description="The most recent finished run.")] = None
    watermark: Annotated[
        Watermark | None,
        Field(description="How far finished runs are recorded, so none is counted twice."),
    ] = None
    next_schedule_time: Annotated[
        datetime | None, Field(description="The next slot, in UTC; unset while suspended.")
    ] = None
    last_missed_time: Annotated[
        datetime | None, Field(description="The most recent slot that was missed.")
    ] = None
    missed_runs: Annotated[
        int, Field(ge=0, description="Slots missed since the task was created.")
    ] = 0
    consecutive_failures: Annotated[
        int, Field(ge=0, description="Failed runs since the last successful one.")
    ] = 0
    skipped_runs: Annotated[
        SkippedRuns,
        Field(description="Slots skipped, and runs stopped, because of an earlier run."),
    ] = SkippedRuns()
    last_skipped_time: Annotated[
        datetime | None,
        Field(description="The most recent slot counted in skippedRuns.forbid."),
    ] = None
    consecutive_replaced_runs: Annotated[
        int,
        Field(
            ge=0,
            description="Runs stopped by Replace before they finished since the last run "
            "that finished.",
        ),
    ] = 0
    succeeded: Annotated[int, Field(ge=0, description="Successful runs recorded.")] = 0
    failed: Annotated[int, Field(ge=0, description="Failed runs recorded.")] = 0
    unknown: Annotated[
        int,
        Field(
            ge=0,
            description="Runs whose Job disappeared before cronwarden saw it finish, with no "
            "other record of their result.",
        ),
    ] = 0
    judging: Annotated[
        Judging | None,
        Field(
            description="The schedule and time zone that slots are judged against, and since when."
        ),
    ] = None
    apply_warnings: Annotated[
        list[Annotated[str, Field(max_length=1024)]],
        Field(
            max_length=10,
            description="Warnings the API server returned for the last apply of the CronJob "
            "(Pod Security admission's warn mode, deprecated fields), at most 10; empty "
            "when that apply drew none.",
        ),
    ] = []
    conditions: Annotated[
        list[Condition],
        Field(description="Ready, Late, Blocked, Failing, Stale, LongRunning and Suspended."),
    ] = []


class ScheduledTask(BaseModel):
    """A whole object as the API server returns it."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: dict[str, Any]
    spec: ScheduledTaskSpec
    status: ScheduledTaskStatus = ScheduledTaskStatus()

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def namespace(self) -> str:
        return str(self.metadata["namespace"])

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation", 0))
