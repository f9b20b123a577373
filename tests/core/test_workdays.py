"""Japanese working days for the clarification and resubmission windows."""

from __future__ import annotations

import datetime as dt

import pytest

from mamori.core.workdays import add_working_days, is_working_day

D = dt.date


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2026, 11, 20), True),  # Friday
        (D(2026, 11, 21), False),  # Saturday
        (D(2026, 11, 22), False),  # Sunday
        (D(2026, 11, 23), False),  # Labour Thanksgiving Day (Monday)
        (D(2026, 11, 24), True),
        (D(2026, 5, 6), False),  # substitute holiday for Constitution Day on a Sunday
        (D(2026, 9, 22), False),  # the "citizens' holiday" between two holidays
        (D(2026, 12, 29), True),  # banks still open
        (D(2026, 12, 30), True),
        (D(2026, 12, 31), False),  # year-end closure, 31 December to 3 January
        (D(2027, 1, 1), False),
        (D(2027, 1, 2), False),
        (D(2027, 1, 3), False),
        (D(2027, 1, 4), True),
        (D(2026, 1, 2), False),  # a Friday, but inside the closure
    ],
)
def test_is_working_day(day, working):
    assert is_working_day(day) is working


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (D(2026, 11, 18), 2, D(2026, 11, 20)),  # Wednesday + 2 = Friday
        (D(2026, 11, 19), 2, D(2026, 11, 24)),  # over the weekend and the Monday holiday
        (D(2026, 11, 20), 1, D(2026, 11, 24)),
        (D(2026, 11, 21), 1, D(2026, 11, 24)),  # from a Saturday
        (D(2026, 4, 30), 2, D(2026, 5, 7)),  # Golden Week
        (D(2026, 12, 30), 1, D(2027, 1, 4)),  # over the year-end closure
        (D(2026, 12, 30), 2, D(2027, 1, 5)),
        (D(2026, 11, 20), 0, D(2026, 11, 20)),  # zero days: the same day
    ],
)
def test_add_working_days(start, days, expected):
    assert add_working_days(start, days) == expected
    assert is_working_day(expected) or days == 0


def test_the_start_day_itself_never_counts():
    # Even when the start is a working day, one working day later is the next one.
    assert add_working_days(D(2026, 11, 24), 1) == D(2026, 11, 25)


def test_negative_days_are_refused():
    with pytest.raises(ValueError, match="must not be negative"):
        add_working_days(D(2026, 11, 20), -1)
