"""The operator's one module that talks to the Kubernetes API: the resources it reads
and writes, on the request path it shares with the kubectl plugin (cronwarden.wire),
over the official client's login and urllib3 connection pool.

Objects travel as plain dicts in their wire form (camelCase JSON), the same form
kopf hands to handlers, so the pure code never depends on client model classes.
API errors are mapped in one place, wire.error_of, to `ApiError` with `retryable` set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client, config

from cronwarden import __version__
from cronwarden.api import models
from cronwarden.core.builder import FIELD_MANAGER
from cronwarden.wire import MERGE_PATCH, Answer, Api, ApiError, decode, error_of, unreachable

__all__ = ["ApiError", "Kube", "load_api_client"]

log = logging.getLogger(__name__)

TASKS = f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{{ns}}/{models.PLURAL}"
CRONJOBS = "/apis/batch/v1/namespaces/{ns}/cronjobs"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
EVENTS = "/api/v1/namespaces/{ns}/events"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
USER_AGENT = f"cronwarden/{__version__}"


def collection(template: str, namespace: str | None) -> str:
    """The path of a collection in one namespace, or across all of them (None)."""
    if namespace is None:
        return template.replace("/namespaces/{ns}", "")
    return template.format(ns=namespace)


# The resourceVersion that makes an apply create-only (Kube.apply_cronjob): etcd's
# revision starts at 1 with nothing stored and every write raises it, so no stored
# object has resourceVersion 1.
CREATE_ONLY = "1"


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


class PoolTransport:
    """wire's transport over the official client: its urllib3 pool (TLS, client
    certificate, proxy) and its bearer token, refreshed by the client as it expires."""

    def __init__(self, api: client.ApiClient, timeout: float | None) -> None:
        self.api = api
        self.server = api.configuration.host.rstrip("/")
        self.timeout = timeout
        self._streams: Any = None  # the watches' pool, made with the first

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Answer:
        auth = self.api.configuration.auth_settings().get("BearerToken")
        if auth and auth["value"]:
            headers = {**headers, auth["key"]: auth["value"]}
        try:
            response = self.api.rest_client.pool_manager.request(
                method,
                self.server + target,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(total=self.timeout),
            )
        except urllib3.exceptions.HTTPError as err:  # refused, reset, timed out, TLS
            raise root_cause(err) from err
        got = list(response.headers.items())
        return Answer(response.status, response.reason or "", got, response.data)

    def stream(self, target: str, headers: dict[str, str], read_timeout: float) -> Any:
        """Open a GET whose answer is read as it arrives (a watch): the urllib3 response,
        unread. On a pool of its own, since a watch holds its connection for minutes."""
        if self._streams is None:
            self._streams = client.ApiClient(self.api.configuration).rest_client.pool_manager
        auth = self.api.configuration.auth_settings().get("BearerToken")
        if auth and auth["value"]:
            headers = {**headers, auth["key"]: auth["value"]}
        try:
            return self._streams.request(
                "GET",
                self.server + target,
                headers=headers,
                timeout=urllib3.Timeout(connect=self.timeout, read=read_timeout),
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as err:
            raise root_cause(err) from err


def root_cause(err: BaseException) -> OSError:
    """The OSError beneath urllib3's wrappers (MaxRetryError, NewConnectionError,
    ProtocolError, SSLError), or one that stands for it."""
    seen: BaseException | None = err
    for _ in range(8):  # urllib3 nests a few deep; a cycle must not hang us
        if seen is None:
            break
        if isinstance(seen, OSError):
            return seen
        if isinstance(seen, urllib3.exceptions.TimeoutError) and seen.__cause__ is None:
            return TimeoutError(str(seen))
        inner = (getattr(seen, "reason", None), *seen.args)
        nested = [a for a in inner if isinstance(a, BaseException)]
        seen = nested[0] if nested else (seen.__cause__ or seen.__context__)
    return ConnectionError(str(err))


# Called after every request with (verb, resource, HTTP code; 0 when no answer).
RequestHook = Callable[[str, str, int], None]


def resource_of(path: str) -> str:
    """The resource (and subresource) a request path names: jobs, scheduledtasks/status."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    if "namespaces" in parts:
        parts = parts[parts.index("namespaces") + 2 :]
    elif parts and parts[0] in ("api", "apis"):
        parts = parts[2:] if parts[0] == "api" else parts[3:]
    return "/".join(parts[:1] + parts[2:3]) or "-"


