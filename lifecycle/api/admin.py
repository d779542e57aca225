"""The API's two writes, for privacy requests: erase a person, export what is held of them.

Behind ``LIFECYCLE_ADMIN_TOKEN`` as a bearer token: a read token (``LIFECYCLE_API_TOKEN``)
cannot erase, and with no admin token set the two routes answer 403 to everyone.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from uuid import UUID

from litestar import get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import PathParameter, QueryParameter

from lifecycle.api import answers
from lifecycle.api.parameters import api_of, problem_spec
from lifecycle.api.problems import ProblemError
from lifecycle.errors import ConfigurationError, LeadNotFoundError
from lifecycle.ledger.erasure import REASON_CODE, forget
from lifecycle.ledger.export import PersonExport, export_person


def bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The bearer token the request carries ("" if none)."""
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    return given if scheme.lower() == "bearer" else ""


def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """Only the admin token passes: none is 401, another (the read token) is 403."""
    token: str | None = connection.app.state.api.admin_token
    given = bearer(connection)
    if not given:
        raise NotAuthorizedException("the admin token is required (LIFECYCLE_ADMIN_TOKEN)")
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise PermissionDeniedException(
            "only LIFECYCLE_ADMIN_TOKEN may do this"
            + ("" if token else " (it is not set: erasing over the API is off)")
        )


ADMIN: Final = {
    400: problem_spec("A parameter is wrong (it is named)."),
    401: problem_spec("The request carries no bearer token."),
    403: problem_spec("The token is not LIFECYCLE_ADMIN_TOKEN (or that is not set)."),
    404: problem_spec("No lead has this id."),
    409: problem_spec("The store keeps personal data in clear: it cannot forget."),
}
Reason = Annotated[
    str,
    QueryParameter(
        pattern=REASON_CODE.pattern,
        max_length=40,
        description="Why, as a code (a-z, 0-9, _ . -); never free text.",
    ),
]


@post(
    "/leads/{lead_id:uuid}/erase",
    guards=[require_admin],
    sync_to_thread=True,
    status_code=200,
    responses=ADMIN,
)
def erase_lead(
    state: State,
    lead_id: Annotated[UUID, PathParameter()],
    suppress: Annotated[
        bool,
        QueryParameter(description="Keep the identities on a suppression list: later facts drop."),
    ] = False,
    reason: Reason = "erasure_request",
) -> answers.Erasure:
    """Forget the person of this lead for good (their keys destroyed; figures unchanged).

    Every lead merged into theirs goes too; their identities are released (``suppress``: kept
    on a suppression list, their later touchpoints dropped). Doing it again changes nothing.
    """
    try:
        erasure = forget(
            api_of(state).engine,
            str(lead_id),
            at=datetime.now(UTC),
            reason_code=reason,
            suppress=suppress,
        )
    except LeadNotFoundError:
        raise ProblemError(404, "no such lead") from None
    except ConfigurationError as error:
        raise ProblemError(409, str(error)) from None
    return answers.Erasure(
        lead_id=erasure.lead_id or lead_id,
        leads=erasure.lead_ids,
        identities=erasure.identities,
        already=erasure.already,
    )


@get(
    "/leads/{lead_id:uuid}/export",
    guards=[require_admin],
    sync_to_thread=True,
    responses={k: v for k, v in ADMIN.items() if k != 409},
)
def export_lead(state: State, lead_id: Annotated[UUID, PathParameter()]) -> PersonExport:
    """Everything held about the person of this lead (access and portability requests)."""
    try:
        return export_person(api_of(state).engine, str(lead_id), at=datetime.now(UTC))
    except LeadNotFoundError:
        raise ProblemError(404, "no such lead") from None


HANDLERS: Final = (erase_lead, export_lead)
