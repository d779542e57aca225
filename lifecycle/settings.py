"""Settings from ``LIFECYCLE_*`` environment variables, read once by the CLI."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from lifecycle.adapters.database_url import DEFAULT_DATABASE_URL
from lifecycle.contracts import topics
from lifecycle.errors import ConfigurationError

MIN_SECRET_LENGTH = 32


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable, with the defaults a fresh clone runs with.

    Each field is read from ``LIFECYCLE_<FIELD NAME IN CAPITALS>``.
    """

    database_url: str = DEFAULT_DATABASE_URL
    rules: Path | None = None
    cache_size: int = 20_000
    log_format: str = "auto"
    kafka_bootstrap: str = "127.0.0.1:9092"
    touchpoints_topic: str = topics.TOUCHPOINTS
    dead_letter_topic: str = topics.DEAD_LETTERS
    lead_events_topic: str = topics.LEAD_EVENTS
    changes_topic: str = topics.CHANGES
    webhooks: Path | None = None
    """The endpoints file (TOML) of ``lifecycle webhooks``; none: no webhooks."""
    webhooks_group: str = "lifecycle-webhooks"
    """Each endpoint reads in the group ``<this>-<endpoint name>``."""
    webhooks_dead_letter_topic: str = topics.WEBHOOK_DEAD_LETTERS
    dlq_retention_days: int = 14
    """How long the dead-letter topics keep what they hold (raw messages, personal data)."""
    ingest_group: str = "lifecycle-ingest"
    relay_name: str = "lifecycle-relay"
    views_url: str = ""
    """Where the view tables live (empty: the event store's database)."""
    views_group: str = "lifecycle-views"
    sla_hours: int = 24
    announce_changes: bool = True
    """Whether the views worker announces lifecycle changes (off: views only, no outbox)."""
    tick_seconds: int = 5
    """How often the views worker looks for leads that cooled or whose hand-off is overdue."""
    batch_size: int = 2000
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    published_properties: tuple[str, ...] = ("sales_contacted",)
    """Touchpoint properties copied to ``lead.events``; the others may hold personal data."""
    api_token: str = dataclasses.field(default="", repr=False)
    """When set, every ``/api`` request must carry it as a bearer token."""
    admin_token: str = dataclasses.field(default="", repr=False)
    """Erases and exports over the API (``/api/leads/{id}/erase``, ``/export``); none: off."""
    master_key: str = dataclasses.field(default="", repr=False)
    """Wraps the leads' data keys (``lifecycle keys create`` makes one); none: no sealing."""
    master_key_file: Path | None = None
    """A file holding the master key, instead of ``master_key``."""
    identity_secret: str = dataclasses.field(default="", repr=False)
    """Keys the ids of identities and leads (HMAC) for a new store; none: uuid5, as before."""
    metrics_port: int = 0
    """The workers' (ingest, relay, project, run) Prometheus endpoint; 0: none."""
    metrics_host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every ``LIFECYCLE_*`` variable that is set; the rest keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            name = f"LIFECYCLE_{field.name.upper()}"
            raw = env.get(name)
            if raw is None:
                continue
            values[field.name] = _parse(name, raw, field.default)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse values that cannot work."""
        if self.log_format not in {"auto", "json", "console"}:
            raise ConfigurationError("LIFECYCLE_LOG_FORMAT must be auto, json or console")
        for name in (
            "cache_size",
            "batch_size",
            "session_timeout_ms",
            "heartbeat_interval_ms",
            "tick_seconds",
            "dlq_retention_days",
        ):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"LIFECYCLE_{name.upper()} must be at least 1")
        if self.identity_secret and len(self.identity_secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"LIFECYCLE_IDENTITY_SECRET must be at least {MIN_SECRET_LENGTH} characters"
            )
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigurationError("LIFECYCLE_METRICS_PORT must be between 0 and 65535")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ConfigurationError(
                "LIFECYCLE_HEARTBEAT_INTERVAL_MS must be below LIFECYCLE_SESSION_TIMEOUT_MS"
            )

    @property
    def views_database_url(self) -> str:
        """The views' database: ``views_url``, or the event store's."""
        return self.views_url or self.database_url

    def master_key_text(self) -> str:
        """The master key, from ``master_key`` or its file ("": none configured)."""
        if self.master_key or self.master_key_file is None:
            return self.master_key
        try:
            return self.master_key_file.read_text().strip()
        except OSError as error:
            raise ConfigurationError(
                f"LIFECYCLE_MASTER_KEY_FILE: cannot read {self.master_key_file} ({error.strerror})"
            ) from None

    def environment(self) -> dict[str, str]:
        """These settings as ``LIFECYCLE_*`` variables (to start a worker process with them)."""
        env = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None or value == "":
                continue
            text = ",".join(value) if isinstance(value, tuple) else str(value)
            env[f"LIFECYCLE_{field.name.upper()}"] = text
        return env


def _parse(name: str, raw: str, default: object) -> object:
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if name in {"LIFECYCLE_RULES", "LIFECYCLE_WEBHOOKS", "LIFECYCLE_MASTER_KEY_FILE"}:
        return Path(raw) if raw else None
    return raw
