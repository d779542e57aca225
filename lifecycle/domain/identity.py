"""Identity keys: how e-mails, phones, anonymous and customer ids name one person.

A key is ``kind:normalized-value``. A hash of it is the id of the Identity aggregate that
claims it, so the event store itself guarantees that one key maps to one lead. With an
identity secret (``use_identity_secret``, set once per process by ``lifecycle.wiring``) the
hash is an HMAC under it, and so are the key's part of new leads' ids: an id then reveals
nothing about an e-mail to whoever lacks the secret. Without one (stores made before) it is
the key's uuid5, which anyone holding the e-mail can compute.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from hashlib import sha1
from typing import Final, NamedTuple
from uuid import UUID, uuid5

NAMESPACE = UUID("6f6c1d4e-8f0b-5b8e-9a57-1e2d3c4b5a69")


class IdentityKind(StrEnum):
    """The kinds of identity a touchpoint may carry, in order of precedence."""

    EMAIL = "email"
    PHONE = "phone"
    CUSTOMER = "customer"
    ANONYMOUS = "anonymous"


# An anonymous id alone does not make a lead: it only builds a visitor.
IDENTIFYING = frozenset({IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.CUSTOMER})

_NON_DIGITS = re.compile(r"\D")
MIN_PHONE_DIGITS = 6


# What the contract's patterns take for white space around a value (contracts.SPACE): Python's
# and ECMA-262's, whose union has the byte-order mark, which str.strip() keeps.
_AROUND: Final = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + "\ufeff"


def normalize_email(value: str) -> str:
    """E-mails are compared case-insensitively after trimming."""
    return value.strip(_AROUND).lower()


def normalize_phone(value: str) -> str:
    """Phones are compared by their digits, with a leading +."""
    return "+" + _NON_DIGITS.sub("", value)


class IdentityKey(NamedTuple):
    """One normalized identity of a person."""

    kind: IdentityKind
    value: str

    @classmethod
    def of(cls, kind: IdentityKind, raw: str) -> IdentityKey:
        """Normalize a raw value of the given kind."""
        if kind is IdentityKind.EMAIL:
            return cls(kind, normalize_email(raw))
        if kind is IdentityKind.PHONE:
            return cls(kind, normalize_phone(raw))
        return cls(kind, raw.strip(_AROUND))

    @classmethod
    def parse(cls, text: str) -> IdentityKey:
        """Read ``email:alice@example.com`` (also ``phone:``, ``anonymous:``, ``customer:``)."""
        kind, sep, raw = text.partition(":")
        if not sep or not raw.strip(_AROUND):
            raise ValueError(f"expected KIND:VALUE, got {text!r}")
        try:
            return cls.of(IdentityKind(kind.strip().lower()), raw)
        except ValueError:
            kinds = ", ".join(k.value for k in IdentityKind)
            raise ValueError(f"unknown identity kind {kind!r}; use one of {kinds}") from None

    @classmethod
    def guess(cls, text: str) -> IdentityKey:
        """``KIND:VALUE``, or a bare e-mail (it has an @) or phone, as the dashboard reads one."""
        if ":" in text:
            return cls.parse(text)
        if "@" in text:
            return cls.of(IdentityKind.EMAIL, text)
        if len(_NON_DIGITS.sub("", text)) >= MIN_PHONE_DIGITS:
            return cls.of(IdentityKind.PHONE, text)
        return cls.parse(text)  # (which says what it expected)

    @property
    def identifying(self) -> bool:
        """Whether this key makes its owner a lead (anything but an anonymous id)."""
        return self.kind in IDENTIFYING

    @property
    def identity_id(self) -> UUID:
        """The id of the Identity aggregate that claims this key."""
        return _identity_id(self.kind, self.value)

    def lead_id(self, at: datetime) -> UUID:
        """The id of a lead first seen with this key at ``at`` (the same on every retry)."""
        return timed_id(at, f"lead:{self.kind}:{self.value}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


_secret: bytes | None = None


def use_identity_secret(secret: bytes | None) -> None:
    """Key the ids of identities and new leads by this secret (None: uuid5, as before)."""
    global _secret  # noqa: PLW0603 (one setting per process, made by the composition root)
    _secret = secret
    _identity_id.cache_clear()


def identity_secret_fingerprint(secret: bytes) -> str:
    """What a store keeps to know its secret again (the secret cannot be found from it)."""
    return hmac.new(secret, b"lifecycle:identity-secret", hashlib.sha256).hexdigest()[:32]


# Ingest looks up each key of every touchpoint (a uuid5 costs several microseconds); the
# people of the last few days send most touchpoints, so a bounded memo of their keys hits.
@lru_cache(maxsize=2**16)
def _identity_id(kind: IdentityKind, value: str) -> UUID:
    name = f"identity:{kind}:{value}"
    if _secret is None:
        return uuid5(NAMESPACE, name)
    digest = bytearray(hmac.new(_secret, name.encode(), hashlib.sha256).digest()[:16])
    digest[6] = digest[6] & 0x0F | 0x80  # version 8: made our own way (RFC 9562)
    digest[8] = digest[8] & 0x3F | 0x80  # the RFC 4122 variant
    return UUID(bytes=bytes(digest))


@lru_cache(maxsize=1024)
def campaign_id(campaign_key: str) -> UUID:
    """The id of the Campaign aggregate for an upstream campaign id."""
    return uuid5(NAMESPACE, f"campaign:{campaign_key}")


def receipt_id(source: str, event_id: str) -> UUID:
    """The id of the receipt of a CloudEvent: the uuid5 of its ``(source, id)``, as its fact's.

    Nothing else of the event goes in: a resend with another ``time`` or another identity is
    the same event, and its receipt is refused by the store. (Unlike leads' ids, these do not
    sort by time; see README, Performance, for what that costs.)
    """
    return UUID(fact_id(source, event_id))


def timed_id(at: datetime, name: str) -> UUID:
    """A deterministic id that sorts by time: ``at`` in milliseconds, then a hash of ``name``.

    A UUIDv8 laid out like a UUIDv7 (RFC 9562). The ids of new leads are made in roughly time
    order, so the event store's index grows at its end: with random ids, each
    commit at a million touchpoints rewrote a thousand index pages all over the file (70 ms
    a batch in SQLite, against 4 ms for ordered ids).
    """
    millis = max(int(at.timestamp() * 1000), 0)
    hashed = (
        sha1(NAMESPACE.bytes + name.encode(), usedforsecurity=False).digest()
        if _secret is None or not name.startswith("lead:")
        else hmac.new(_secret, name.encode(), hashlib.sha256).digest()
    )
    digest = int.from_bytes(hashed[:10])
    return UUID(
        int=millis << 80 | 8 << 76 | (digest >> 62 & 0xFFF) << 64 | 0b10 << 62 | digest & _LOW_62
    )


_LOW_62 = (1 << 62) - 1


def fact_id(source: str, event_id: str) -> str:
    """The id of a fact: CloudEvents are identified by (source, id).

    The hex of the uuid5 of ``fact:``, the source, a NUL and the id, made from the hash
    directly: building the UUID object first cost ingest as much again.
    """
    digest = bytearray(_name_hash(f"fact:{source}\x00{event_id}")[:16])
    digest[6] = digest[6] & 0x0F | 0x50  # version 5
    digest[8] = digest[8] & 0x3F | 0x80  # the RFC 4122 variant
    return digest.hex()


def _name_hash(name: str) -> bytes:
    """The SHA-1 a uuid5 of ``name`` is made of (it names; it protects nothing)."""
    return sha1(NAMESPACE.bytes + name.encode(), usedforsecurity=False).digest()
