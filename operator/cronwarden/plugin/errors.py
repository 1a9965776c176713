"""The plugin's failures, by exit code. Free of the kubernetes client, so that
`next` reports its errors without loading it."""

from __future__ import annotations

from typing import Any


class UsageError(Exception):
    """Arguments that cannot work (exit code 2)."""


class ClusterError(Exception):
    """A request that failed, or a cluster that could not be reached (exit code 1)."""

    def __init__(
        self,
        message: str,
        status: int = 0,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.details = details or {}  # the Status' details: name, kind, causes


class NotFound(ClusterError):
    pass
