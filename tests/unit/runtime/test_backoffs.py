"""kopf retries a failed watch or list with the operator's delays: at most 3 s apart
(plus jitter), so the operator is blind for that long at most once the API server is
back (README "Reliability", D2), and a fresh, jittered draw for each request."""

from __future__ import annotations

import itertools

from cronwarden.runtime.handlers import RetryBackoffs
from cronwarden.settings import API_RETRY_BACKOFFS, API_RETRY_JITTER


def test_the_delays_are_capped_and_jittered() -> None:
    backoffs = RetryBackoffs(API_RETRY_BACKOFFS, API_RETRY_JITTER)
    assert len(backoffs) == len(API_RETRY_BACKOFFS)
    draws = [list(backoffs) for _ in range(50)]  # kopf iterates once per failed request
    for draw in draws:
        assert len(draw) == len(API_RETRY_BACKOFFS)
        for got, base in zip(draw, API_RETRY_BACKOFFS, strict=True):
            assert base * (1 - API_RETRY_JITTER) <= got <= base * (1 + API_RETRY_JITTER)
    assert max(itertools.chain(*draws)) <= 3.0 * (1 + API_RETRY_JITTER)
    assert len({draw[-1] for draw in draws}) > 1  # not in step
    # Before escalating to kopf's watcher, which starts the watch again.
    assert 20 <= sum(API_RETRY_BACKOFFS) <= 30