class Kube:
    def __init__(
        self,
        api: client.ApiClient,
        timeout: float = 30.0,
        on_request: RequestHook | None = None,
        status_manager: str = FIELD_MANAGER,
    ) -> None:
        hook = None
        if on_request is not None:
            count = on_request

            def hook(method: str, path: str, status: int) -> None:
                count(method, resource_of(path), status)

        self.transport = PoolTransport(api, timeout)
        self.api = Api(
            self.transport,
            user_agent=USER_AGENT,
            field_manager=FIELD_MANAGER,
            on_request=hook,
        )
        # The field manager of status writes: one per shard when sharded, so that a
        # task's managedFields name the shard that wrote its status.
        self.status_manager = status_manager
        # Path template -> the server-side shardSelector its lists carry (runtime/shards.py).
        self.shard_selectors: dict[str, str] = {}
        self.instance = os.environ.get("POD_NAME") or socket.gethostname()
        # Aggregated Events: (namespace, event name) -> count posted so far. Posted from
        # the Events thread, forgotten from the event loop: the lock keeps them apart.
        self._event_counts: dict[tuple[str, str], int] = {}
        self._event_lock = threading.Lock()

    # ScheduledTasks

    def patch_task_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        """Replace status fields through the status subresource; a 409 means the task
        changed since it was read (the caller reads it again)."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        return self.api.exchange(
            "PATCH",
            f"{TASKS.format(ns=namespace)}/{quote(name)}/status",
            body=body,
            query={"fieldManager": self.status_manager},
            content_type=MERGE_PATCH,
        )[0]

    # CronJobs and Jobs

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get(f"{CRONJOBS.format(ns=namespace)}/{quote(name)}")

    def apply_cronjob(
        self, cronjob: dict[str, Any], uid: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        """Server-side apply; returns the stored CronJob and the API server's warnings
        about it (Pod Security's warn mode, deprecated fields). With `uid` (an update),
        the uid is a precondition: if the CronJob of that name is another object now,
        the API server refuses the apply ("field is immutable") and changes nothing.

        Without it, the apply only creates: it carries resourceVersion CREATE_ONLY, a
        precondition that no stored object can meet, so if the name is taken (by a
        CronJob this task does not control, or by one the cache has not seen yet) the
        API server answers 409 Conflict and changes nothing. A create ignores the
        resourceVersion. So the "never adopt" check costs no request of its own."""
        meta = cronjob["metadata"]
        extra = {"uid": uid} if uid else {"resourceVersion": CREATE_ONLY}
        body = {**cronjob, "metadata": {**meta, **extra}}
        return self.api.apply(
            f"{CRONJOBS.format(ns=meta['namespace'])}/{quote(meta['name'])}", body
        )

    def list_cached(
        self, template: str, namespace: str | None, selector: str = ""
    ) -> list[dict[str, Any]]:
        """Every object at `template` in `namespace`, in pages (see list_page)."""
        query = {"labelSelector": selector} if selector else None
        return self.api.list_all(collection(template, namespace), query)

    def list_page(
        self,
        template: str,
        namespace: str | None,
        selector: str = "",
        token: str = "",
        *,
        fields: str = "",
    ) -> tuple[list[dict[str, Any]], str, str | None]:
        """One page of the objects at `template` in `namespace` (None: all namespaces):
        (items, the list's resourceVersion, the token of the next page or None).

        A consistent list in pages of wire.LIST_PAGE: since Kubernetes 1.31 the API server
        serves it from its watch cache (after asking etcd for its current revision
        only) and the later pages from a snapshot of that cache, so it reads no
        objects from etcd. resourceVersion=0 would be served from the cache too, but
        ignores `limit`: one answer with every object, which at 10,000 tasks is tens
        of megabytes to parse at once. `fields` is a field selector."""
        query = {"labelSelector": selector} if selector else {}
        if fields:
            query["fieldSelector"] = fields
        if shard := self.shard_selectors.get(template):
            query["shardSelector"] = shard
        page = self.api.list_page(collection(template, namespace), query, token)
        return page.items, page.resource_version, page.next

    def watch(
        self,
        template: str,
        namespace: str | None,
        resource_version: str,
        seconds: float,
        selector: str = "",
        fields: str = "",
    ) -> Watch:
        """Watch the objects at `template` in `namespace` (None: all) from
        `resource_version`, with bookmarks, filtered as list_page filters; the API
        server ends it after `seconds`. Blocking: the caller reads it in a thread of its
        own. A resourceVersion too old raises ApiError 410."""
        path = collection(template, namespace)
        query = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(int(seconds)),
        }
        if selector:
            query["labelSelector"] = selector
        if fields:
            query["fieldSelector"] = fields
        if shard := self.shard_selectors.get(template):
            query["shardSelector"] = shard
        count = self.api.on_request or (lambda *_: None)
        timeout = self.transport.timeout or 30.0
        try:
            response = self.transport.stream(
                f"{path}?{urlencode(query)}", dict(self.api.headers), seconds + timeout
            )
        except OSError as err:
            count("WATCH", path, 0)
            text = unreachable(self.transport.server, err, timeout)
            raise ApiError(0, "ConnectionError", text) from err
        count("WATCH", path, response.status)
        if response.status >= 300:
            data = response.data
            response.release_conn()
            got = list(response.headers.items())
            raise error_of(Answer(response.status, response.reason or "", got, data), decode(data))
        return Watch(response)

    def selects_shards(self, template: str, namespace: str | None, shard_selector: str) -> bool:
        """Whether the API server applies `shard_selector` to lists of `template`: a list
        filtered by it says so in metadata.shardInfo (ShardedListAndWatch, alpha in 1.36);
        an API server without the gate ignores the parameter."""
        page, _ = self.api.exchange(
            "GET",
            collection(template, namespace),
            query={"limit": "1", "shardSelector": shard_selector},
        )
        return bool((page.get("metadata") or {}).get("shardInfo"))

    # Leases (leader election)

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get(f"{LEASES.format(ns=namespace)}/{quote(name)}")

    def create_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        return self.api.create(LEASES.format(ns=lease["metadata"]["namespace"]), lease)

    def update_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        """PUT with the lease's resourceVersion: a 409 means another replica wrote first."""
        meta = lease["metadata"]
        return self.api.update(
            f"{LEASES.format(ns=meta['namespace'])}/{quote(meta['name'])}", lease
        )

    # Events

    def post_event(
        self,
        obj: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        distinct: bool = False,
        times: int = 1,
    ) -> None:
        """Record a core/v1 Event on `obj`, as `kubectl describe` shows them.

        Repeats are aggregated as client-go's recorder does: one Event object per
        (object, type, reason), with a fixed name, whose `count`, `lastTimestamp` and
        message are updated; so a task that runs every minute keeps one RunSucceeded
        object, not one per run. A `distinct` Event is aggregated per (object, type,
        reason, message): each text its own object. `times` Events of the series are
        recorded at once (the Events queue joins those that wait together). An Event is
        best effort: it never fails a reconcile."""
        meta = obj["metadata"]
        ns = meta["namespace"]
        series = f"{meta.get('uid')}/{type_}/{reason}" + (f"/{message}" if distinct else "")
        digest = hashlib.sha256(series.encode()).hexdigest()
        name = f"{meta['name']}.{digest[:16]}"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        path = f"{EVENTS.format(ns=ns)}/{name}"
        event = self._event(obj, name, type_, reason, message, now, times)
        try:
            count = self._event_counts.get((ns, name))
            if count is None:
                try:
                    self.api.create(EVENTS.format(ns=ns), event)
                    self._set_count((ns, name), times)
                    return
                except ApiError as err:
                    if err.status != 409:
                        raise
                    existing = self.api.get(path)  # posted before a restart: continue its count
                    count = int((existing or {}).get("count") or 1)
            patch = {
                "count": count + times,
                "lastTimestamp": now,
                "message": message[:1024],
                "reportingInstance": self.instance,
            }
            try:
                self.api.merge_patch(path, patch)
                self._set_count((ns, name), count + times)
            except ApiError as err:
                if err.status != 404:
                    raise
                # It expired (Events live about an hour): start a new one.
                self._set_count((ns, name), None)
                self.api.create(EVENTS.format(ns=ns), event)
                self._set_count((ns, name), times)
        except ApiError as err:
            log.warning("could not post event %s on %s/%s: %s", reason, ns, meta["name"], err)

    def _event(
        self,
        obj: dict[str, Any],
        name: str,
        type_: str,
        reason: str,
        message: str,
        now: str,
        times: int = 1,
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
            "count": times,
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


class Watch:
    """An open watch: `events()` yields (type, object) as they arrive (in the thread
    that reads it); `close()`, from any thread, ends it."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        try:
            for line in lines(self._response):
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":  # a Status: 410 when the version is too old
                    raise ApiError(
                        int(obj.get("code") or 0),
                        str(obj.get("reason") or "Error"),
                        str(obj.get("message") or ""),
                    )
                yield str(event.get("type") or ""), obj
        except (OSError, urllib3.exceptions.HTTPError, ValueError) as err:
            raise ApiError(0, "ConnectionError", f"the watch broke off: {err}") from err
        finally:
            self._response.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, ValueError):  # already closed
            self._response.shutdown()  # wakes the reading thread


def lines(response: Any) -> Iterator[bytes]:
    """The non-empty lines of a streamed answer, each as soon as it is complete."""
    rest = b""
    for chunk in response.stream(amt=None, decode_content=True):
        rest += chunk
        *complete, rest = rest.split(b"\n")
        yield from (line for line in complete if line.strip())
    if rest.strip():
        yield rest
