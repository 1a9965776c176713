"""The one request path to the Kubernetes API, for the operator (runtime/kube.py) and
the kubectl plugin (plugin/client.py).

`Api` builds each request (path and query, JSON body, content type, Accept, User-Agent,
the field manager of writes), sends it through a `Transport`, and interprets the answer:
the object, the texts of its Warning headers, or an `ApiError` that says whether a retry
helps (HTTP status, the Status body's reason, message and details, Retry-After; no
answer at all is status 0 with one line saying what failed). It lists in pages, following
`continue`. Objects travel as plain dicts in their wire form.

Standard library only: the single-file plugin (hack/plugin_zipapp.py) carries this
module and runs on a bare Python. The transport is the one thing each side brings: the
official client's urllib3 pool and login in the operator (runtime/kube.py), http.client
in the plugin (plugin/client.py).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON
LIST_PAGE = 500

# Conflicts, expired lists, throttling and server errors; 0 is no answer at all.
RETRYABLE = {0, 409, 410, 429, 500, 502, 503, 504}

# One warning of an HTTP Warning header (RFC 7234) as the API server writes it:
# `299 - "text"`, the text a quoted-string with backslash escapes, an optional date.
WARNING = re.compile(r'\s*(\d{3}) (\S+) "((?:[^"\\]|\\.)*)"(?: "[^"]*")?\s*(?:,|$)')
ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Answer:
    """What came back: status line, headers (a name may repeat) and body."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    data: bytes

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Transport(Protocol):
    """Sends one request to `server` and returns its answer, or raises OSError when none
    came (refused, reset, timed out, TLS failed); `timeout` is for the error's text."""

    server: str
    timeout: float | None

    def send(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> Answer: ...


@dataclass
class ApiError(Exception):
    """A failed API request: `status` is the HTTP code (0: no answer), `reason` and
    `message` the Status' (or the status line's), `details` the Status' details (name,
    kind, causes), `retry_after` the seconds the server asked to wait."""

    status: int
    reason: str
    message: str
    retry_after: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        """Conflicts, expired lists, throttling, server errors and no answer are worth
        retrying; invalid (422), forbidden (403) or not found (404) requests are not.
        Nor is the 500 that server-side apply answers for an object it cannot merge
        (duplicate keys in a list such as two containers of one name): it is the
        object's fault."""
        if self.status == 500 and "failed to create typed patch object" in self.message:
            return False
        return self.status in RETRYABLE

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}"


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    resource_version: str  # the list's
    next: str | None  # the `continue` token of the next page, None after the last


# Called after every request with (method, path, HTTP status; 0 when no answer).
RequestHook = Callable[[str, str, int], None]


class Api:
    """Requests to the API server at the transport's end, as `user_agent`, writing as
    `field_manager`; `headers` go with every request (impersonation)."""

    def __init__(
        self,
        transport: Transport,
        *,
        user_agent: str,
        field_manager: str,
        headers: Mapping[str, str] | None = None,
        on_request: RequestHook | None = None,
    ) -> None:
        self.transport = transport
        self.field_manager = field_manager
        self.headers = {"Accept": JSON, "User-Agent": user_agent, **(headers or {})}
        self.on_request = on_request

    def exchange(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = JSON,
    ) -> tuple[dict[str, Any], list[str]]:
        """One request: the answer's object and the texts of its Warning headers.
        Raises ApiError for an error status or no answer."""
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
        target = path + ("?" + urlencode(query) if query else "")
        try:
            answer = self.transport.send(method, target, headers, data)
        except OSError as err:
            self._count(method, path, 0)
            text = unreachable(self.transport.server, err, self.transport.timeout)
            raise ApiError(0, "ConnectionError", text) from err
        self._count(method, path, answer.status)
        payload = decode(answer.data)
        if answer.status >= 300:
            raise error_of(answer, payload)
        return payload, warning_texts(answer.header("Warning"))

    def get(self, path: str, query: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """The object at `path`, or None where there is none (404)."""
        try:
            return self.exchange("GET", path, query=query)[0]
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    # Writes, as our field manager

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._write("POST", path, body)[0]

    def update(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT; with metadata.resourceVersion set, a 409 says someone wrote first."""
        return self._write("PUT", path, body)[0]

    def merge_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._write("PATCH", path, patch, MERGE_PATCH)[0]

    def apply(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Server-side apply, taking over fields other managers set, refusing unknown
        fields; the stored object and the warnings about it."""
        query = {"force": "true", "fieldValidation": "Strict"}
        return self._write("PATCH", path, body, APPLY_PATCH, query)

    def _write(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        content_type: str = JSON,
        query: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], list[str]]:
        query = {"fieldManager": self.field_manager, **(query or {})}
        return self.exchange(method, path, body=body, query=query, content_type=content_type)

    # Lists

    def list_page(self, path: str, query: Mapping[str, str] | None = None, token: str = "") -> Page:
        """One page of LIST_PAGE objects of the collection at `path`, from `token` on."""
        params = {**(query or {}), "limit": str(LIST_PAGE)}
        if token:
            params["continue"] = token
        page = self.exchange("GET", path, query=params)[0]
        meta = page.get("metadata") or {}
        return Page(
            page.get("items") or [],
            str(meta.get("resourceVersion") or ""),
            meta.get("continue") or None,
        )

    def list_all(self, path: str, query: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every object of the collection at `path`, page by page."""
        items: list[dict[str, Any]] = []
        token: str | None = ""
        while token is not None:
            page = self.list_page(path, query, token)
            items += page.items
            token = page.next
        return items

    def _count(self, method: str, path: str, status: int) -> None:
        if self.on_request is not None:
            self.on_request(method, path, status)


def decode(data: bytes) -> dict[str, Any]:
    """The answer's JSON object; a body that is not JSON (a proxy's error page) is kept,
    shortened, as the message."""
    if not data:
        return {}
    try:
        payload = json.loads(data)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        return payload
    return {"message": data[:300].decode(errors="replace").strip()}


def error_of(answer: Answer, payload: dict[str, Any]) -> ApiError:
    """The ApiError of an error answer, from its Status body where it has one."""
    details = payload.get("details")
    return ApiError(
        answer.status,
        str(payload.get("reason") or answer.reason or answer.status),
        str(payload.get("message") or answer.reason or f"HTTP {answer.status}"),
        retry_after(next(iter(answer.header("Retry-After")), None)),
        details if isinstance(details, dict) else {},
    )


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the API server sends whole seconds)."""
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


def warning_texts(values: Iterable[str]) -> list[str]:
    """Texts of Warning header values (PodSecurity's `warn` mode, deprecated fields), in
    order; a value may hold several, separated by commas, and one that is not in the
    expected form is kept whole."""
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


def unreachable(host: str, cause: BaseException, timeout: float | None) -> str:
    """One line for a request that got no answer: what failed and whether a retry helps.
    `cause` is the underlying OSError where there is one."""
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
