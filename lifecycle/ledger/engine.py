"""The application: records inbound events as facts on Lead, Identity and Campaign aggregates.

Every command takes a batch of decoded events and an optional tracking position (a Kafka
partition offset, say) and saves everything the batch changed, with the position, in one
database transaction. A redelivered batch or a repeated CloudEvent changes nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, CanMutateProtocol, DomainEventProtocol
from eventsourcing.persistence import IntegrityError, ProcessRecorder, Tracking
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import get_topic

from lifecycle.adapters.eventstore import select_histories
from lifecycle.aggregates import Campaign, Identity, Lead, Receipt
from lifecycle.contracts import inbound
from lifecycle.domain.facts import Disqualification, Fact, Qualification, Spend, Touch
from lifecycle.domain.identity import IdentityKey, IdentityKind, campaign_id, fact_id, receipt_id
from lifecycle.errors import (
    ConfigurationError,
    LeadNotFoundError,
    LifecycleError,
    TransientError,
)
from lifecycle.rules import LeadView, Rulebook, default_rulebook, fold

A = TypeVar("A", bound=Aggregate)

# Conflicts come from other writers on the same leads; a few retries always settle them.
MAX_ATTEMPTS = 8


class ConcurrencyError(TransientError):
    """Other writers kept changing the same aggregates; the batch was not recorded."""


@dataclass
class RecordResult:
    """What a batch did: facts newly recorded, and events that were already there."""

    recorded: int = 0
    duplicates: int = 0


# A PostgreSQL advisory lock key: held while an application creates its tables.
SCHEMA_LOCK = 0x6C656164  # "lead"


class LeadLifecycle(Application[UUID]):
    """Leads, identities and campaigns in one event store."""

    name = "lifecycle"
    env: ClassVar[dict[str, str]] = {
        # Queries bring cached aggregates up to date with the store on every read (other
        # processes write too). Commands trust the cache first (see _Batch._cached). Cached
        # aggregates are not copied: a failed batch evicts what it changed.
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    }

    def __init__(self, env: dict[str, str] | None = None, *, rules: Rulebook | None = None) -> None:
        try:
            super().__init__(env)
        except BaseException:
            # Close the connection pool now: left to the garbage collector, psycopg's pool
            # may be closed from one of its own threads, which cannot join itself.
            with contextlib.suppress(AttributeError):  # (failed before the factory existed)
                self.close()
            raise
        self.rules = rules or default_rulebook()
        self._campaign_keys: dict[UUID, str] = {}

    def construct_recorder(self) -> ProcessRecorder:
        """A process recorder: only it writes tracking records with the events."""
        datastore = getattr(self.factory, "datastore", None)
        if not isinstance(datastore, PostgresDatastore):
            return self.factory.process_recorder()
        # Processes starting together would replace the same functions at once ("tuple
        # concurrently updated"): one at a time creates what is missing.
        with datastore.get_connection() as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", [SCHEMA_LOCK])
            try:
                return self.factory.process_recorder()
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", [SCHEMA_LOCK])

    @property
    def process_recorder(self) -> ProcessRecorder:
        """The recorder, typed as the process recorder it is."""
        recorder = self.recorder
        assert isinstance(recorder, ProcessRecorder)  # noqa: S101 (construct_recorder made it)
        return recorder

    # Commands

    def record(
        self, events: Sequence[inbound.InboundEvent], *, tracking: Tracking | None = None
    ) -> RecordResult:
        """Record a batch of events in one transaction, with the tracking position if given."""
        for attempt in range(MAX_ATTEMPTS):
            # The first attempt trusts the cache and that events are new; a conflict means
            # another writer got there first, and the next attempt reads the store.
            batch = _Batch(self, retrying=attempt > 0)
            try:
                batch.prefetch(events)
                result = batch.apply(events)
                processing = ProcessingEvent[UUID](tracking)
                # (Events appended directly: collect_events() checks each object against
                # runtime protocols, which costs more than the rest of the batch.)
                for aggregate in batch.changed():
                    processing.events.extend(aggregate.collect_events())
                processing.events.extend(batch.receipt_events)
                if processing.events or tracking is not None:
                    self._notify(self._record(processing))
                batch.cache_loaded()
            except IntegrityError:
                self._evict(batch.loaded)
                if tracking is not None and self._already_tracked(tracking):
                    return RecordResult(duplicates=len(events))
                time.sleep(min(0.01 * 2**attempt, 0.5))
            except BaseException:
                self._evict(batch.loaded)
                raise
            else:
                return result
        raise ConcurrencyError(f"gave up after {MAX_ATTEMPTS} conflicting attempts")

    def record_event(self, event: inbound.InboundEvent) -> RecordResult:
        """Record one event in its own transaction."""
        return self.record([event])

    def position(self, tracking_name: str) -> int | None:
        """The last position recorded under this tracking name (None: nothing yet)."""
        return self.process_recorder.max_tracking_id(tracking_name)

    def _already_tracked(self, tracking: Tracking) -> bool:
        last = self.position(tracking.application_name)
        return last is not None and last >= tracking.notification_id

    def _evict(self, aggregate_ids: Iterable[UUID]) -> None:
        # The cache handed out these aggregates and the failed batch changed them in place.
        # (Evicted one by one: LRUCache.clear() in eventsourcing 9.5.6 keeps the entries.)
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate_id in list(aggregate_ids):
            with contextlib.suppress(KeyError):
                cache.get(aggregate_id, evict=True)

    # Queries

    def find_lead(self, key: IdentityKey) -> UUID | None:
        """The live lead that owns this identity, if any."""
        identity = self._get(Identity, key.identity_id)
        return None if identity is None else self.get_lead(identity.lead_id).id

    def get_lead(self, lead_id: UUID) -> Lead:
        """The lead, or the lead it was merged into."""
        seen: set[UUID] = set()
        while True:
            lead = self._get(Lead, lead_id)
            if lead is None:
                raise LeadNotFoundError(f"no lead with id {lead_id}")
            if lead.merged_into is None or lead.merged_into in seen:
                return lead
            seen.add(lead.id)
            lead_id = lead.merged_into

    def resolve(self, reference: str) -> Lead:
        """A lead from its id or an identity such as ``email:alice@example.com``."""
        with contextlib.suppress(ValueError):  # not a UUID: then it names an identity
            return self.get_lead(UUID(reference))
        try:
            key = IdentityKey.guess(reference)
        except ValueError as error:
            # Not a question about the data: the reference itself is wrong.
            raise ConfigurationError(
                f"{reference!r} is neither a lead id nor an identity: {error}"
            ) from None
        lead_id = self.find_lead(key)
        if lead_id is None:
            raise LeadNotFoundError(f"no lead has {key.kind} {key.value!r}")
        return self.get_lead(lead_id)

    def lead_ids(self, *, page_size: int = 1000) -> Iterator[UUID]:
        """Every lead ever created (merged ones included), in creation order."""
        topics = [get_topic(Lead.Created)]
        start: int | None = None
        while True:
            page = self.recorder.select_notifications(
                start, page_size, topics=topics, inclusive_of_start=start is None
            )
            for notification in page:
                yield UUID(str(notification.originator_id))
            if len(page) < page_size:
                return
            start = page[-1].id

    def view(self, lead: Lead, *, as_of: datetime | None = None) -> LeadView:
        """What the rulebook makes of the lead's facts, as of an instant (default: all facts)."""
        return fold(lead.facts, self.rules, as_of=as_of)

    def campaign_key(self, campaign_id: UUID) -> str | None:
        """A campaign's upstream id, from its aggregate id (read once, then remembered)."""
        key = self._campaign_keys.get(campaign_id)
        if key is None:
            try:
                campaign: Aggregate = self.repository.get(campaign_id, version=1)
            except AggregateNotFoundError:
                return None
            if not isinstance(campaign, Campaign):
                return None
            key = self._campaign_keys[campaign_id] = campaign.key
        return key

    def campaign(self, key: str) -> Campaign | None:
        """A campaign by its upstream id."""
        return self._get(Campaign, campaign_id(key))

    def _get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, cls):
            raise LifecycleError(f"{aggregate_id} is a {type(aggregate).__name__}, not a {cls}")
        return aggregate


