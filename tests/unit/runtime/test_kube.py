"""How runtime/kube.py maps the API server's answers, against a local HTTP server that
answers as kube-apiserver does when it refuses or fails a request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from kubernetes import client

from cronwarden.runtime.kube import ApiError, Kube

# What kube-apiserver's priority and fairness answers when it rejects a request
# (captured from the local API server with curl): plain text, not a Status object.
APF_BODY = b"Too many requests, please try again later.\n"


class Answer:
    status = 429
    content_type = "text/plain; charset=utf-8"
    body = APF_BODY
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}


class Handler(BaseHTTPRequestHandler):
    def answer(self) -> None:
        self.send_response(Answer.status)
        self.send_header("Content-Type", Answer.content_type)
        self.send_header("Content-Length", str(len(Answer.body)))
        for name, value in Answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(Answer.body)

    do_GET = do_PUT = do_POST = do_PATCH = answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def kube() -> Iterator[Kube]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_port}")
    try:
        yield Kube(client.ApiClient(configuration), timeout=5)
    finally:
        server.shutdown()


def test_a_429_from_priority_and_fairness_is_a_retryable_api_error_with_its_retry_after(
    kube: Kube,
) -> None:
    """Its body is plain text. Before the shared request path (cronwarden.wire), it was
    read as JSON and raised JSONDecodeError: a reconcile "crashed" with a traceback,
    and the leader elector, which catches ApiError only, would end for good."""
    with pytest.raises(ApiError) as refused:
        kube.get_lease("chaos", "cw-cronwarden")
    assert refused.value.status == 429
    assert refused.value.retry_after == 1.0
    assert refused.value.retryable
    assert "Too many requests" in refused.value.message
    with pytest.raises(ApiError) as again:
        kube.patch_task_status("chaos", "c-0001", {"succeeded": 1}, "42")
    assert again.value.status == 429
