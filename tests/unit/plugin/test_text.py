"""Ages and tables look like kubectl's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cronwarden.plugin.text import human_duration, table


@pytest.mark.parametrize(
    ("delta", "shown"),
    [
        (timedelta(seconds=-5), "<invalid>"),
        (timedelta(seconds=-1), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(minutes=3), "3m"),
        (timedelta(minutes=3, seconds=20), "3m20s"),
        (timedelta(minutes=47), "47m"),
        (timedelta(minutes=179), "179m"),
        (timedelta(hours=2), "120m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=20), "3h20m"),
        (timedelta(hours=30), "30h"),
        (timedelta(days=3, hours=4), "3d4h"),
        (timedelta(days=5), "5d"),
        (timedelta(days=45), "45d"),
        (timedelta(days=365 * 2 + 30), "2y30d"),
        (timedelta(days=365 * 9), "9y"),
    ],
)
def test_ages_are_kubectls_human_duration(delta: timedelta, shown: str) -> None:
    assert human_duration(delta) == shown


def test_table_pads_like_kubectls_tabwriter() -> None:
    text = table(["NAME", "STATE"], [["a", "OK"], ["a-much-longer-name", "Late"]])
    assert text.splitlines() == [
        "NAME                 STATE",
        "a                    OK",
        "a-much-longer-name   Late",
    ]
    # Short columns are at least 10 wide, as kubectl's.
    assert table(["A", "B"], [["x", "y"]]).splitlines()[1] == "x         y"
