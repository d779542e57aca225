"""Lead: the facts about one person, from the first anonymous visit to the last purchase.

Only two event types carry personal data: ``IdentifierAdded`` (e-mail, phone, ids) and
``ProfileUpdated`` (names, company). Everything else is free of it, so that lead events can
be published and the personal data later encrypted or erased per lead.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from lifecycle.domain.facts import ERASED, Fact, without_personal_data
from lifecycle.domain.identity import IdentityKey, IdentityKind
from lifecycle.errors import LifecycleError

PROFILE_FIELDS = ("first_name", "last_name", "company", "country")


class LeadMergedError(LifecycleError):
    """A fact was sent to a lead that was merged into another one; follow ``merged_into``."""


class Lead(Aggregate):
    """A person (a visitor until they identify) and everything they did."""

    TOPIC = "lifecycle:Lead"

    @event("Created", topic="lifecycle:Lead.Created.v1")
    def __init__(self, id: UUID) -> None:  # noqa: A002 (eventsourcing names it id)
        self.facts: list[Fact] = []
        self.fact_ids: set[str] = set()
        self.identifiers: list[IdentityKey] = []
        self.profile: dict[str, tuple[datetime, str]] = {}
        self.captured_at: datetime | None = None
        self.merged_into: UUID | None = None
        self.absorbed: list[UUID] = []
        self.erased_at: datetime | None = None

    # The events after Created are explicit classes that only assign, triggered directly:
    # ingest triggers two or three for every touchpoint, and that costs half as much as a call
    # through an @event-decorated method (which coerces its arguments first).

    class FactRecorded(Aggregate.Event):
        """A touchpoint, qualification or disqualification of this person."""

        TOPIC = "lifecycle:Lead.FactRecorded.v1"
        fact: Fact

        def apply(self, lead: Lead) -> None:
            lead.facts.append(self.fact)
            lead.fact_ids.add(self.fact.fact_id)

    class Captured(Aggregate.Event):
        """The person became a lead (again earlier, when an older identifying fact arrives)."""

        TOPIC = "lifecycle:Lead.Captured.v1"
        at: datetime
        fact_id: str

        def apply(self, lead: Lead) -> None:
            lead.captured_at = self.at

    class IdentifierAdded(Aggregate.Event):
        """An identity of the person (personal data)."""

        TOPIC = "lifecycle:Lead.IdentifierAdded.v1"
        kind: str
        value: str

        def apply(self, lead: Lead) -> None:
            lead.identifiers.append(IdentityKey(IdentityKind(self.kind), self.value))

    class ProfileUpdated(Aggregate.Event):
        """Newer profile values (personal data)."""

        TOPIC = "lifecycle:Lead.ProfileUpdated.v1"
        at: datetime
        fields: dict[str, str]

        def apply(self, lead: Lead) -> None:
            for name, value in self.fields.items():
                lead.profile[name] = (self.at, value)

    class Absorbed(Aggregate.Event):
        """Another lead turned out to be this person: its facts are now this lead's too."""

        TOPIC = "lifecycle:Lead.Absorbed.v1"
        lead_id: UUID
        facts: list[Fact]
        at: datetime
        fact_id: str

        def apply(self, lead: Lead) -> None:
            lead.absorbed.append(self.lead_id)
            lead.facts.extend(self.facts)
            lead.fact_ids.update(f.fact_id for f in self.facts)

    class MergedInto(Aggregate.Event):
        """This lead was absorbed by the survivor and takes no more facts."""

        TOPIC = "lifecycle:Lead.MergedInto.v1"
        survivor_id: UUID
        at: datetime
        fact_id: str

        def apply(self, lead: Lead) -> None:
            lead.merged_into = self.survivor_id

    class Erased(Aggregate.Event):
        """The person was forgotten: their personal fields can no longer be read."""

        TOPIC = "lifecycle:Lead.Erased.v1"
        at: datetime
        reason_code: str

        def apply(self, lead: Lead) -> None:
            # A process that held the lead in memory keeps nothing of the person either.
            lead.erased_at = self.at
            lead.identifiers = [IdentityKey(key.kind, ERASED) for key in lead.identifiers]
            lead.profile = {name: (at, ERASED) for name, (at, _) in lead.profile.items()}
            lead.facts = [without_personal_data(fact) for fact in lead.facts]

    @property
    def first_seen(self) -> datetime | None:
        """Event time of the earliest fact."""
        return min((f.at for f in self.facts), default=None)

    def has_fact(self, fact_id: str) -> bool:
        """Whether this fact (a CloudEvent's (source, id)) is already recorded here."""
        return fact_id in self.fact_ids

    def record(self, fact: Fact) -> bool:
        """Record a touchpoint, qualification or disqualification; False if seen before."""
        self._check_live()
        if fact.fact_id in self.fact_ids:
            return False
        self.trigger_event(self.FactRecorded, fact=fact)
        if fact.identified and (self.captured_at is None or fact.at < self.captured_at):
            # Again when an earlier identifying fact arrives late: captured_at is event time.
            self.trigger_event(self.Captured, at=fact.at, fact_id=fact.fact_id)
        return True

    def add_identifier(self, key: IdentityKey) -> None:
        """Remember an identity of this person (personal data)."""
        self._check_live()
        if key not in self.identifiers:
            self.trigger_event(self.IdentifierAdded, kind=key.kind.value, value=key.value)

    def update_profile(self, at: datetime, **fields: str | None) -> None:
        """Keep the latest (by event time) value of each profile field (personal data)."""
        self._check_live()
        changes = {
            name: value
            for name, value in fields.items()
            if name in PROFILE_FIELDS and value is not None and self._newer(name, at, value)
        }
        if changes:
            self.trigger_event(self.ProfileUpdated, at=at, fields=changes)

    def _newer(self, name: str, at: datetime, value: str) -> bool:
        # A repeated value at a later time still moves the field's time forward, so that an
        # older value arriving late does not win.
        if name not in self.profile:
            return True
        known_at, known_value = self.profile[name]
        return at > known_at or (at == known_at and value != known_value)

    def absorb(self, other: Lead, *, at: datetime, fact_id: str) -> None:
        """Take over another lead's history: the survivor's facts become the union of both."""
        self._check_live()
        new_facts = [f for f in other.facts if f.fact_id not in self.fact_ids]
        self.trigger_event(self.Absorbed, lead_id=other.id, facts=new_facts, at=at, fact_id=fact_id)
        for key in other.identifiers:
            self.add_identifier(key)
        for name, (changed_at, value) in other.profile.items():
            self.update_profile(changed_at, **{name: value})
        if other.captured_at is not None and (
            self.captured_at is None or other.captured_at < self.captured_at
        ):
            self.trigger_event(self.Captured, at=other.captured_at, fact_id=fact_id)

    def merge_into(self, survivor_id: UUID, *, at: datetime, fact_id: str) -> None:
        """Mark this lead as merged into the survivor; it takes no more facts."""
        self._check_live()
        self.trigger_event(self.MergedInto, survivor_id=survivor_id, at=at, fact_id=fact_id)

    def erase(self, *, at: datetime, reason_code: str) -> None:
        """Record that the person was forgotten (``reason_code``: a code, never free text)."""
        if self.erased_at is None:
            self.trigger_event(self.Erased, at=at, reason_code=reason_code)

    def _check_live(self) -> None:
        if self.merged_into is not None:
            raise LeadMergedError(f"lead {self.id} was merged into {self.merged_into}")
