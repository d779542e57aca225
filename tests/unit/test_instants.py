"""Instants read as RFC 3339 writes them (and as people type them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.domain.instants import parse_instant

OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@given(
    st.datetimes(
        # (hypothesis takes naive bounds, and puts the offsets on)
        min_value=datetime(1970, 1, 2),  # noqa: DTZ001
        max_value=datetime(2999, 12, 30),  # noqa: DTZ001
        timezones=OFFSETS,
    )
)
def test_any_rfc_3339_time_python_writes_reads_back_as_the_same_instant(moment):
    assert parse_instant(moment.isoformat()) == moment


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01t09:30:00z", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("2026-03-01 09:30", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("2026-03-01T09:30:00.1234567+01:00", datetime(2026, 3, 1, 8, 30, 0, 123456, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2016-12-31T23:59:60.5Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2017-01-01T00:59:60+01:00", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_lower_case_letters_a_space_a_leap_second_and_no_offset_are_read(text, instant):
    assert parse_instant(text) == instant


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("yesterday", "is not an RFC 3339 time or a date"),
        ("2026-03-01T09", "is not an RFC 3339 time or a date"),
        ("2026-03-01T09:30:00Zjunk", "is not an RFC 3339 time or a date"),
        ("2026-02-30", "is not a time of the calendar"),
        ("2026-03-01T24:00:00Z", "is not a time of the calendar"),
        ("2026-03-01T09:30:61Z", "is not a time of the calendar"),
        ("2026-03-01T09:30:00+24:00", "is not a time of the calendar"),
        ("2020-01-01T12:34:60Z", "a leap second ends a UTC day"),
        ("1998-12-31T23:59:60+01:00", "a leap second ends a UTC day"),
        ("1969-12-31", "must be between the years 1970 and 2999"),
        ("3000-01-01", "must be between the years 1970 and 2999"),
    ],
)
def test_what_is_no_instant_is_refused_saying_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_instant(text)


def test_texts_in_order_are_read_as_instants_in_order_though_two_may_become_one():
    texts = [
        "2016-12-31T23:59:59.9999994Z",
        "2016-12-31T23:59:59.9999996Z",
        "2016-12-31T23:59:60Z",
        "2016-12-31T23:59:60.5Z",
        "2017-01-01T00:00:00Z",
    ]
    read = [parse_instant(text) for text in texts]

    assert read == sorted(read)
    assert read[0] == read[1] == read[2] == read[3] < read[4]
