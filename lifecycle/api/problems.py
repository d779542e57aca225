"""Errors as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException

from lifecycle.contracts import inbound

log = structlog.get_logger()

MEDIA_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    500: "Internal server error",
}


class Problem(msgspec.Struct, omit_defaults=True, kw_only=True):
    """An RFC 9457 problem; ``parameter`` (an extension) names the query parameter at fault."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    parameter: str | None = None


class ProblemError(Exception):
    """Raised by a handler to answer with a problem."""

    def __init__(self, status: int, detail: str, *, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.parameter = parameter


def bad_parameter(parameter: str, detail: str) -> ProblemError:
    """A 400 naming the query parameter at fault."""
    return ProblemError(400, f"{parameter}: {detail}", parameter=parameter)


def _respond(request: Request[Any, Any, Any], problem: Problem, **headers: str) -> Response[Any]:
    problem.instance = request.url.path
    return Response(
        content=msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=headers or None,
    )


def _on_problem(request: Request[Any, Any, Any], error: ProblemError) -> Response[Any]:
    problem = Problem(
        title=_TITLES.get(error.status, "Error"),
        status=error.status,
        detail=error.detail,
        parameter=error.parameter,
    )
    return _respond(request, problem)


# What a parameter's pattern means, for people (Litestar's message quotes the regex instead):
# the contract's patterns, and those the routes add.
PATTERN_REASONS: dict[str, str] = dict(inbound.PATTERN_REASONS)
_REGEX = re.compile(r"Expected `str` matching regex '(?P<pattern>.*)'", re.DOTALL)


def _readable(message: object) -> str:
    found = _REGEX.fullmatch(str(message))
    if found is None:
        return str(message)
    pattern = found["pattern"].encode().decode("unicode_escape")
    return PATTERN_REASONS.get(pattern, "is not in the form /schema/openapi.json gives")


def _on_validation(request: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    # Litestar lists what failed as [{"key": ..., "message": ..., "source": ...}].
    failures = error.extra if isinstance(error.extra, list) else []
    first = failures[0] if failures and isinstance(failures[0], dict) else {}
    parameter = first.get("key")
    detail = f"{parameter}: {_readable(first.get('message'))}" if parameter else error.detail
    return _respond(
        request, Problem(title="Bad request", status=400, detail=detail, parameter=parameter)
    )


def _on_http(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    problem = Problem(
        title=_TITLES.get(error.status_code, "Error"), status=error.status_code, detail=error.detail
    )
    # The exception's own headers stay (a 405's Allow, say).
    headers = dict(error.headers or {})
    if isinstance(error, NotAuthorizedException):
        headers["WWW-Authenticate"] = 'Bearer realm="lifecycle"'
    return _respond(request, problem, **headers)


def _on_crash(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.error("api_request_failed", path=request.url.path, exc_info=error)
    problem = Problem(title="Internal server error", status=500, detail="see the server log")
    return _respond(request, problem)


HANDLERS: dict[int | type[Exception], Any] = {
    ProblemError: _on_problem,
    ValidationException: _on_validation,
    HTTPException: _on_http,
    Exception: _on_crash,
}
