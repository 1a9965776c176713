"""Tasks the operator refuses to act on."""

from __future__ import annotations

import pytest

from cronwarden.core.tenancy import refusal

EXCLUDED = frozenset({"kube-system", "cronwarden"})


@pytest.mark.parametrize(
    ("namespace", "rank", "limit", "reason"),
    [
        ("team-a", 0, 0, None),
        ("team-a", 5000, 0, None),  # 0: no limit
        ("team-a", 9, 10, None),
        ("team-a", 10, 10, "TaskLimitExceeded"),
        ("kube-system", 0, 0, "NamespaceExcluded"),
        ("cronwarden", 0, 10, "NamespaceExcluded"),
    ],
)
def test_refusal(namespace: str, rank: int, limit: int, reason: str | None) -> None:
    problem = refusal(namespace, rank, EXCLUDED, limit)
    assert (problem.reason if problem else None) == reason
    if problem is not None:
        assert namespace in problem.message


def test_limit_message_is_stable_whatever_the_rank() -> None:
    """Ready's message only changes with the limit, so the Warning Event is posted once."""
    first, later = refusal("t", 10, (), 10), refusal("t", 11, (), 10)
    assert first is not None
    assert later is not None
    assert first.message == later.message
