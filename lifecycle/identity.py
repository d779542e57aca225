"""Identity keys: how e-mails, phones, anonymous and customer ids name one person.

A key is ``kind:normalized-value``. Its uuid5 is the id of the Identity aggregate that
claims it, so the event store itself guarantees that one key maps to one lead.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple
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


def normalize_email(value: str) -> str:
    """E-mails are compared case-insensitively after trimming."""
    return value.strip().lower()


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
        return cls(kind, raw.strip())

    @classmethod
    def parse(cls, text: str) -> IdentityKey:
        """Read ``email:alice@example.com`` (also ``phone:``, ``anonymous:``, ``customer:``)."""
        kind, sep, raw = text.partition(":")
        if not sep or not raw.strip():
            raise ValueError(f"expected KIND:VALUE, got {text!r}")
        try:
            return cls.of(IdentityKind(kind.strip().lower()), raw)
        except ValueError:
            kinds = ", ".join(k.value for k in IdentityKind)
            raise ValueError(f"unknown identity kind {kind!r}; use one of {kinds}") from None

    @property
    def identifying(self) -> bool:
        """Whether this key makes its owner a lead (anything but an anonymous id)."""
        return self.kind in IDENTIFYING

    @property
    def identity_id(self) -> UUID:
        """The id of the Identity aggregate that claims this key."""
        return _identity_id(self.kind, self.value)

    @property
    def lead_id(self) -> UUID:
        """The id a lead first seen with this key gets (deterministic, so retries agree)."""
        return uuid5(NAMESPACE, f"lead:{self.kind}:{self.value}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


# Ingest looks up each key of every touchpoint (a uuid5 costs several microseconds); the
# people of the last few days send most touchpoints, so a bounded memo of their keys hits.
@lru_cache(maxsize=2**16)
def _identity_id(kind: IdentityKind, value: str) -> UUID:
    return uuid5(NAMESPACE, f"identity:{kind}:{value}")


@lru_cache(maxsize=1024)
def campaign_id(campaign_key: str) -> UUID:
    """The id of the Campaign aggregate for an upstream campaign id."""
    return uuid5(NAMESPACE, f"campaign:{campaign_key}")


def fact_uuid(source: str, event_id: str) -> UUID:
    """A fact's id as a UUID (its receipt's id): CloudEvents are identified by (source, id)."""
    return uuid5(NAMESPACE, f"fact:{source}\x00{event_id}")


def fact_id(source: str, event_id: str) -> str:
    """The id of a fact: CloudEvents are identified by (source, id)."""
    return fact_uuid(source, event_id).hex
