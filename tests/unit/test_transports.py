"""The two transports under cronwarden.wire, the plugin's (http.client) and the
operator's (the official client's urllib3 pool), against one local HTTP server: each
carries the same request and brings back the same answer, and says "no answer" with the
same OSError, so that wire.Api behaves alike on both."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from cronwarden.plugin.client import HTTPTransport
from cronwarden.runtime.kube import Kube, PoolTransport
from cronwarden.wire import Api, ApiError, Transport

Seen = tuple[str, str, dict[str, str], bytes]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the API server
    seen: list[Seen]
    close_after: bool

    def do_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append((self.command, self.path, dict(self.headers.items()), body))
        if self.path.startswith("/forbidden"):
            data = b'{"kind":"Status","reason":"Forbidden","message":"no","code":403}'
            self.send_response(403)
        elif "/proxy-down/" in self.path:  # a load balancer's page, not a Status
            self.send_response(503)
            data = b"<html><body>no healthy upstream</body></html>"
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        else:
            data = b'{"kind":"Job"}'
            self.send_response(201)
            self.send_header("Warning", '299 - "first"')
            self.send_header("Warning", '299 - "second, with a comma"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if self.close_after:  # as a server whose idle timeout passed, unannounced
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_any

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[Handler]]]:
    handler = type("H", (Handler,), {"seen": [], "close_after": False})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def plugin_transport(url: str) -> Transport:
    return HTTPTransport(url, 5.0)


def operator_transport(url: str) -> Transport:
    configuration = client.Configuration(host=url)
    configuration.api_key = {"authorization": "Bearer t0ken"}
    return PoolTransport(client.ApiClient(configuration), 5.0)


TRANSPORTS: list[Callable[[str], Transport]] = [plugin_transport, operator_transport]


@pytest.mark.parametrize("make", TRANSPORTS, ids=["plugin", "operator"])
def test_each_transport_carries_the_request_and_the_answer(
    make: Callable[[str], Transport], server: tuple[str, type[Handler]]
) -> None:
    url, handler = server
    api = Api(make(url), user_agent="test/1", field_manager="tester")
    obj, warnings = api.exchange(
        "PATCH", "/apis/batch/v1/jobs/x", body={"a": 1}, query={"fieldManager": "tester"}
    )
    assert obj == {"kind": "Job"}
    assert warnings == ["first", "second, with a comma"]
    [(method, path, headers, body)] = handler.seen
    assert (method, path, body) == (
        "PATCH",
        "/apis/batch/v1/jobs/x?fieldManager=tester",
        b'{"a":1}',
    )
    assert headers["User-Agent"] == "test/1"
    assert headers["Content-Type"] == "application/json"
    if make is operator_transport:
        assert headers["authorization"] == "Bearer t0ken"
    with pytest.raises(ApiError) as raised:
        api.exchange("GET", "/forbidden")
    assert (raised.value.status, raised.value.reason, raised.value.message) == (
        403,
        "Forbidden",
        "no",
    )


@pytest.mark.parametrize("make", TRANSPORTS, ids=["plugin", "operator"])
def test_a_closed_port_is_the_same_one_line_from_each(make: Callable[[str], Transport]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = Api(make(f"http://127.0.0.1:{port}"), user_agent="t", field_manager="t")
    with pytest.raises(ApiError) as raised:
        api.exchange("GET", "/version")
    assert (raised.value.status, raised.value.retryable) == (0, True)
    assert raised.value.message == (
        f"cannot connect to the API server at http://127.0.0.1:{port}: connection refused "
        "(is the cluster running?); retrying helps once it listens again"
    )


def test_the_plugin_transport_keeps_the_servers_path_and_redials_a_closed_connection(
    server: tuple[str, type[Handler]],
) -> None:
    url, handler = server
    handler.close_after = True
    transport = HTTPTransport(url + "/k8s/clusters/c-1/", 5.0)
    for _ in range(2):  # the second request finds the kept connection closed
        answer = transport.send("GET", "/api/v1/pods", {}, None)
        assert answer.status == 201
    assert [path for _, path, _, _ in handler.seen] == ["/k8s/clusters/c-1/api/v1/pods"] * 2


def test_the_operator_reads_a_proxys_error_page_as_a_retryable_error(
    server: tuple[str, type[Handler]],
) -> None:
    url, _ = server
    kube = Kube(client.ApiClient(client.Configuration(host=url)), timeout=5.0)
    with pytest.raises(ApiError) as raised:
        kube.get_cronjob("proxy-down", "x")
    err = raised.value
    assert (err.status, err.retryable) == (503, True)
    assert err.message == "<html><body>no healthy upstream</body></html>"
