"""The stall clock (runtime/stall.py): a gap between two beats longer than the
threshold is a stall, counted once; what was read before it is no longer fresh, nor
is anything while the loop has not beaten for longer than the threshold. A fake
monotonic clock, no sleeping."""

from __future__ import annotations

from cronwarden.runtime.stall import STALL_SECONDS, Stalls


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stalls() -> tuple[Stalls, Clock]:
    clock = Clock()
    return Stalls(threshold=5.0, clock=clock), clock


def test_regular_beats_are_no_stall() -> None:
    s, clock = stalls()
    for _ in range(10):
        clock.now += 1.0
        assert s.beat() is None
    assert s.count == 0
    assert s.fresh(0)


def test_a_gap_longer_than_the_threshold_is_one_stall() -> None:
    s, clock = stalls()
    clock.now += 60.0  # SIGSTOP ... SIGCONT
    assert s.beat() == 60.0
    assert s.count == 1
    clock.now += 1.0
    assert s.beat() is None  # the next beat is regular again
    assert s.count == 1


def test_a_gap_of_the_threshold_itself_is_no_stall() -> None:
    s, clock = stalls()
    clock.now += 5.0
    assert s.beat() is None


def test_what_was_read_before_a_stall_is_not_fresh() -> None:
    s, clock = stalls()
    read_at = s.count
    clock.now += 30.0
    s.beat()
    assert not s.fresh(read_at)
    assert s.fresh(s.count)


def test_nothing_is_fresh_while_the_loop_has_not_beaten_after_a_gap() -> None:
    """A worker thread may run before the event loop does once the process is
    continued: the gap alone makes its view stale, before any beat counted it."""
    s, clock = stalls()
    read_at = s.count
    clock.now += 4.0
    assert s.fresh(read_at)
    clock.now += 2.0
    assert not s.fresh(read_at)
    assert s.count == 0  # not counted until the loop beats


def test_a_restart_after_a_pause_on_purpose_is_no_stall() -> None:
    s, clock = stalls()
    clock.now += 3600.0  # a standby that starts its term
    s.restart()
    clock.now += 1.0
    assert s.beat() is None
    assert s.count == 0


def test_the_default_threshold_is_seconds_not_minutes() -> None:
    assert 1.0 < STALL_SECONDS <= 10.0
    assert Stalls().threshold == STALL_SECONDS
