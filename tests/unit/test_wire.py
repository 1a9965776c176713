"""The one request path (cronwarden.wire) with a fake transport: how requests are built,
how answers become objects, warnings or ApiErrors, and how lists are paged."""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from cronwarden.wire import LIST_PAGE, Answer, Api, ApiError, unreachable

SERVER = "https://127.0.0.1:6443"
STATUS_409 = {
    "kind": "Status",
    "status": "Failure",
    "reason": "Conflict",
    "message": 'Operation cannot be fulfilled on leases "cronwarden": the object has been '
    "modified; please apply your changes to the latest version and try again",
    "details": {"name": "cronwarden", "kind": "leases"},
    "code": 409,
}


def status(code: int, reason: str, message: str, **details: Any) -> bytes:
    body = {"kind": "Status", "reason": reason, "message": message, "code": code}
    return json.dumps({**body, "details": details} if details else body).encode()


class FakeTransport:
    """Answers from a list, in order, and keeps what it was sent."""

    server = SERVER
    timeout = 5.0

    def __init__(self, *answers: Answer | OSError) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict[str, str], bytes | None]] = []

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Answer:
        self.sent.append((method, target, headers, body))
        answer = self.answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer

    def query(self, i: int = -1) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.sent[i][1]).query))


def ok(obj: dict[str, Any] | None = None, *headers: tuple[str, str]) -> Answer:
    return Answer(200, "OK", [("Content-Type", "application/json"), *headers],
                  json.dumps(obj or {}).encode())  # fmt: skip


def api(*answers: Answer | OSError, **kw: Any) -> tuple[Api, FakeTransport]:
    transport = FakeTransport(*answers)
    return Api(transport, user_agent="test/1", field_manager="tester", **kw), transport


# Building requests


def test_a_read_sends_the_path_query_and_headers() -> None:
    a, t = api(ok({"kind": "Job"}), headers={"Impersonate-User": "bob"})
    got = a.exchange("GET", "/apis/batch/v1/jobs", query={"labelSelector": "a=b,c"})
    assert got == ({"kind": "Job"}, [])
    [(method, target, headers, body)] = t.sent
    assert (method, body) == ("GET", None)
    assert target == "/apis/batch/v1/jobs?labelSelector=a%3Db%2Cc"
    assert headers == {
        "Accept": "application/json",
        "User-Agent": "test/1",
        "Impersonate-User": "bob",
    }


@pytest.mark.parametrize(
    ("write", "method", "content_type", "extra"),
    [
        ("create", "POST", "application/json", {}),
        ("update", "PUT", "application/json", {}),
        ("merge_patch", "PATCH", "application/merge-patch+json", {}),
        ("apply", "PATCH", "application/apply-patch+yaml",
         {"force": "true", "fieldValidation": "Strict"}),
    ],
)  # fmt: skip
def test_writes_carry_the_field_manager_and_their_content_type(
    write: str, method: str, content_type: str, extra: dict[str, str]
) -> None:
    a, t = api(ok({"metadata": {"name": "x"}}, ("Warning", '299 - "deprecated"')))
    obj = {"metadata": {"name": "x"}, "spec": {"suspend": True}}
    got = getattr(a, write)("/api/v1/namespaces/ns/things/x", obj)
    [(sent_method, _, headers, body)] = t.sent
    assert sent_method == method
    assert headers["Content-Type"] == content_type
    assert json.loads(body or b"") == obj
    assert t.query() == {"fieldManager": "tester", **extra}
    if write == "apply":  # the one write whose warnings a caller keeps
        assert got == ({"metadata": {"name": "x"}}, ["deprecated"])
    else:
        assert got == {"metadata": {"name": "x"}}


# Answers


def test_warning_headers_come_back_with_the_object() -> None:
    a, _ = api(
        ok(
            {"kind": "CronJob"},
            ("Warning", '299 - "would violate PodSecurity \\"restricted:latest\\": privileged"'),
            ("warning", '299 - "a, b", 299 - "c"'),
        )
    )
    obj, warnings = a.exchange("PATCH", "/x", body={})
    assert obj == {"kind": "CronJob"}
    assert warnings == ['would violate PodSecurity "restricted:latest": privileged', "a, b", "c"]
    b, _ = api(ok({}))
    assert b.exchange("GET", "/x") == ({}, [])


def answer(code: int, line: str, body: bytes, *headers: tuple[str, str]) -> Answer:
    return Answer(code, line, list(headers), body)


