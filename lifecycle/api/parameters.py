"""What the API's handlers share: how parameters are documented and read, the problems they give.

Each parameter is said in the OpenAPI document as exactly as a JSON Schema can say it:
schemathesis (tests/e2e/test_api_fuzzing.py) sends what it allows and what it does not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Final

from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import ParameterKwarg, QueryParameter

from lifecycle.api.problems import MEDIA_TYPE, Problem, bad_parameter
from lifecycle.api.state import Api
from lifecycle.domain.instants import EARLIEST_YEAR, LATEST_YEAR, YEARS_PATTERN, parse_instant

_INSTANT_SCHEMA: Final = {
    "type": None,
    "oneOf": None,
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": YEARS_PATTERN},
        {"type": "string", "format": "date", "pattern": YEARS_PATTERN},
    ],
}
_DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def problem_spec(description: str) -> ResponseSpec:
    """A problem answer, as the document shows it."""
    return ResponseSpec(
        Problem, description=description, media_type=MEDIA_TYPE, generate_examples=False
    )


BAD_REQUEST: Final = {400: problem_spec("A parameter is wrong (it is named).")}
NO_TOKEN: Final = {
    401: problem_spec("LIFECYCLE_API_TOKEN is set and the request lacks it as a bearer token.")
}


def api_of(state: State) -> Api:
    """The handlers' shared parts."""
    api: Api = state.api
    return api


def instant_parameter(name: str, meaning: str) -> ParameterKwarg:
    """An RFC 3339 time or a date."""
    return QueryParameter(
        name=name,
        description=f"{meaning}: an RFC 3339 time (UTC when it has no offset) or a date, "
        f"years {EARLIEST_YEAR} to {LATEST_YEAR}.",
        schema_extra=_INSTANT_SCHEMA,
    )


def day_parameter(name: str, meaning: str) -> ParameterKwarg:
    """A day (UTC), as YYYY-MM-DD."""
    return QueryParameter(
        name=name,
        description=f"{meaning}: a date (UTC), years {EARLIEST_YEAR} to {LATEST_YEAR}.",
        schema_extra={
            "type": "string",
            "oneOf": None,
            "format": "date",
            "pattern": YEARS_PATTERN,
        },
    )


def one_of(values: Sequence[str], meaning: str) -> ParameterKwarg:
    """One of a closed list of words."""
    return QueryParameter(
        description=f"{meaning}: one of {', '.join(values)}.",
        schema_extra={"type": "string", "oneOf": None, "enum": list(values)},
    )


def read_instant(parameter: str, text: str | None) -> datetime | None:
    """An RFC 3339 time or a date (UTC when it has no offset), or a 400 naming the parameter."""
    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError as error:
        raise bad_parameter(parameter, str(error)) from None


def read_day(parameter: str, text: str | None) -> date | None:
    """A date (YYYY-MM-DD) in the years we keep, or a 400 naming the parameter."""
    if text is None:
        return None
    if not _DAY.fullmatch(text):
        raise bad_parameter(parameter, "expected a date, YYYY-MM-DD")
    moment = read_instant(parameter, text)
    assert moment is not None  # noqa: S101 (text is not None)
    return moment.date()


def read_choice(parameter: str, value: str | None, allowed: Sequence[str]) -> str | None:
    """``value`` if it is one of ``allowed``, or a 400 naming the parameter."""
    if value is not None and value not in allowed:
        raise bad_parameter(parameter, f"must be one of {', '.join(allowed)}")
    return value