class _Batch:
    """The aggregates one batch loads and changes (each loaded once, saved together)."""

    def __init__(self, app: LeadLifecycle, *, retrying: bool) -> None:
        self.app = app
        self.retrying = retrying
        self.loaded: dict[UUID, Aggregate] = {}
        self.missing: set[UUID] = set()
        self.fact_ids: set[str] = set()
        # Saved as bare events, not aggregates: nothing reads a receipt back but a retry.
        self.receipt_events: list[DomainEventProtocol[UUID]] = []

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id in self.missing:
            return None
        aggregate = self.loaded.get(aggregate_id)
        if aggregate is None:
            aggregate = self._cached(aggregate_id) or self.app._get(cls, aggregate_id)  # noqa: SLF001
            if aggregate is None:
                self.missing.add(aggregate_id)
                return None
            self.loaded[aggregate_id] = aggregate
        assert isinstance(aggregate, cls)  # noqa: S101 (ids are typed by construction)
        return aggregate

    def prefetch(self, events: Sequence[inbound.InboundEvent]) -> None:
        """Read what the events name in two queries: identities and campaigns, then leads.

        Reading them one by one costs a query (and on SQLite a transaction) each, which
        is most of the time a batch takes. Anything else is still read when first needed.
        """
        named: set[UUID] = set()
        for event in events:
            if isinstance(event, inbound.SpendEvent):
                named.add(campaign_id(event.data.campaign.id))
                continue
            named.update(key.identity_id for key in _keys(event.data.identity))
            referrer = getattr(event.data, "referrer", None)
            if referrer is not None:
                named.update(key.identity_id for key in _keys(referrer))
            if self.retrying:
                named.add(receipt_id(event.source, event.id))
        self._load(named)
        self._load({a.lead_id for a in self.loaded.values() if isinstance(a, Identity)})

    def _load(self, aggregate_ids: set[UUID]) -> None:
        unread: list[UUID] = []
        for aggregate_id in aggregate_ids - self.loaded.keys() - self.missing:
            cached = self._cached(aggregate_id)
            if cached is None:
                unread.append(aggregate_id)
            else:
                self.loaded[aggregate_id] = cached
        histories = select_histories(self.app.recorder, unread)
        mapper = self.app.mapper
        for aggregate_id in unread:
            aggregate: Aggregate | None = None
            for stored in histories.get(aggregate_id, ()):
                event = cast("CanMutateProtocol[Aggregate]", mapper.to_domain_event(stored))
                aggregate = event.mutate(aggregate)
            if aggregate is None:
                self.missing.add(aggregate_id)
            else:
                self.loaded[aggregate_id] = aggregate

    def _cached(self, aggregate_id: UUID) -> Aggregate | None:
        """The cached aggregate, as this process last saw it (first attempts only).

        Not brought up to date with the store: if another process changed it since, saving
        this batch conflicts on the aggregate's next version, and the retry reads the store.
        """
        cache = self.app.repository.cache
        if cache is None:
            return None
        try:
            aggregate = cache.get(aggregate_id, evict=self.retrying)
        except KeyError:
            return None
        return None if self.retrying else cast("Aggregate", aggregate)

    def cache_loaded(self) -> None:
        """Cache what the batch saved: the aggregates are now as the store has them."""
        cache = self.app.repository.cache
        if cache is not None:
            for aggregate_id, aggregate in self.loaded.items():
                cache.put(aggregate_id, aggregate)

    def add(self, aggregate: A) -> A:
        self.loaded[aggregate.id] = aggregate
        self.missing.discard(aggregate.id)
        return aggregate

    def changed(self) -> Iterable[Aggregate]:
        return self.loaded.values()

    def live_lead(self, lead_id: UUID) -> Lead:
        seen: set[UUID] = set()
        lead = self.get(Lead, lead_id)
        while lead is not None and lead.merged_into is not None and lead.id not in seen:
            seen.add(lead.id)
            lead = self.get(Lead, lead.merged_into)
        if lead is None:
            raise LifecycleError(f"identity points at missing lead {lead_id}")
        return lead

    def apply(self, events: Sequence[inbound.InboundEvent]) -> RecordResult:
        result = RecordResult()
        for event in events:
            if self._apply_one(event):
                result.recorded += 1
            else:
                result.duplicates += 1
        return result

    def _apply_one(self, event: inbound.InboundEvent) -> bool:
        fid = fact_id(event.source, event.id)
        receipt = receipt_id(event.source, event.id)
        if fid in self.fact_ids or (self.retrying and self.get(Receipt, receipt) is not None):
            return False
        self.fact_ids.add(fid)
        recorded = self._record_event(event, fid)
        if recorded:
            self.receipt_events.append(Receipt.issue(receipt))
        return recorded

    def _record_event(self, event: inbound.InboundEvent, fid: str) -> bool:
        at = event.time.astimezone(UTC)
        if isinstance(event, inbound.SpendEvent):
            return self._spend(event.data, at, fid)
        keys = _keys(event.data.identity)
        identified = any(key.identifying for key in keys)
        fact: Fact
        profile: dict[str, Any] = {}
        if isinstance(event, inbound.TouchpointEvent):
            fact = self._touch(event.data, at, fid, identified=identified)
            if event.data.profile is not None:
                profile = {
                    "first_name": event.data.profile.first_name,
                    "last_name": event.data.profile.last_name,
                    "company": event.data.profile.company,
                    "country": event.data.profile.country,
                }
        elif isinstance(event, inbound.QualificationEvent):
            data = event.data
            fact = Qualification(
                fact_id=fid,
                at=at,
                identified=identified,
                need=data.need,
                budget=data.budget,
                authority=data.authority,
                timeline=data.timeline,
                assessed_by=data.assessed_by,
            )
        else:
            fact = Disqualification(
                fact_id=fid, at=at, identified=identified, reason=event.data.reason
            )
        return self._record_fact(keys, fact, profile)

    def _record_fact(self, keys: list[IdentityKey], fact: Fact, profile: dict[str, Any]) -> bool:
        owners: list[Lead] = []
        unclaimed: list[IdentityKey] = []
        for key in keys:
            identity = self.get(Identity, key.identity_id)
            if identity is None:
                unclaimed.append(key)
                continue
            lead = self.live_lead(identity.lead_id)
            if all(lead is not owner for owner in owners):  # (== compares whole histories)
                owners.append(lead)
        if any(lead.has_fact(fact.fact_id) for lead in owners):
            return False
        if not owners:
            lead = self.add(Lead(id=keys[0].lead_id(fact.at)))
        else:
            lead = self._merge(owners, fact) if len(owners) > 1 else owners[0]
        for key in unclaimed:
            self.add(Identity(id=key.identity_id, lead_id=lead.id))
        for key in keys:
            lead.add_identifier(key)
        lead.record(fact)
        if profile:
            lead.update_profile(fact.at, **profile)
        return True

    def _merge(self, leads: list[Lead], cause: Fact) -> Lead:
        """One event named several leads: they are one person. The earliest-captured survives."""
        survivor, *others = sorted(leads, key=_seniority)
        for other in others:
            survivor.absorb(other, at=cause.at, fact_id=cause.fact_id)
            other.merge_into(survivor.id, at=cause.at, fact_id=cause.fact_id)
            for key in other.identifiers:
                identity = self.get(Identity, key.identity_id)
                if identity is not None:
                    identity.reassign(survivor.id)
        return survivor

    def _touch(
        self, data: inbound.Touchpoint, at: datetime, fid: str, *, identified: bool
    ) -> Touch:
        referrer_lead_id = None if data.referrer is None else self._referrer(data.referrer, at)
        return Touch(
            fact_id=fid,
            at=at,
            kind=data.kind,
            identified=identified,
            campaign_id=data.campaign.id if data.campaign else None,
            channel=data.campaign.channel if data.campaign else None,
            seniority=data.profile.seniority if data.profile else None,
            company_size=data.profile.company_size if data.profile else None,
            referrer_lead_id=referrer_lead_id,
            amount_minor=data.amount_minor,
            currency=data.currency,
            properties=dict(data.properties),
        )

    def _referrer(self, referrer: inbound.Referrer, at: datetime) -> UUID:
        """The lead of the referring person, claimed for them now if nobody has their keys yet.

        So the credit never depends on whether the referrer's own touchpoints arrived first:
        they land on that lead (a lead with no facts, until they come), or merge with it.
        """
        keys = _keys(referrer)
        for key in keys:
            identity = self.get(Identity, key.identity_id)
            if identity is not None:
                return self.live_lead(identity.lead_id).id
        lead = self.add(Lead(id=keys[0].lead_id(at)))
        for key in keys:
            self.add(Identity(id=key.identity_id, lead_id=lead.id))
            lead.add_identifier(key)
        return lead.id

    def _spend(self, data: inbound.Spend, at: datetime, fid: str) -> bool:
        aggregate_id = campaign_id(data.campaign.id)
        campaign = self.get(Campaign, aggregate_id) or self.add(
            Campaign(id=aggregate_id, key=data.campaign.id)
        )
        return campaign.record_spend(
            Spend(
                fact_id=fid,
                at=at,
                amount_minor=data.amount_minor,
                currency=data.currency,
                period_start=data.period_start,
                period_end=data.period_end,
                channel=data.campaign.channel,
            )
        )


def _seniority(lead: Lead) -> tuple[bool, datetime, str]:
    """Identified leads before visitors, then the earliest captured, then by id (stable)."""
    first = lead.captured_at or lead.first_seen or datetime.max.replace(tzinfo=UTC)
    return (lead.captured_at is None, first, str(lead.id))


def _keys(identity: inbound.Identity | inbound.Referrer) -> list[IdentityKey]:
    """Normalized keys, most identifying first (the first one names a new lead)."""
    raw = [
        (IdentityKind.EMAIL, identity.email),
        (IdentityKind.PHONE, getattr(identity, "phone", None)),
        (IdentityKind.CUSTOMER, identity.customer_id),
        (IdentityKind.ANONYMOUS, getattr(identity, "anonymous_id", None)),
    ]
    keys = [IdentityKey.of(kind, value) for kind, value in raw if value]
    return [key for key in keys if key.value.strip("+")]
