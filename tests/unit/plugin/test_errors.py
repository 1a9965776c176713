"""One line for each failure, saying what failed and whether a retry helps."""

from __future__ import annotations

import socket
import ssl

import pytest

from cronwarden.plugin.client import Client
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


def test_a_closed_port_gives_one_line() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = Client(f"http://127.0.0.1:{port}", "default", 2.0)
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
