"""The plugin's one module that talks to the Kubernetes API, with the official client.

Login as kubectl decides it: --kubeconfig, else $KUBECONFIG (a list of files is
merged), else ~/.kube/config, else the pod's service account; --context picks a
context, whose namespace is the default one. Objects travel as plain dicts in their
wire form. Every failure is a `ClusterError` with a message for the user.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from cronwarden import __version__
from cronwarden.api import models
from cronwarden.plugin.errors import ClusterError, NotFound, retry_hint, unreachable
from cronwarden.wire import send

TASKS = f"/apis/{models.GROUP}/{models.VERSION}"
CRONJOBS = "/apis/batch/v1/namespaces/{ns}/cronjobs"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
EVENTS = "/api/v1/namespaces/{ns}/events"
SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
FIELD_MANAGER = "kubectl-cronwarden"
USER_AGENT = f"kubectl-cronwarden/{__version__}"
LIST_PAGE = 500


def tasks_path(namespace: str | None) -> str:
    if namespace is None:
        return f"{TASKS}/{models.PLURAL}"
    return f"{TASKS}/namespaces/{quote(namespace)}/{models.PLURAL}"


def _kubeconfig(given: str | None) -> str | None:
    """The kubeconfig file(s) kubectl would read, or None for in-cluster credentials."""
    if given:
        return given
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    default = Path.home() / ".kube" / "config"
    if default.exists() or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return str(default)
    return None


def connect(
    kubeconfig: str | None,
    context: str | None,
    *,
    timeout: float | None = 30.0,
    user: str | None = None,
) -> Client:
    """A client for the cluster, and the namespace to use when none is given; `timeout`
    bounds each request (None: no bound), `user` is impersonated (kubectl's --as)."""
    configuration = client.Configuration()
    path = _kubeconfig(kubeconfig)
    try:
        if path is None:
            config.load_incluster_config(client_configuration=configuration)
            namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        else:
            if not any(Path(p).expanduser().exists() for p in path.split(os.pathsep) if p):
                raise ClusterError(
                    f"no kubeconfig at {path}: give --kubeconfig, set KUBECONFIG, "
                    "or run in a pod with a service account"
                )
            config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration
            )
            contexts, current = config.list_kube_config_contexts(config_file=path)
            chosen = next((c for c in contexts if c.get("name") == context), current)
            namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    except (ConfigException, OSError) as err:
        raise ClusterError(f"cannot load the cluster configuration: {err}") from None
    api = client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    if user:
        api.set_default_header("Impersonate-User", user)
    return Client(api, namespace, timeout)


def root_cause(err: BaseException) -> BaseException:
    """What urllib3 wraps: the OSError (refused, timed out, TLS, name resolution) under
    MaxRetryError, NewConnectionError and the like, or `err` itself."""
    seen: set[int] = set()
    current: BaseException | None = err
    found = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            return current
        if isinstance(current, urllib3.exceptions.TimeoutError):
            found = TimeoutError(str(current))
        reason = getattr(current, "reason", None)
        nxt = reason if isinstance(reason, BaseException) else None
        current = nxt or current.__cause__ or current.__context__
    return found


@dataclass
class Client:
    api: client.ApiClient
    namespace: str  # the context's namespace, or the pod's
    timeout: float | None = 30.0

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
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
        except ApiException as err:
            raise ClusterError(f"{err.status} {err.reason}", err.status or 0) from None
        except (OSError, urllib3.exceptions.HTTPError) as err:
            host = self.api.configuration.host
            raise ClusterError(unreachable(host, root_cause(err), self.timeout)) from None
        try:
            payload: dict[str, Any] = json.loads(data) if data else {}
        except ValueError:
            payload = {"message": data[:300].decode(errors="replace")}
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
                    f"the ScheduledTask API ({models.API_VERSION}) is not served by this "
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
                f"the ScheduledTask API ({models.API_VERSION}) is not served by this cluster: "
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
        selector = f"involvedObject.kind={models.KIND},involvedObject.name={name}"
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
