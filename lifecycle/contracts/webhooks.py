"""Webhooks out: the endpoints file (``LIFECYCLE_WEBHOOKS``) and signed deliveries.

Deliveries are signed as the Standard Webhooks specification says
(https://www.standardwebhooks.com): ``webhook-id`` (the change's ``ce_id``, the same on every
retry and redelivery), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the secret
(``whsec_`` and base64). The body is ``{"type", "timestamp", "data"}``: the change's
``ce_type``, its instant and its data, as on ``lead.lifecycle``; no personal data.

The endpoints file is TOML::

    [[endpoint]]
    name = "crm"                      # in logs and metrics labels (never the URL)
    url = "https://crm.example.com/hooks/lifecycle"
    secret = "whsec_..."              # or secret_env = "CRM_WEBHOOK_SECRET"
    types = ["StageChanged", "HandoffOverdue"]   # default: every type
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from lifecycle.contracts import changes
from lifecycle.errors import ConfigurationError

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (the prefix of every secret, no secret)
TYPES: Final = frozenset(t.__name__ for t in changes.CHANGE_TYPES)
_KEYS: Final = {
    "name",
    "url",
    "secret",
    "secret_env",
    "types",
    "max_in_flight",
    "timeout_seconds",
    "max_attempts",
    "max_age_seconds",
    "retry_seconds",
}


@dataclass(frozen=True, kw_only=True, repr=False)
class Endpoint:
    """Where some changes go, and how hard to try."""

    name: str
    url: str
    key: bytes
    """The secret's bytes (never logged: this class has no repr of it)."""
    types: frozenset[str] = TYPES
    max_in_flight: int = 8
    """Leads delivered to at once (one lead's changes always go one after the other)."""
    timeout_seconds: float = 10.0
    max_attempts: int = 8
    max_age_seconds: float = 3600.0
    """A change not delivered this long after its first attempt goes to the dead letters."""
    retry_seconds: float = 0.5
    """The first wait before trying again; it doubles (with jitter) up to a minute."""

    def __repr__(self) -> str:
        return f"Endpoint(name={self.name!r})"

    def wants(self, ce_type: str) -> bool:
        """Whether this endpoint takes changes of this type."""
        return ce_type.removeprefix(changes.TYPE_PREFIX) in self.types


def load_endpoints(path: Path, environ: Mapping[str, str] | None = None) -> list[Endpoint]:
    """The endpoints of a TOML file, or ``ConfigurationError`` saying what is wrong in it."""
    env = os.environ if environ is None else environ
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigurationError(f"cannot read {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path} is not TOML: {error}") from None
    entries = document.get("endpoint", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"{path} has no [[endpoint]]")
    endpoints = [_endpoint(path, n, entry, env) for n, entry in enumerate(entries, 1)]
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"{path}: endpoint names must differ")
    return endpoints


def _endpoint(path: Path, n: int, entry: Any, env: Mapping[str, str]) -> Endpoint:  # noqa: ANN401
    where = f"{path}, endpoint {n}"
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where}: not a table")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(unknown)}")
    name, url = entry.get("name"), entry.get("url")
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigurationError(f"{where}: name must be letters, digits, - and _")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigurationError(f"{where} ({name}): url must be an http(s) URL")
    secret = entry.get("secret")
    if "secret_env" in entry:
        secret = env.get(str(entry["secret_env"]))
        if secret is None:
            raise ConfigurationError(f"{where} ({name}): {entry['secret_env']} is not set")
    types = frozenset(entry.get("types", TYPES))
    if not types or types - TYPES:
        raise ConfigurationError(
            f"{where} ({name}): types must be among {', '.join(sorted(TYPES))}"
        )
    numbers = {
        k: entry[k] for k in _KEYS & set(entry) if k.endswith(("_seconds", "_attempts", "_flight"))
    }
    if any(not isinstance(v, int | float) or v <= 0 for v in numbers.values()):
        raise ConfigurationError(f"{where} ({name}): limits must be positive numbers")
    return Endpoint(name=name, url=str(url), key=secret_key(secret, where), types=types, **numbers)


def secret_key(secret: object, where: str = "the secret") -> bytes:
    """The bytes of a ``whsec_<base64>`` secret."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ConfigurationError(f"{where}: the secret must be whsec_ and base64")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ConfigurationError(f"{where}: the secret is not base64 after whsec_") from None
    if len(key) < 24:
        raise ConfigurationError(f"{where}: the secret must hold at least 24 bytes")
    return key


def body(ce_type: str, ce_time: str, data: bytes) -> bytes:
    """The request body: the change's type, instant and data."""
    return b'{"type":"%s","timestamp":"%s","data":%s}' % (ce_type.encode(), ce_time.encode(), data)


def signed_headers(key: bytes, message_id: str, timestamp: int, payload: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    to_sign = f"{message_id}.{timestamp}.".encode() + payload
    signature = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
        "content-type": "application/json",
    }
