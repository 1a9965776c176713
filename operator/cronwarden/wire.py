"""One HTTP request to the API server through the official client's connection pool,
in JSON: what the operator (runtime/kube.py) and the kubectl plugin (plugin/client.py)
share. Errors are theirs to map; this only sends and reads."""

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
