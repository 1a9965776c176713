"""One HTTP request to the API server through the official client's connection pool,
in JSON, for the operator (runtime/kube.py). Errors are the caller's to map; this only
sends and reads. The kubectl plugin does not use it: it speaks HTTPS with the standard
library (plugin/client.py), since the kubernetes client needs pydantic and the plugin
ships as one file without the operator's dependencies."""

from __future__ import annotations

from typing import Any

from kubernetes import client


def send(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    content_type: str = "application/json",
    timeout: float | None = 30.0,
) -> tuple[Any, bytes]:
    """Send one request; returns the urllib3 response (status, reason, headers) and its
    body. Raises what urllib3 raises when there is no answer (OSError, HTTPError)."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    params = api.param_serialize(
        method,
        path,
        query_params=list((query or {}).items()),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*params, _request_timeout=timeout)
    return response, response.read()
