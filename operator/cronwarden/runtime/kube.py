"""The one module that talks to the Kubernetes API.

Objects travel as plain dicts in their wire form (camelCase JSON), the same form
kopf hands to handlers, so the pure code never depends on client model classes.
API errors are mapped here, in one place, to `ApiError` with `retryable` set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client, config

from cronwarden import __version__
from cronwarden.api import models
from cronwarden.core.builder import FIELD_MANAGER
from cronwarden.wire import send, warnings

log = logging.getLogger(__name__)

TASKS = f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{{ns}}/{models.PLURAL}"
CRONJOBS = "/apis/batch/v1/namespaces/{ns}/cronjobs"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
EVENTS = "/api/v1/namespaces/{ns}/events"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
USER_AGENT = f"cronwarden/{__version__}"

RETRYABLE = {409, 410, 429, 500, 502, 503, 504}


def collection(template: str, namespace: str | None) -> str:
    """The path of a collection in one namespace, or across all of them (None)."""
    if namespace is None:
        return template.replace("/namespaces/{ns}", "")
    return template.format(ns=namespace)


LIST_PAGE = 500


@dataclass
class ApiError(Exception):
    """A failed API request: `status` is the HTTP code, `message` the server's text."""

    status: int
    reason: str
    message: str
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        """Conflicts, expired lists, throttling and server errors are worth retrying;
        invalid (422), forbidden (403) or not found (404) requests are not. Nor is the
        500 that server-side apply answers for an object it cannot merge (duplicate
        keys in a list such as two containers of one name): it is the object's fault."""
        if self.status == 500 and "failed to create typed patch object" in self.message:
            return False
        return self.status in RETRYABLE or self.status == 0

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}"


def load_api_client(kubeconfig: str | None = None, connections: int = 10) -> client.ApiClient:
    """The one login decision: in-cluster credentials when running in a pod (and no
    kubeconfig was given), else the kubeconfig. kopf's own login uses this too."""
    configuration = client.Configuration()
    if in_cluster(kubeconfig):
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    # One pooled connection per worker thread, so workers never wait for a socket.
    configuration.connection_pool_maxsize = max(connections, 1)
    api = client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    return api


def in_cluster(kubeconfig: str | None) -> bool:
    return kubeconfig is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the API server sends whole seconds)."""
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


def resource_of(path: str) -> str:
    """The resource (and subresource) a request path names: jobs, scheduledtasks/status."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    if "namespaces" in parts:
        parts = parts[parts.index("namespaces") + 2 :]
    elif parts and parts[0] in ("api", "apis"):
        parts = parts[2:] if parts[0] == "api" else parts[3:]
    return "/".join(parts[:1] + parts[2:3]) or "-"


# Called after every request with (verb, resource, HTTP code; 0 when no answer).
RequestHook = Callable[[str, str, int], None]


