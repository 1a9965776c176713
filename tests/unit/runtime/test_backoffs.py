"""kopf retries a failed watch or list with the operator's delays: at most 3 s apart
(plus jitter), so the operator is blind for that long at most once the API server is
back (README "Reliability", D2), and a fresh, jittered draw for each request."""

from __future__ import annotations

import itertools

from cronwarden.runtime.handlers import RetryBackoffs
from cronwarden.settings import API_RETRY_BACKOFFS, API_RETRY_JITTER


def test_the_delays_are_capped_and_jittered() -> None:
    backoffs = RetryBackoffs(API_RETRY_BACKOFFS, API_RETRY_JITTER)
    # kopf iterates once per failed request
    draws = [list(itertools.islice(backoffs, len(API_RETRY_BACKOFFS))) for _ in range(50)]
    for draw in draws:
        assert len(draw) == len(API_RETRY_BACKOFFS)
        for got, base in zip(draw, API_RETRY_BACKOFFS, strict=True):
            assert base * (1 - API_RETRY_JITTER) <= got <= base * (1 + API_RETRY_JITTER)
    assert max(itertools.chain(*draws)) <= 3.0 * (1 + API_RETRY_JITTER)
    assert len({draw[-1] for draw in draws}) > 1  # not in step
    assert 20 <= sum(API_RETRY_BACKOFFS) <= 30


def test_the_retries_never_end() -> None:
    """kopf escalates a request after its last delay, and a watch request escalated on
    a 503 (a restarted API server installing its paths) or a 403 stopped the operator
    (README, D4): the last delay repeats, and kopf shows no count of attempts."""
    backoffs = RetryBackoffs(API_RETRY_BACKOFFS, API_RETRY_JITTER)
    later = list(itertools.islice(backoffs, 1000))[len(API_RETRY_BACKOFFS) :]
    assert len(later) == 1000 - len(API_RETRY_BACKOFFS)
    last = API_RETRY_BACKOFFS[-1]
    assert all(last * (1 - API_RETRY_JITTER) <= d <= last * (1 + API_RETRY_JITTER) for d in later)
    assert not hasattr(backoffs, "__len__")
