"""One HTTP request to the API server through the official client's connection pool,
in JSON, for the operator (runtime/kube.py). Errors are the caller's to map; this only
sends and reads. The kubectl plugin does not use it: it speaks HTTPS with the standard
library (plugin/client.py), since the kubernetes client needs pydantic and the plugin
ships as one file without the operator's dependencies."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kubernetes import client

# One warning of an HTTP Warning header (RFC 7234) as the API server writes it:
# `299 - "text"`, the text a quoted-string with backslash escapes, an optional date.
WARNING = re.compile(r'\s*(\d{3}) (\S+) "((?:[^"\\]|\\.)*)"(?: "[^"]*")?\s*(?:,|$)')
ESCAPE = re.compile(r"\\(.)")


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


def warnings(headers: Any) -> list[str]:
    """The texts of the response's Warning headers (PodSecurity's `warn` mode,
    deprecated fields), in order; a header may hold several, separated by commas."""
    values: Iterable[str] = headers.getlist("Warning") if hasattr(headers, "getlist") else []
    return warning_texts(values)


def warning_texts(values: Iterable[str]) -> list[str]:
    """Texts of Warning header values; one that is not in the expected form is kept whole."""
    out: list[str] = []
    for value in values:
        pos = 0
        while pos < len(value):
            match = WARNING.match(value, pos)
            if match is None:
                out.append(value[pos:].strip())
                break
            out.append(ESCAPE.sub(r"\1", match.group(3)))
            pos = match.end()
    return [text for text in out if text]
