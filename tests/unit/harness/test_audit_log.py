"""The figures the chaos harness takes from the API server's audit log: who wrote while
not holding the Lease, failover times, and 429s with their follow-ups. Times are
seconds after T0."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hack"))

from harness.audit import Request, failovers, foreign_writes, parse, read, terms, throttling

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC).timestamp()
R1, R2 = "system:serviceaccount:chaos:cw-cronwarden", "system:serviceaccount:chaos:cw-2"
USERS = {R1: "r1", R2: "r2"}


def iso(at: float) -> str:
    return datetime.fromtimestamp(T0 + at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(
    at: float, user: str = R1, verb: str = "patch", code: int = 200, **ref: str
) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "stage": "ResponseComplete",
        "verb": verb,
        "user": {"username": user, "groups": ["system:serviceaccounts"]},
        "objectRef": {
            "resource": "scheduledtasks",
            "subresource": "status",
            "namespace": "chaos",
            "name": "c-0001",
            **ref,
        },
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": iso(at - 0.01),
        "stageTimestamp": iso(at),
    }


def req(at: float, user: str = R1, verb: str = "patch", code: int = 200, **ref: str) -> Request:
    parsed = parse(json.dumps(event(at, user, verb, code, **ref)))
    assert parsed is not None
    return parsed


def lease(at: float, holder: str | None, acquired: float) -> dict[str, Any]:
    return {
        "t": T0 + at,
        "kind": "lease",
        "lease": "cw-cronwarden",
        "holder": holder,
        "acquired": iso(acquired),
    }


# r1 leads from 0 to 30 (frozen from 12; r2 takes over at 30), r2 until it releases at 80.
RECORDS = [
    lease(0.2, "r1_aa", 0),
    lease(30.3, "r2_bb", 30),
    lease(80.1, None, 30),
]


def test_an_audit_line_is_parsed_at_its_answer_and_other_stages_are_skipped(
    tmp_path: Path,
) -> None:
    got = req(5, code=429)
    assert (got.user, got.verb, got.resource, got.name, got.code) == (
        R1,
        "patch",
        "scheduledtasks/status",
        "c-0001",
        429,
    )
    assert got.done == T0 + 5
    assert abs(got.received - (T0 + 4.99)) < 1e-3
    assert not got.write(), "a refused write wrote nothing"
    started = {**event(6), "stage": "ResponseStarted"}
    log = tmp_path / "audit.log"
    lines = [event(7, R2), started, event(3), event(9, "someone-else")]
    log.write_text("\n".join(json.dumps(e) for e in lines) + "\nnot json\n")
    assert [(r.user, r.done - T0) for r in read(log, {R1, R2}, since=T0 + 1)] == [(R1, 3), (R2, 7)]
    assert read(tmp_path / "missing.log", {R1}, since=T0) == []
    first = len(json.dumps(lines[0])) + 1  # an earlier run's line: skipped from its end
    assert [r.done - T0 for r in read(log, {R1, R2}, since=T0, offset=first)] == [3]


def test_terms_follow_the_lease_holder_and_end_at_a_release() -> None:
    got = [
        (t.holder, round(t.start - T0, 3), round(t.end - T0, 3))
        for t in terms(RECORDS, "cw-cronwarden")
    ]
    assert got == [("r1_aa", 0, 30), ("r2_bb", 30, 80.1)]
    assert terms(RECORDS, "another-lease") == []


def test_writes_outside_the_writers_terms_are_foreign() -> None:
    all_terms = terms(RECORDS, "cw-cronwarden")
    requests = [
        req(10),  # r1 while it leads
        req(31),  # r1 after r2 took over: the frozen leader writing after its thaw
        req(31.5, verb="get"),  # reads are not writes
        req(32, code=409),  # refused: wrote nothing
        req(20, R2, verb="create", resource="events", subresource=""),  # r2 as standby
        req(40, R2),  # r2 while it leads
        req(90, R2),  # nobody holds the Lease
    ]
    foreign = foreign_writes(requests, all_terms, USERS)
    assert len(foreign) == 3, foreign
    assert foreign[0].startswith("r1 at")
    assert "while r2_bb held the Lease" in foreign[0]
    assert "create chaos/events/c-0001 -> 200 while r1_aa held" in foreign[1]
    assert "while nobody held the Lease" in foreign[2]


def test_failover_runs_from_the_death_to_the_next_term_and_its_first_write() -> None:
    all_terms = terms(RECORDS, "cw-cronwarden")
    requests = [
        req(30.1, R2, verb="update", resource="leases", subresource=""),  # the takeover
        req(33.5, R2),  # the new leader's first write
        req(35, R2),
    ]
    [row] = failovers([(T0 + 12, "r1_aa")], all_terms, requests, USERS)
    assert (row["new_leader"], row["lease_taken_seconds"], row["first_write_seconds"]) == (
        "r2_bb",
        18.0,
        21.5,
    )
    [none] = failovers([(T0 + 50, "r2_bb")], all_terms, requests, USERS)
    assert none["new_leader"] is None
    assert none["lease_taken_seconds"] is None


def test_429_follow_ups_sooner_than_retry_after_are_counted() -> None:
    requests = [
        req(10, code=429),
        req(10.5, code=429),  # 0.49 s after the first refusal: too soon
        req(11.7),  # 1.19 s after the second: honoured
        req(20, code=429, name="c-0002"),  # never sent again
        req(21, verb="create", code=201, resource="events", subresource=""),
    ]
    got = throttling(requests, retry_after=1.0)
    assert got["requests"] == 5
    assert got["rejected_429"] == 3
    assert got["rejected_by_request"] == {"patch scheduledtasks/status": 3}
    assert got["retries_after_429"] == 2
    assert got["retries_sooner_than_retry_after"] == 1
    assert got["retry_gap_min_seconds"] == 0.49
    assert got["retry_examples_sooner"] == [
        "patch chaos/scheduledtasks/status/c-0001 -> 429; sent again 0.49s later"
    ]
