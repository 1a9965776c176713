"""What the API server's audit log says the operator's replicas did: ground truth on
who wrote what and when, and on what the server refused, independent of the
operator's own view (its logs, its metrics).

hack/cluster.sh makes the API server audit the requests of the ServiceAccounts of
the chaos namespaces that run the operator as its own user (harness/accounts.py),
at the Metadata level, to AUDIT_LOG. `read()` parses it; the rest is pure:

- `terms()`: who held the Lease when, from the recorder's `lease` records (each
  term starts at the holder's acquireTime and ends when the next one starts, or
  when the Lease is released);
- `foreign_writes()`: successful writes by a replica outside its own terms: a
  standby that writes, or a leader that writes after it lost the Lease;
- `failovers()`: from a leader's death (or freeze) to the next term, and to the
  new leader's first write;
- `throttling()`: requests, 429s, and follow-ups of a refused request sooner than
  the Retry-After the server sent.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.setup import STATE_DIR

AUDIT_LOG = (
    STATE_DIR
    / "kwok"
    / "clusters"
    / os.environ.get("CLUSTER_NAME", "cronwarden")
    / "logs"
    / "audit.log"
)
WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# kube-apiserver's priority and fairness answers a request it rejects with
# "429 Too Many Requests" and "Retry-After: 1" (seen with curl on the local API server).
RETRY_AFTER = 1.0
EXAMPLES = 8


def ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Request:
    user: str
    verb: str
    resource: str  # with its subresource: scheduledtasks/status
    namespace: str
    name: str
    code: int
    received: float
    done: float  # stageTimestamp of ResponseComplete: when the answer was complete

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.user, self.verb, self.resource, self.namespace, self.name)

    def write(self) -> bool:
        return self.verb in WRITES and 200 <= self.code < 300

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.resource}/{self.name}".replace("//", "/")
        return f"{self.verb} {where} -> {self.code}"


def parse(line: str) -> Request | None:
    """One audit event (ResponseComplete only: the stage that carries the answer)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if event.get("stage") != "ResponseComplete":
        return None
    ref = event.get("objectRef") or {}
    resource = ref.get("resource", "")
    if ref.get("subresource"):
        resource += "/" + ref["subresource"]
    received, done = ts(event.get("requestReceivedTimestamp")), ts(event.get("stageTimestamp"))
    if received is None or done is None:
        return None
    return Request(
        user=(event.get("user") or {}).get("username", ""),
        verb=event.get("verb", ""),
        resource=resource or event.get("requestURI", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        code=int((event.get("responseStatus") or {}).get("code") or 0),
        received=received,
        done=done,
    )


def size(path: Path) -> int:
    """Where the log ends now: read() from there reads only what comes after."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read(path: Path, users: set[str], since: float, offset: int = 0) -> list[Request]:
    """The requests of `users` answered at or after `since`, in order of their answer,
    from byte `offset` on (the log holds every earlier run too)."""
    if not path.exists():
        return []
    out = []
    with open(path, errors="replace") as f:
        f.seek(offset if offset <= size(path) else 0)  # a new cluster: a new log
        for line in f:
            req = parse(line)
            if req is not None and req.user in users and req.done >= since:
                out.append(req)
    return sorted(out, key=lambda r: r.done)


# Leader election


@dataclass
class Term:
    holder: str  # the Lease's holderIdentity: <replica>_<random>
    start: float
    end: float = float("inf")

    @property
    def replica(self) -> str:
        return self.holder.rsplit("_", 1)[0]


def terms(records: list[dict[str, Any]], lease: str) -> list[Term]:
    """The Lease's terms from the recorder's `lease` records of that Lease."""
    out: list[Term] = []
    for r in sorted((r for r in records if r.get("lease") == lease), key=lambda r: r["t"]):
        current = out[-1] if out and out[-1].end == float("inf") else None
        holder = r.get("holder")
        start = ts(r.get("acquired")) or r["t"]
        if current is not None and holder == current.holder and start == current.start:
            continue
        if current is not None:
            current.end = r["t"] if holder is None else min(start, r["t"])
        if holder:
            out.append(Term(holder, start))
    return out


def holder_at(all_terms: list[Term], t: float) -> Term | None:
    for term in all_terms:
        if term.start <= t < term.end:
            return term
    return None


def foreign_writes(
    requests: list[Request], all_terms: list[Term], users: dict[str, str]
) -> list[str]:
    """Every successful write by a replica while it did not hold the Lease."""
    out = []
    for req in requests:
        if not req.write() or req.user not in users:
            continue
        term = holder_at(all_terms, req.done)
        if term is None or term.replica != users[req.user]:
            holder = term.holder if term else "nobody"
            out.append(f"{users[req.user]} at {req.done:.3f}: {req} while {holder} held the Lease")
    return out


def failovers(
    faults: list[tuple[float, str]],
    all_terms: list[Term],
    requests: list[Request],
    users: dict[str, str],
) -> list[dict[str, Any]]:
    """For each (moment the leader died or froze, its identity): seconds until another
    holder's term started, and until that holder's first successful write that is
    not of the Lease."""
    out = []
    for at, victim in faults:
        term = next((t for t in all_terms if t.start > at and t.holder != victim), None)
        row: dict[str, Any] = {"at": at, "victim": victim, "new_leader": None}
        row["lease_taken_seconds"] = row["first_write_seconds"] = None
        if term is not None:
            row["new_leader"] = term.holder
            row["lease_taken_seconds"] = round(term.start - at, 2)
            first = next(
                (
                    r
                    for r in requests
                    if r.write()
                    and users.get(r.user) == term.replica
                    and r.done >= term.start
                    and not r.resource.startswith("leases")
                ),
                None,
            )
            if first is not None and first.done < term.end:
                row["first_write_seconds"] = round(first.done - at, 2)
                row["first_write"] = str(first)
        out.append(row)
    return out


# Throttling


def throttling(requests: list[Request], retry_after: float = RETRY_AFTER) -> dict[str, Any]:
    """Requests and 429s; and each follow-up of a refused request (same user, verb and
    object) with how long after the refusal it was sent: sooner than Retry-After is
    not honouring it."""
    rejected = [r for r in requests if r.code == 429]
    by_key: dict[tuple[str, ...], list[Request]] = defaultdict(list)
    for r in sorted(requests, key=lambda r: r.received):
        by_key[r.key].append(r)
    gaps: list[float] = []
    early: list[str] = []
    for series in by_key.values():
        for refused, after in itertools.pairwise(series):
            if refused.code != 429:
                continue
            gap = after.received - refused.done
            gaps.append(gap)
            if gap < retry_after and len(early) < EXAMPLES:
                early.append(f"{refused}; sent again {gap:.2f}s later")
    soon = sum(1 for g in gaps if g < retry_after)
    by_verb: dict[str, int] = defaultdict(int)
    for r in rejected:
        by_verb[f"{r.verb} {r.resource}"] += 1
    return {
        "requests": len(requests),
        "rejected_429": len(rejected),
        "rejected_by_request": dict(by_verb),
        "retries_after_429": len(gaps),
        "retries_sooner_than_retry_after": soon,
        "retry_gap_min_seconds": round(min(gaps), 3) if gaps else None,
        "retry_examples_sooner": early,
    }
