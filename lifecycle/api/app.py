"""The web application: ``/api`` (token-guarded), the dashboard at ``/``, metrics and health."""

from __future__ import annotations

import hmac
from importlib.resources import files
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError
from litestar import HttpMethod, Litestar, MediaType, Response, Router, get, route
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from lifecycle.api import admin, answers, sources
from lifecycle.api.admin import bearer
from lifecycle.api.pipeline import PipelineCollector, partition_states
from lifecycle.api.problems import HANDLERS
from lifecycle.api.routes import api_router
from lifecycle.api.state import Api

DASHBOARD = Path(str(files("lifecycle.api").joinpath("dashboard")))
PAGE = (DASHBOARD / "index.html").read_bytes()
# Litestar adds "; charset=utf-8" to text types itself (once: Prometheus, which parses the
# header with Go's mime.ParseMediaType, refuses a parameter given twice).
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


def _require_token(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """With LIFECYCLE_API_TOKEN set, every /api request carries it as a bearer token."""
    api: Api = connection.app.state.api
    if not api.token:
        return
    given = bearer(connection).encode()
    # Compared in constant time, so that response times do not leak the token. The admin
    # token reads too.
    if not any(t and hmac.compare_digest(given, t.encode()) for t in (api.token, api.admin_token)):
        raise NotAuthorizedException("a valid bearer token is required (LIFECYCLE_API_TOKEN)")


def _plain_path(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """A path with a NUL names no file (the file system would refuse it with an error)."""
    if "\x00" in connection.scope["path"]:
        raise NotFoundException("no such file")


@get("/", media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
def dashboard() -> Response[bytes]:
    """The dashboard page (its script reads the API)."""
    return Response(PAGE, media_type=MediaType.HTML)


# HEAD too: monitors ask before they scrape (the body is dropped for HEAD).
@route(
    "/metrics",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    media_type=PROMETHEUS_TEXT,
    sync_to_thread=True,
)
def metrics(state: State) -> Response[bytes]:
    """Prometheus text: message counters, batch timings, positions and lag per partition."""
    text = generate_latest(REGISTRY) + generate_latest(state.registry)
    return Response(text, media_type=PROMETHEUS_TEXT)


@get(
    "/healthz",
    sync_to_thread=True,
    responses={503: ResponseSpec(answers.Health, description="A part is failing (it is named).")},
)
def healthz(state: State) -> Response[answers.Health]:
    """200 when the event store, the views and the broker answer; 503 (with the reason) if not."""
    api: Api = state.api
    checks: dict[str, str] = {}
    positions: list[dict[str, object]] = []
    for part, check in (
        ("event_store", api.engine.recorder.max_notification_id),
        ("views", lambda: _views_answer(api)),
    ):
        try:
            check()
            checks[part] = "ok"
        except Exception as error:  # noqa: BLE001 (any failure is the answer)
            checks[part] = f"failing: {type(error).__name__}"
    try:
        states = partition_states(api)
        checks["broker"] = "ok"
        positions = [
            {"worker": s.worker, "topic": s.topic, "partition": s.partition}
            | {"position": s.position, "end": s.end, "lag": s.lag}
            for s in states
        ]
    except KafkaError as error:
        checks["broker"] = f"failing: {type(error).__name__}"
    except Exception:  # noqa: BLE001 (the views or store check above says what failed)
        checks.setdefault("broker", "unknown: positions unavailable")
    ok = all(value == "ok" for value in checks.values())
    health = answers.Health(status="ok" if ok else "failing", checks=checks, positions=positions)
    return Response(health, status_code=200 if ok else 503)


def _views_answer(api: Api) -> None:
    with api.reading() as (views, tx):
        views.active_slot(tx)


def create_app(api: Api) -> Litestar:
    """The web application over ``api`` (which the caller opens and closes)."""
    registry = CollectorRegistry()  # collected when scraped, never at start-up
    registry.register(PipelineCollector(api))
    return Litestar(
        route_handlers=[
            api_router(
                guards=[_require_token],
                security=[{"bearer": []}] if api.token else [],
                extra=(*sources.HANDLERS, *admin.HANDLERS),
            ),
            dashboard,
            metrics,
            healthz,
            create_static_files_router(
                path="/static", directories=[DASHBOARD], guards=[_plain_path]
            ),
        ],
        state=State({"api": api, "registry": registry}),
        exception_handlers=HANDLERS,
        logging_config=None,  # structlog is configured by the command
        openapi_config=OpenAPIConfig(
            title="lead-lifecycle",
            version="1",
            description=__doc__,
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http", scheme="bearer", description="LIFECYCLE_API_TOKEN"
                    )
                }
            ),
            # The document describes the API: behind the same token as the API itself.
            openapi_router=Router(
                path="/schema",
                route_handlers=[],
                guards=[_require_token],
                include_in_schema=False,
            ),
        ),
    )
