"""The plugin's one module that talks to the Kubernetes API: HTTPS with the standard
library (http.client, ssl), so that the plugin runs without the kubernetes client and
pydantic, which it needs (a single file, hack/plugin_zipapp.py).

Login as kubectl decides it (`kubeconfig`). Objects travel as plain dicts in their wire
form. Every failure is a `ClusterError` with a one-line message for the user that says
whether a retry helps.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from cronwarden import __version__
from cronwarden.plugin import kubeconfig, names
from cronwarden.plugin.errors import ClusterError, NotFound, retry_hint, unreachable

TASKS = f"/apis/{names.GROUP}/{names.VERSION}"
CRONJOBS = "/apis/batch/v1/namespaces/{ns}/cronjobs"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
EVENTS = "/api/v1/namespaces/{ns}/events"
SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
FIELD_MANAGER = "kubectl-cronwarden"
USER_AGENT = f"kubectl-cronwarden/{__version__}"
LIST_PAGE = 500


def tasks_path(namespace: str | None) -> str:
    if namespace is None:
        return f"{TASKS}/{names.PLURAL}"
    return f"{TASKS}/namespaces/{quote(namespace)}/{names.PLURAL}"


def tls_context(login: kubeconfig.Login) -> ssl.SSLContext:
    """The server's CA (or none checked, with insecure-skip-tls-verify) and our client
    certificate, from files or kubeconfig data."""
    ctx = ssl.create_default_context(cafile=login.ca_file, cadata=login.ca_data)
    if login.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if login.cert_pem and login.key_pem:
        # ssl loads a certificate and key from files only: a private directory, gone at once.
        with tempfile.TemporaryDirectory(prefix="kubectl-cronwarden-") as tmp:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            for name, pem in ((cert, login.cert_pem), (key, login.key_pem)):
                with open(os.open(name, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                    f.write(pem)
            ctx.load_cert_chain(cert, key)
    elif login.cert_file:
        ctx.load_cert_chain(login.cert_file, login.key_file)
    return ctx


def connect(
    kubeconfig_path: str | None,
    context: str | None,
    *,
    timeout: float | None = 30.0,
    user: str | None = None,
) -> Client:
    """A client for the cluster, and the namespace to use when none is given; `timeout`
    bounds each request (None: no bound), `user` is impersonated (kubectl's --as)."""
    login = kubeconfig.load(kubeconfig_path, context)
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **login.headers}
    if user:
        headers["Impersonate-User"] = user
    try:
        ctx = tls_context(login) if login.server.startswith("https:") else None
    except (OSError, ssl.SSLError) as err:
        raise ClusterError(f"cannot load the kubeconfig's certificates: {err}") from None
    return Client(login.server, login.namespace, timeout, headers, ctx, login.tls_server_name)


class _HTTPS(http.client.HTTPSConnection):
    """HTTPS whose TLS server name may differ from the host dialled (tls-server-name)."""

    server_name = ""

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            sock, server_hostname=self.server_name or self.host
        )


@dataclass
class Client:
    server: str  # https://host:port, as in the kubeconfig
    namespace: str  # the context's namespace, or the pod's
    timeout: float | None = 30.0
    headers: dict[str, str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None
    tls_server_name: str | None = None
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            url = urlsplit(self.server)
            host, port = url.hostname or "localhost", url.port
            if url.scheme == "https":
                self._conn = _HTTPS(host, port, timeout=self.timeout, context=self.tls)
                self._conn.server_name = self.tls_server_name or host
            else:
                self._conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        return self._conn

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            conn = self._connection()
            prefix = urlsplit(self.server).path.rstrip("/")
            target = prefix + path + ("?" + urlencode(query) if query else "")
            try:
                conn.request(method, target, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                self._conn = None
                # A kept-alive connection the server closed meanwhile: once more, anew.
                stale = isinstance(err, (http.client.RemoteDisconnected, BrokenPipeError))
                if attempt == 1 and stale:
                    continue
                cause = err if isinstance(err, OSError) else ConnectionResetError(str(err))
                raise ClusterError(unreachable(self.server, cause, self.timeout)) from None
        try:
            payload: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"message": raw[:300].decode(errors="replace")}
        if response.status >= 300:
            reason = str(payload.get("reason") or response.reason)
            message = str(payload.get("message") or response.reason)
            kind = NotFound if response.status == 404 else ClusterError
            raise kind(
                f"Error from server ({reason}): {message}{retry_hint(response.status)}",
                response.status,
                reason,
                payload.get("details") or {},
            )
        return payload

    def list_all(self, path: str, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params = {"limit": str(LIST_PAGE), **(query or {})}
        while True:
            page = self.request("GET", path, query=params)
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            params = {**params, "continue": token}

    # ScheduledTasks

    def get_task(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.request("GET", f"{tasks_path(namespace)}/{quote(name)}")
        except NotFound as err:
            if not err.details.get("name"):  # the resource itself is not served
                raise NotFound(
                    f"the ScheduledTask API ({names.API_VERSION}) is not served by this "
                    "cluster: is the cronwarden CRD installed?",
                    404,
                ) from None
            raise NotFound(
                f'scheduledtask "{name}" not found in namespace "{namespace}"', 404, "NotFound"
            ) from None

    def list_tasks(
        self, namespace: str | None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        try:
            return self.list_all(
                tasks_path(namespace), {"labelSelector": selector} if selector else None
            )
        except NotFound:
            raise NotFound(
                f"the ScheduledTask API ({names.API_VERSION}) is not served by this cluster: "
                "is the cronwarden CRD installed?",
                404,
            ) from None

    def patch_task(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._merge_patch(f"{tasks_path(namespace)}/{quote(name)}", patch)

    # CronJobs, Jobs, Events

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"{CRONJOBS.format(ns=quote(namespace))}/{quote(name)}")
        except NotFound:
            return None

    def patch_cronjob(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._merge_patch(f"{CRONJOBS.format(ns=quote(namespace))}/{quote(name)}", patch)

    def list_jobs(self, namespace: str) -> list[dict[str, Any]]:
        return self.list_all(JOBS.format(ns=quote(namespace)))

    def create_job(self, job: dict[str, Any]) -> dict[str, Any]:
        ns = job["metadata"]["namespace"]
        return self.request(
            "POST", JOBS.format(ns=quote(ns)), body=job, query={"fieldManager": FIELD_MANAGER}
        )

    def list_events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """Events whose involvedObject is the ScheduledTask `name`."""
        selector = f"involvedObject.kind={names.KIND},involvedObject.name={name}"
        return self.list_all(EVENTS.format(ns=quote(namespace)), {"fieldSelector": selector})

    def whoami(self) -> str | None:
        """The user the API server authenticates us as (a SelfSubjectReview), or None."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            review = self.request("POST", SELF_SUBJECT_REVIEWS, body=body)
        except ClusterError:
            return None
        name = ((review.get("status") or {}).get("userInfo") or {}).get("username")
        return str(name) if name else None

    def _merge_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.request(
            "PATCH",
            path,
            body=patch,
            query={"fieldManager": FIELD_MANAGER},
            content_type="application/merge-patch+json",
        )
