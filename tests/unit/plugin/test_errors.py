"""One line for each failure, saying what failed and whether a retry helps; never
urllib3's own text (pool objects, "Max retries exceeded")."""

from __future__ import annotations

import socket
import ssl

import pytest
import urllib3
from kubernetes import client

from cronwarden.plugin.client import Client, root_cause
from cronwarden.plugin.errors import ClusterError, retry_hint, unreachable

HOST = "https://127.0.0.1:6443"


@pytest.mark.parametrize(
    ("cause", "said"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused (is the cluster"),
        (TimeoutError("timed out"), "no answer from the API server at https://127.0.0.1:6443 "
         "within 5s: retrying may help"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "retrying will not help"),
        (socket.gaierror(-2, "Name or service not known"), "cannot resolve the host"),
        (ConnectionResetError(104, "Connection reset by peer"), "closed the connection: retrying"),
        (OSError(113, "No route to host"), "cannot reach the API server at "
         "https://127.0.0.1:6443: no route to host: retrying may help"),
    ],
)  # fmt: skip
def test_unreachable_says_what_and_whether_to_retry(cause: BaseException, said: str) -> None:
    line = unreachable(HOST, cause, 5.0)
    assert said in line
    assert "\n" not in line
    assert "retry" in line


def test_root_cause_looks_under_urllib3s_wrappers() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    wrapped = urllib3.exceptions.NewConnectionError(None, "Failed to establish")  # type: ignore[arg-type]
    wrapped.__cause__ = refused
    outer = urllib3.exceptions.MaxRetryError(None, "/apis", wrapped)  # type: ignore[arg-type]
    assert root_cause(outer) is refused
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/apis", "read timed out")  # type: ignore[arg-type]
    assert isinstance(root_cause(timeout), TimeoutError)


def test_a_closed_port_gives_one_line_without_urllib3_text() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = 0
    c = Client(client.ApiClient(configuration), "default", 2.0)
    with pytest.raises(ClusterError) as raised:
        c.request("GET", "/version")
    text = str(raised.value)
    assert text == (
        f"cannot connect to the API server at http://127.0.0.1:{port}: connection refused "
        "(is the cluster running?); retrying helps once it listens again"
    )


@pytest.mark.parametrize(
    ("status", "hint"),
    [(503, "retrying later may help"), (429, "retrying later may help"),
     (401, "retrying will not help"), (404, ""), (403, "")],
)  # fmt: skip
def test_http_errors_say_when_a_retry_helps(status: int, hint: str) -> None:
    assert hint in retry_hint(status)
    assert bool(retry_hint(status)) is bool(hint)
