"""The load benchmark's statistics (bench/load_stats.py): nearest-rank percentiles, failure reasons."""

import random

import pytest

from bench.load_stats import percentile, reason, summary


@pytest.mark.parametrize(
    "values, percent, expected",
    [
        ([], 50, None),
        ([7.0], 50, 7.0),
        ([7.0], 95, 7.0),
        ([1, 2, 3, 4], 50, 2),
        ([1, 2, 3, 4, 5], 50, 3),
        (list(range(1, 21)), 95, 19),
        (list(range(1, 101)), 95, 95),
        (list(range(1, 101)), 50, 50),
        (list(range(1, 61)), 95, 57),
        (list(range(1, 101)), 7, 7),  # 0.07 * 100 is 7.000000000000001 in floats
        ([3, 1, 2], 100, 3),
        ([3, 1, 2], 0, 1),
    ],
)
def test_percentile_is_nearest_rank(values, percent, expected):
    assert percentile(values, percent) == expected


def test_percentile_ignores_order():
    values = [random.random() for _ in range(37)]
    assert percentile(values, 95) == percentile(sorted(values), 95) == sorted(values)[35]


def test_summary():
    assert summary(x / 10 for x in range(1, 21)) == {"count": 20, "p50": 1.0, "p95": 1.9, "max": 2.0}
    assert summary([]) == {"count": 0, "p50": None, "p95": None, "max": None}


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            'spawn: Refused: POST users/load017/server: 429 {"status": 429, "message": "Try again in 37 seconds."}',
            "spawn: Refused: POST users/USER/server: 429",
        ),
        (
            "spawn: AssertionError: load017's server did not answer within 60 s: {'last_activity': '2025-01-01'}",
            "spawn: AssertionError: USER's server did not answer within 60 s:",
        ),
        (
            "log in: ConnectionError: <urllib3.connection.HTTPSConnection object at 0x7f3a2b1c>: timed out\nmore",
            "log in: ConnectionError: <urllib3.connection.HTTPSConnection object at 0x?>: timed out",
        ),
        ("stop: AssertionError: ", "stop: AssertionError:"),
    ],
)
def test_reason_is_the_same_for_every_user(text, expected):
    assert reason(text, "load017") == expected
    assert reason(text.replace("load017", "load018"), "load018") == expected


def test_reason_keeps_names_that_only_contain_the_user():
    assert reason("GET users/load0171: 404", "load017") == "GET users/load0171: 404"