class Kube:
    def __init__(
        self, api: client.ApiClient, timeout: float = 30.0, on_request: RequestHook | None = None
    ) -> None:
        self.api = api
        self.timeout = timeout
        self.on_request = on_request
        self.instance = os.environ.get("POD_NAME") or socket.gethostname()
        # Aggregated Events: (namespace, event name) -> count posted so far. Posted from
        # the Events thread, forgotten from the event loop: the lock keeps them apart.
        self._event_counts: dict[tuple[str, str], int] = {}
        self._event_lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        return self.exchange(method, path, body=body, query=query, content_type=content_type)[0]

    def exchange(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[dict[str, Any], list[str]]:
        """A request: the answer's object, and the texts of its Warning headers."""
        try:
            response, data = send(
                self.api,
                method,
                path,
                body=body,
                query=query,
                content_type=content_type,
                timeout=self.timeout,
            )
        except (OSError, urllib3.exceptions.HTTPError) as err:  # refused, reset, timed out
            self._count(method, path, 0)
            raise ApiError(0, "ConnectionError", str(err)) from err
        self._count(method, path, response.status)
        payload: dict[str, Any] = json.loads(data) if data else {}
        if response.status >= 300:
            raise ApiError(
                response.status,
                str(payload.get("reason") or response.reason),
                str(payload.get("message") or data[:500]),
                retry_after(response.getheader("Retry-After")),
            )
        return payload, warnings(response.headers)

    def _count(self, method: str, path: str, status: int) -> None:
        if self.on_request is not None:
            self.on_request(method, resource_of(path), status)

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    # ScheduledTasks

    def patch_task_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        """Replace status fields through the status subresource; a 409 means the task
        changed since it was read (the caller reads it again)."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        return self.request(
            "PATCH",
            f"{TASKS.format(ns=namespace)}/{quote(name)}/status",
            body=body,
            query={"fieldManager": FIELD_MANAGER},
            content_type="application/merge-patch+json",
        )

    # CronJobs and Jobs

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(f"{CRONJOBS.format(ns=namespace)}/{quote(name)}")

    def apply_cronjob(
        self, cronjob: dict[str, Any], uid: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        """Server-side apply; returns the stored CronJob and the API server's warnings
        about it (Pod Security's warn mode, deprecated fields). With `uid` (an update),
        the uid is a precondition: if the CronJob of that name is another object now,
        the API server refuses the apply ("field is immutable") and changes nothing.
        Without it, the apply creates the CronJob; the caller has made sure the name
        was free."""
        meta = cronjob["metadata"]
        body = {**cronjob, "metadata": {**meta, "uid": uid}} if uid else cronjob
        return self.exchange(
            "PATCH",
            f"{CRONJOBS.format(ns=meta['namespace'])}/{quote(meta['name'])}",
            body=body,
            query={"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"},
            content_type="application/apply-patch+yaml",
        )

    def list_cached(
        self, template: str, namespace: str | None, selector: str = ""
    ) -> list[dict[str, Any]]:
        """Every object at `template` in `namespace`, in pages (see list_page)."""
        items: list[dict[str, Any]] = []
        token: str | None = ""
        while token is not None:
            page, _, token = self.list_page(template, namespace, selector, token)
            items += page
        return items

    def list_page(
        self, template: str, namespace: str | None, selector: str = "", token: str = ""
    ) -> tuple[list[dict[str, Any]], str, str | None]:
        """One page of the objects at `template` in `namespace` (None: all namespaces):
        (items, the list's resourceVersion, the token of the next page or None).

        A consistent list in pages of LIST_PAGE: since Kubernetes 1.31 the API server
        serves it from its watch cache (after asking etcd for its current revision
        only) and the later pages from a snapshot of that cache, so it reads no
        objects from etcd. resourceVersion=0 would be served from the cache too, but
        ignores `limit`: one answer with every object, which at 10,000 tasks is tens
        of megabytes to parse at once."""
        query = {"limit": str(LIST_PAGE)}
        if token:
            query["continue"] = token
        if selector:
            query["labelSelector"] = selector
        page = self.request("GET", collection(template, namespace), query=query)
        meta = page.get("metadata") or {}
        return (
            page.get("items") or [],
            str(meta.get("resourceVersion") or ""),
            meta.get("continue") or None,
        )

    # Leases (leader election)

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(f"{LEASES.format(ns=namespace)}/{quote(name)}")

    def create_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        ns = lease["metadata"]["namespace"]
        return self.request(
            "POST", LEASES.format(ns=ns), body=lease, query={"fieldManager": FIELD_MANAGER}
        )

    def update_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        """PUT with the lease's resourceVersion: a 409 means another replica wrote first."""
        meta = lease["metadata"]
        return self.request(
            "PUT",
            f"{LEASES.format(ns=meta['namespace'])}/{quote(meta['name'])}",
            body=lease,
            query={"fieldManager": FIELD_MANAGER},
        )

    # Events

    def post_event(
        self, obj: dict[str, Any], type_: str, reason: str, message: str, distinct: bool = False
    ) -> None:
        """Record a core/v1 Event on `obj`, as `kubectl describe` shows them.

        Repeats are aggregated as client-go's recorder does: one Event object per
        (object, type, reason), with a fixed name, whose `count`, `lastTimestamp` and
        message are updated; so a task that runs every minute keeps one RunSucceeded
        object, not one per run. A `distinct` Event is aggregated per (object, type,
        reason, message): each text its own object. An Event is best effort: it never
        fails a reconcile."""
        meta = obj["metadata"]
        ns = meta["namespace"]
        series = f"{meta.get('uid')}/{type_}/{reason}" + (f"/{message}" if distinct else "")
        digest = hashlib.sha256(series.encode()).hexdigest()
        name = f"{meta['name']}.{digest[:16]}"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        path = f"{EVENTS.format(ns=ns)}/{name}"
        try:
            count = self._event_counts.get((ns, name))
            if count is None:
                try:
                    self.request(
                        "POST",
                        EVENTS.format(ns=ns),
                        body=self._event(obj, name, type_, reason, message, now),
                        query={"fieldManager": FIELD_MANAGER},
                    )
                    self._set_count((ns, name), 1)
                    return
                except ApiError as err:
                    if err.status != 409:
                        raise
                    existing = self.get(path)  # posted before a restart: continue its count
                    count = int((existing or {}).get("count") or 1)
            patch = {
                "count": count + 1,
                "lastTimestamp": now,
                "message": message[:1024],
                "reportingInstance": self.instance,
            }
            try:
                self.request(
                    "PATCH",
                    path,
                    body=patch,
                    query={"fieldManager": FIELD_MANAGER},
                    content_type="application/merge-patch+json",
                )
                self._set_count((ns, name), count + 1)
            except ApiError as err:
                if err.status != 404:
                    raise
                # It expired (Events live about an hour): start a new one.
                self._set_count((ns, name), None)
                self.request(
                    "POST",
                    EVENTS.format(ns=ns),
                    body=self._event(obj, name, type_, reason, message, now),
                    query={"fieldManager": FIELD_MANAGER},
                )
                self._set_count((ns, name), 1)
        except ApiError as err:
            log.warning("could not post event %s on %s/%s: %s", reason, ns, meta["name"], err)

    def _event(
        self, obj: dict[str, Any], name: str, type_: str, reason: str, message: str, now: str
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", models.API_VERSION),
                "kind": obj.get("kind", models.KIND),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "cronwarden"},
            "reportingComponent": "cronwarden.io/operator",
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }

    def _set_count(self, key: tuple[str, str], count: int | None) -> None:
        with self._event_lock:
            if count is None:
                self._event_counts.pop(key, None)
            else:
                self._event_counts[key] = count

    def forget_events(self, namespace: str, name: str) -> None:
        """Drop the aggregation state of a deleted object's Events."""
        prefix = f"{name}."
        with self._event_lock:
            for key in [
                k for k in self._event_counts if k[0] == namespace and k[1].startswith(prefix)
            ]:
                del self._event_counts[key]
