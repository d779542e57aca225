"""The composition root: the one place that turns settings into the engine's working parts.

The CLI, the API server, the bench and the tests' fixtures build everything here: the event
store and the engine over it, the view store, the rulebook, the workers and the API state.
Nothing else constructs them, so a setting (the cache size, the rulebook) means the same
everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from consumers.changes import ChangesPublisher
from consumers.relay import Relay
from consumers.touchpoints import TouchpointIngest
from consumers.views import ViewsWorker
from consumers.webhooks import WebhookWorker
from lifecycle.adapters.eventstore import KeyedRecorder, eventsourcing_env
from lifecycle.adapters.keyring import Keyring, master_key
from lifecycle.api.state import Api
from lifecycle.contracts.webhooks import load_endpoints
from lifecycle.domain.identity import identity_secret_fingerprint, use_identity_secret
from lifecycle.errors import ConfigurationError
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.projections.announcer import Announcer
from lifecycle.projections.store import ViewStore
from lifecycle.rules import Rulebook, load_rulebook
from lifecycle.settings import Settings


def rulebook(settings: Settings, path: Path | None = None) -> Rulebook:
    """The rulebook at ``path`` or ``LIFECYCLE_RULES`` over the defaults (the defaults alone)."""
    return load_rulebook(path or settings.rules)


def engine(
    settings: Settings,
    *,
    rules: Path | None = None,
    database_url: str | None = None,
    kind: type[LeadLifecycle] = LeadLifecycle,
) -> LeadLifecycle:
    """The engine over the event store of ``database_url`` (default: the settings')."""
    env = eventsourcing_env(database_url or settings.database_url)
    env["AGGREGATE_CACHE_MAXSIZE"] = str(settings.cache_size)
    built = kind(env, rules=rulebook(settings, rules))
    try:
        _key_identity_ids(built, settings)
    except BaseException:
        built.close()
        raise
    master = settings.master_key_text()
    if master:
        try:
            built.seal_with(Keyring(master_key(master)), settings.published_properties)
        except BaseException:
            built.close()
            raise
    elif built.holds_sealed_data():
        built.close()
        raise ConfigurationError(
            "this event store holds personal data sealed with a master key: set "
            "LIFECYCLE_MASTER_KEY or LIFECYCLE_MASTER_KEY_FILE (the key it was made with)"
        )
    return built


def _key_identity_ids(built: LeadLifecycle, settings: Settings) -> None:
    """Make identity ids as the store was made to (a new store: as the settings say)."""
    secret = settings.identity_secret.encode() if settings.identity_secret else None
    wanted = f"hmac-sha256:{identity_secret_fingerprint(secret)}" if secret else "uuid5"
    recorder = built.recorder
    if not isinstance(recorder, KeyedRecorder):
        use_identity_secret(secret)
        return
    made = recorder.store_setting("identity_ids", "uuid5" if recorder.has_events() else wanted)
    if made != wanted and made == "uuid5":
        raise ConfigurationError(
            "this event store's identity ids are uuid5 (it was made before keyed ids, or first "
            "opened without LIFECYCLE_IDENTITY_SECRET): open it without the secret (README, "
            "Personal data)"
        )
    if made != wanted:
        raise ConfigurationError(
            "this event store's identity ids are keyed by a secret: set "
            "LIFECYCLE_IDENTITY_SECRET to the one it was made with"
        )
    use_identity_secret(secret)


def engine_at(database_url: str, **settings: object) -> LeadLifecycle:
    """The engine over this event store, with default settings otherwise (tests, the bench)."""
    return engine(replace(Settings(database_url=database_url), **settings))  # type: ignore[arg-type]


def views(settings: Settings) -> ViewStore:
    """A connection to the views database (``LIFECYCLE_VIEWS_URL`` or the event store's)."""
    return ViewStore(settings.views_database_url)


def ingest(settings: Settings, engine: LeadLifecycle) -> TouchpointIngest:
    """The ingest worker: touchpoints into the event store."""
    return TouchpointIngest(engine=engine, settings=settings)


def relay(settings: Settings, engine: LeadLifecycle) -> Relay:
    """The relay: the event store's facts out to ``lead.events``."""
    return Relay(engine=engine, settings=settings)


def views_worker(
    settings: Settings,
    store: ViewStore,
    rules: Rulebook | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> ViewsWorker:
    """The views worker: ``lead.events`` folded into the view tables of ``store``.

    ``clock``: what "now" is when it announces changes (tests drive it; default the time).
    """
    chosen = rules or rulebook(settings)
    if clock is None:
        return ViewsWorker(store=store, rules=chosen, settings=settings)
    return ViewsWorker(store=store, rules=chosen, settings=settings, clock=clock)


def announcer(settings: Settings, *, quiet: bool = False) -> Announcer:
    """What tells the world about each lead's changes (the views worker has its own)."""
    return Announcer(sla_hours=settings.sla_hours, clock=lambda: datetime.now(UTC), quiet=quiet)


def changes_publisher(settings: Settings, store: ViewStore) -> ChangesPublisher:
    """The changes publisher: the announced changes out to ``lead.lifecycle``."""
    return ChangesPublisher(store=store, settings=settings)


def webhook_workers(settings: Settings) -> list[WebhookWorker]:
    """One worker per endpoint of ``LIFECYCLE_WEBHOOKS`` (none when it is not set)."""
    if settings.webhooks is None:
        return []
    return [
        WebhookWorker(endpoint=endpoint, settings=settings)
        for endpoint in load_endpoints(settings.webhooks)
    ]


def api(settings: Settings, engine: LeadLifecycle) -> Api:
    """What the API's handlers share; each request borrows a views connection from it."""
    return Api(
        settings=settings,
        engine=engine,
        token=settings.api_token or None,
        admin_token=settings.admin_token or None,
        connect=lambda: views(settings),
    )
