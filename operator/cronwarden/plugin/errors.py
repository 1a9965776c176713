"""The plugin's failures, by exit code. Free of the kubernetes client, so that
`next` reports its errors without loading it."""

from __future__ import annotations

import socket
import ssl
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


def retry_hint(status: int) -> str:
    """Whether retrying an answer with this HTTP status can help, for the error line."""
    if status == 429 or status >= 500:
        return " (the API server is overloaded or failing: retrying later may help)"
    if status == 401:
        return " (the kubeconfig's credentials were refused: retrying will not help)"
    return ""


def unreachable(host: str, cause: BaseException, timeout: float | None) -> str:
    """One line for a request that got no answer: what failed and whether a retry helps.
    `cause` is the underlying OSError where there is one (client.root_cause)."""
    where = f"the API server at {host}"
    if isinstance(cause, ssl.SSLError):
        detail = getattr(cause, "reason", None) or cause.__class__.__name__
        return (
            f"TLS with {where} failed ({detail}): retrying will not help; check the "
            "kubeconfig's certificate-authority and server"
        )
    if isinstance(cause, socket.gaierror):
        return (
            f"cannot resolve the host of {where}: check the kubeconfig's server and your "
            "network (retrying helps only if the name server is down)"
        )
    if isinstance(cause, TimeoutError):
        within = f" within {timeout:g}s" if timeout else ""
        return f"no answer from {where}{within}: retrying may help, or a longer --request-timeout"
    if isinstance(cause, ConnectionRefusedError):
        return (
            f"cannot connect to {where}: connection refused (is the cluster running?); "
            "retrying helps once it listens again"
        )
    if isinstance(cause, ConnectionError):
        return f"{where} closed the connection: retrying may help"
    if isinstance(cause, OSError) and cause.strerror:
        return f"cannot reach {where}: {cause.strerror.lower()}: retrying may help"
    return f"cannot reach {where} ({cause.__class__.__name__}): retrying may help"