TYPED_PATCH = 'failed to create typed patch object: .spec.containers: duplicate [name="a"]'
# (the answer; then status, reason, message, retryable, Retry-After and details of the error)
ERRORS = {
    "404 NotFound, details kept": (
        answer(404, "Not Found", status(404, "NotFound", "x not found", name="x", kind="jobs")),
        (404, "NotFound", "x not found", False, None, {"name": "x", "kind": "jobs"}),
    ),
    "409 Conflict": (
        answer(409, "Conflict", json.dumps(STATUS_409).encode()),
        (409, "Conflict", STATUS_409["message"], True, None, STATUS_409["details"]),
    ),
    "410 Expired": (
        answer(410, "Gone", status(410, "Expired", "too old resource version")),
        (410, "Expired", "too old resource version", True, None, {}),
    ),
    "429 with Retry-After": (
        answer(429, "Too Many Requests", status(429, "TooManyRequests", "slow down"),
               ("Retry-After", "3")),
        (429, "TooManyRequests", "slow down", True, 3.0, {}),
    ),
    "503 from a proxy, no Status": (
        answer(503, "Service Unavailable", b"<html>upstream down</html>\n",
               ("Content-Type", "text/html")),
        (503, "Service Unavailable", "<html>upstream down</html>", True, None, {}),
    ),
    "500, the object's own fault": (
        answer(500, "Internal Server Error", status(500, "InternalError", TYPED_PATCH)),
        (500, "InternalError", TYPED_PATCH, False, None, {}),
    ),
    "500, Retry-After unreadable": (
        answer(500, "Internal Server Error", status(500, "InternalError", "etcd leader changed"),
               ("Retry-After", "soon")),
        (500, "InternalError", "etcd leader changed", True, None, {}),
    ),
    "422 Invalid": (
        answer(422, "Unprocessable Entity", status(422, "Invalid", "spec.schedule: Invalid")),
        (422, "Invalid", "spec.schedule: Invalid", False, None, {}),
    ),
    "403 Forbidden": (
        answer(403, "Forbidden", status(403, "Forbidden", "cannot list")),
        (403, "Forbidden", "cannot list", False, None, {}),
    ),
    "401 with no body": (
        answer(401, "Unauthorized", b""),
        (401, "Unauthorized", "Unauthorized", False, None, {}),
    ),
}  # fmt: skip


@pytest.mark.parametrize(("answer", "expected"), ERRORS.values(), ids=ERRORS.keys())
def test_an_error_answer_is_one_api_error(answer: Answer, expected: tuple[Any, ...]) -> None:
    a, _ = api(answer)
    with pytest.raises(ApiError) as raised:
        a.exchange("GET", "/x")
    err = raised.value
    assert (err.status, err.reason, err.message, err.retryable, err.retry_after, err.details) == (
        expected
    )


def test_get_is_none_for_404_only() -> None:
    a, _ = api(
        Answer(404, "Not Found", [], status(404, "NotFound", "gone")),
        Answer(403, "Forbidden", [], status(403, "Forbidden", "no")),
    )
    assert a.get("/x") is None
    with pytest.raises(ApiError, match="403 Forbidden: no"):
        a.get("/x")


def test_no_answer_is_status_0_with_one_line_and_worth_a_retry() -> None:
    seen: list[tuple[str, str, int]] = []
    a, _ = api(
        ConnectionRefusedError(111, "Connection refused"),
        ok({}),
        on_request=lambda *call: seen.append(call),
    )
    with pytest.raises(ApiError) as raised:
        a.exchange("GET", "/apis/batch/v1/jobs", query={"limit": "1"})
    err = raised.value
    assert (err.status, err.reason, err.retryable) == (0, "ConnectionError", True)
    assert err.message == (
        f"cannot connect to the API server at {SERVER}: connection refused (is the cluster "
        "running?); retrying helps once it listens again"
    )
    assert isinstance(err.__cause__, ConnectionRefusedError)
    a.exchange("POST", "/api/v1/namespaces/a/events", body={})
    assert seen == [("GET", "/apis/batch/v1/jobs", 0), ("POST", "/api/v1/namespaces/a/events", 200)]


@pytest.mark.parametrize(
    ("cause", "said"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused (is the cluster"),
        (TimeoutError("timed out"), f"no answer from the API server at {SERVER} "
         "within 5s: retrying may help"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "retrying will not help"),
        (socket.gaierror(-2, "Name or service not known"), "cannot resolve the host"),
        (ConnectionResetError(104, "Connection reset by peer"), "closed the connection: retrying"),
        (OSError(113, "No route to host"), f"cannot reach the API server at {SERVER}: "
         "no route to host: retrying may help"),
    ],
)  # fmt: skip
def test_unreachable_says_what_and_whether_to_retry(cause: BaseException, said: str) -> None:
    line = unreachable(SERVER, cause, 5.0)
    assert said in line
    assert "\n" not in line
    assert "retry" in line


# Lists


def page(names: list[str], token: str = "", rv: str = "7") -> Answer:
    items = [{"metadata": {"name": n}} for n in names]
    meta = {"resourceVersion": rv, **({"continue": token} if token else {})}
    return ok({"kind": "JobList", "metadata": meta, "items": items})


def test_a_list_follows_continue_to_the_last_page() -> None:
    a, t = api(page(["a", "b"], "t1"), page(["c"], "t2"), page([]))
    items = a.list_all("/apis/batch/v1/jobs", {"labelSelector": "x=y"})
    assert [i["metadata"]["name"] for i in items] == ["a", "b", "c"]
    limit = str(LIST_PAGE)
    assert [t.query(i) for i in range(3)] == [
        {"labelSelector": "x=y", "limit": limit},
        {"labelSelector": "x=y", "limit": limit, "continue": "t1"},
        {"labelSelector": "x=y", "limit": limit, "continue": "t2"},
    ]


def test_one_page_says_its_resource_version_and_the_next_token() -> None:
    a, t = api(page(["a"], "t1", rv="42"), page(["b"], rv="42"))
    first = a.list_page("/api/v1/events")
    assert (first.items, first.resource_version, first.next) == ([{"metadata": {"name": "a"}}],
                                                                 "42", "t1")  # fmt: skip
    last = a.list_page("/api/v1/events", token="t1")
    assert (last.next, t.query()["continue"]) == (None, "t1")


def test_an_expired_continue_token_is_a_retryable_error() -> None:
    a, _ = api(page(["a"], "t1"), Answer(410, "Gone", [], status(410, "Expired", "expired")))
    with pytest.raises(ApiError) as raised:
        a.list_all("/apis/batch/v1/jobs")
    assert (raised.value.status, raised.value.retryable) == (410, True)
