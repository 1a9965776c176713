"""The plugin's failures, by exit code, and the one line each prints. A request that
failed is a `cronwarden.wire.ApiError` (exit code 1); free of the kubernetes client, so
that `next` reports its errors without loading it."""

from __future__ import annotations

from cronwarden.wire import ApiError


class UsageError(Exception):
    """Arguments that cannot work (exit code 2)."""


class ClusterError(Exception):
    """The cluster cannot do what was asked, or cannot be asked: no kubeconfig, a task
    without a CronJob (exit code 1)."""


def retry_hint(err: ApiError) -> str:
    """Whether retrying can help, for the error line (ApiError.retryable decides)."""
    if err.status == 401:
        return " (the kubeconfig's credentials were refused: retrying will not help)"
    if not err.retryable:
        return ""
    if err.status in (409, 410):
        return " (the object changed meanwhile: retrying may help)"
    return " (the API server is overloaded or failing: retrying later may help)"


def describe(err: ApiError | ClusterError) -> str:
    """The error in one line, as kubectl words it: `Error from server (Reason): ...`
    for an answer of the API server, else what failed (cli.main puts `error: ` first)."""
    if isinstance(err, ApiError) and err.status:
        text = f"Error from server ({err.reason}): {err.message}{retry_hint(err)}"
    else:
        text = err.message if isinstance(err, ApiError) else str(err)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
