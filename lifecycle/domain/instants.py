"""Instants as people and tools write them: RFC 3339 times and dates, in the years we keep.

One reader for the API's ``as_of``/``from``/``to`` and the CLI's ``--as-of``/``--since``/
``--until``. It takes what RFC 3339 allows and ``datetime.fromisoformat`` does not (a lower-case
``t`` or ``z``, a space for the ``T``, a leap second) and, for people typing, a time without
seconds or offset (read as UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final

# Event times outside these years are typos (and overflow date arithmetic).
EARLIEST_YEAR: Final = 1970
LATEST_YEAR: Final = 2999
# The years above as a pattern on the text, for the published schemas.
YEARS_PATTERN: Final = r"^(19[7-9][0-9]|2[0-9]{3})-"

_INSTANT: Final = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})?)?",
    re.ASCII,
)
_OFFSET: Final = re.compile(r"([+-])(\d{2}):(\d{2})", re.ASCII)
LEAP_SECOND: Final = 60
_LAST_MINUTE: Final = time(23, 59, 59)


def parse_instant(text: str) -> datetime:
    """The instant ``text`` names (UTC when it has no offset); a ``ValueError`` saying why not.

    A leap second (``23:59:60`` UTC) is read as the last microsecond before it, and digits past
    the microsecond are dropped: Python's datetimes have neither. Both keep the order of
    instants (a later text is never read as an earlier instant), though two may become one.
    """
    found = _INSTANT.fullmatch(text)
    if found is None:
        raise ValueError("is not an RFC 3339 time or a date")
    try:
        day = datetime.fromisoformat(found["date"])
        second = int(found["second"] or 0)
        moment = day.replace(
            hour=int(found["hour"] or 0),
            minute=int(found["minute"] or 0),
            second=min(second, LEAP_SECOND - 1),
            microsecond=int((found["fraction"] or "0")[:6].ljust(6, "0")),
            tzinfo=_zone(found["offset"]),
        )
    except ValueError:
        raise ValueError("is not a time of the calendar") from None
    if second > LEAP_SECOND:
        raise ValueError("is not a time of the calendar")
    if second == LEAP_SECOND:
        # Leap seconds are inserted at the end of a UTC day only.
        if moment.astimezone(UTC).time().replace(microsecond=0) != _LAST_MINUTE:
            raise ValueError("is not a time of the calendar (a leap second ends a UTC day)")
        moment = moment.replace(microsecond=999_999)
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return moment


def _zone(offset: str | None) -> timezone:
    if offset in (None, "Z", "z"):
        return UTC
    sign, hours, minutes = _OFFSET.fullmatch(offset).groups()  # type: ignore[union-attr]
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError("offset out of range")
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def month_of(day: date) -> str:
    """``YYYY-MM`` of a date or an instant (as its UTC calendar has it, for UTC instants).

    Faster than ``strftime``, which the views called for every touch they credit.
    """
    return f"{day.year:04d}-{day.month:02d}"
