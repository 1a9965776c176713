"""The plugin's one module that talks to the Kubernetes API: the resources it reads and
writes, on the request path it shares with the operator (cronwarden.wire), over HTTPS
with the standard library (http.client, ssl), so that the plugin runs without the
kubernetes client and pydantic (a single file, hack/plugin_zipapp.py).

Login as kubectl decides it (`kubeconfig`). Objects travel as plain dicts in their wire
form. A request that fails raises `wire.ApiError`, whose one line (errors.describe) says
whether a retry helps.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from cronwarden import __version__
from cronwarden.plugin import kubeconfig, names
from cronwarden.plugin.errors import ClusterError
from cronwarden.wire import Answer, Api, ApiError

TASKS = f"/apis/{names.GROUP}/{names.VERSION}"
CRONJOBS = "/apis/batch/v1/namespaces/{ns}/cronjobs"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
EVENTS = "/api/v1/namespaces/{ns}/events"
SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
FIELD_MANAGER = "kubectl-cronwarden"
USER_AGENT = f"kubectl-cronwarden/{__version__}"
NOT_SERVED = (
    f"the ScheduledTask API ({names.API_VERSION}) is not served by this cluster: "
    "is the cronwarden CRD installed?"
)


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
    headers = dict(login.headers)
    if user:
        headers["Impersonate-User"] = user
    try:
        ctx = tls_context(login) if login.server.startswith("https:") else None
    except (OSError, ssl.SSLError) as err:
        raise ClusterError(f"cannot load the kubeconfig's certificates: {err}") from None
    transport = HTTPTransport(login.server, timeout, ctx, login.tls_server_name)
    api = Api(transport, user_agent=USER_AGENT, field_manager=FIELD_MANAGER, headers=headers)
    return Client(api, login.namespace)


class _HTTPS(http.client.HTTPSConnection):
    """HTTPS whose TLS server name may differ from the host dialled (tls-server-name)."""

    server_name = ""

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            sock, server_hostname=self.server_name or self.host
        )


@dataclass
class HTTPTransport:
    """One kept-alive connection to `server` (https://host:port[/prefix], as in the
    kubeconfig), opened again when the server has closed it."""

    server: str
    timeout: float | None = 30.0
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

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Answer:
        target = urlsplit(self.server).path.rstrip("/") + target
        attempt = 1
        while True:
            conn = self._connection()
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                return Answer(response.status, response.reason, response.getheaders(), data)
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                self._conn = None
                # A kept-alive connection the server closed meanwhile: once more, anew.
                stale = isinstance(err, (http.client.RemoteDisconnected, BrokenPipeError))
                if attempt == 1 and stale:
                    attempt = 2
                    continue
                if isinstance(err, OSError):
                    raise
                raise ConnectionResetError(str(err)) from err


@dataclass
class Client:
    api: Api
    namespace: str  # the context's namespace, or the pod's

    # ScheduledTasks

    def get_task(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.api.exchange("GET", f"{tasks_path(namespace)}/{quote(name)}")[0]
        except ApiError as err:
            if err.status != 404:
                raise
            if not err.details.get("name"):  # the resource itself is not served
                raise ClusterError(NOT_SERVED) from None
            raise ClusterError(
                f'scheduledtask "{name}" not found in namespace "{namespace}"'
            ) from None

    def list_tasks(
        self, namespace: str | None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        try:
            return self.api.list_all(
                tasks_path(namespace), {"labelSelector": selector} if selector else None
            )
        except ApiError as err:
            if err.status == 404:
                raise ClusterError(NOT_SERVED) from None
            raise

    def patch_task(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.api.merge_patch(f"{tasks_path(namespace)}/{quote(name)}", patch)

    # CronJobs, Jobs, Events

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get(f"{CRONJOBS.format(ns=quote(namespace))}/{quote(name)}")

    def patch_cronjob(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        path = f"{CRONJOBS.format(ns=quote(namespace))}/{quote(name)}"
        return self.api.merge_patch(path, patch)

    def list_jobs(self, namespace: str) -> list[dict[str, Any]]:
        return self.api.list_all(JOBS.format(ns=quote(namespace)))

    def create_job(self, job: dict[str, Any]) -> dict[str, Any]:
        return self.api.create(JOBS.format(ns=quote(job["metadata"]["namespace"])), job)

    def list_events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """Events whose involvedObject is the ScheduledTask `name`."""
        selector = f"involvedObject.kind={names.KIND},involvedObject.name={name}"
        return self.api.list_all(EVENTS.format(ns=quote(namespace)), {"fieldSelector": selector})

    def whoami(self) -> str | None:
        """The user the API server authenticates us as (a SelfSubjectReview), or None."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            review = self.api.exchange("POST", SELF_SUBJECT_REVIEWS, body=body)[0]
        except ApiError:
            return None
        name = ((review.get("status") or {}).get("userInfo") or {}).get("username")
        return str(name) if name else None
