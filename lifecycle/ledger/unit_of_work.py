"""One batch's unit of work: the aggregates it loads and changes, each loaded once, saved together.

It reads what a batch names in bulk (cache first, then two queries), hands the stitching
policy its identities and leads (``stitching.Aggregates``), and collects what changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, CanMutateProtocol, DomainEventProtocol

from lifecycle.adapters.eventstore import select_histories
from lifecycle.aggregates import Campaign, Identity, Lead, Receipt, stitching
from lifecycle.contracts import inbound
from lifecycle.contracts.translation import CampaignSpend, LeadFact, identity_keys, translate
from lifecycle.domain.identity import campaign_id, fact_id, receipt_id

if TYPE_CHECKING:
    from eventsourcing.application import Repository
    from eventsourcing.persistence import AggregateRecorder, Mapper

A = TypeVar("A", bound=Aggregate)
Outcome = Literal["recorded", "duplicate", "suppressed"]


class Engine(Protocol):
    """What a unit of work needs of the engine (``LeadLifecycle``): its store and cache."""

    @property
    def recorder(self) -> AggregateRecorder:
        """Where the events are."""

    @property
    def mapper(self) -> Mapper[UUID]:
        """Stored events to domain events."""

    @property
    def repository(self) -> Repository[UUID]:
        """Holds the aggregate cache."""

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """An aggregate from the store."""


class UnitOfWork(stitching.Aggregates):
    """The aggregates one batch loads and changes.

    A first attempt trusts the engine's cache and that events are new; a retry (after a
    conflict with another writer) reads the store and looks for receipts.
    """

    def __init__(self, engine: Engine, *, retrying: bool) -> None:
        self.engine = engine
        self.retrying = retrying
        self.loaded: dict[UUID, Aggregate] = {}
        self.missing: set[UUID] = set()
        self.fact_ids: set[str] = set()
        # Saved as bare events, not aggregates: nothing reads a receipt back but a retry.
        self.receipt_events: list[DomainEventProtocol[UUID]] = []

    # What the stitching policy works on

    def identity(self, identity_id: UUID) -> Identity | None:
        """The identity aggregate, from this batch, the cache or the store."""
        return self.get(Identity, identity_id)

    def lead(self, lead_id: UUID) -> Lead | None:
        """The lead, from this batch, the cache or the store."""
        return self.get(Lead, lead_id)

    def add(self, aggregate: A) -> A:
        """A new aggregate, saved with the batch."""
        self.loaded[aggregate.id] = aggregate
        self.missing.discard(aggregate.id)
        return aggregate

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """An aggregate of this class, loaded once per batch."""
        if aggregate_id in self.missing:
            return None
        aggregate = self.loaded.get(aggregate_id)
        if aggregate is None:
            aggregate = self._cached(aggregate_id) or self.engine.get(cls, aggregate_id)
            if aggregate is None:
                self.missing.add(aggregate_id)
                return None
            self.loaded[aggregate_id] = aggregate
        assert isinstance(aggregate, cls)  # noqa: S101 (ids are typed by construction)
        return aggregate

    # Loading

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
            named.update(key.identity_id for key in identity_keys(event.data.identity))
            referrer = getattr(event.data, "referrer", None)
            if referrer is not None:
                named.update(key.identity_id for key in identity_keys(referrer))
            if self.retrying:
                named.add(receipt_id(event.source, event.id))
        self._load(named)
        self._load(
            {
                a.lead_id
                for a in self.loaded.values()
                if isinstance(a, Identity) and a.lead_id is not None
            }
        )

    def _load(self, aggregate_ids: set[UUID]) -> None:
        unread: list[UUID] = []
        for aggregate_id in aggregate_ids - self.loaded.keys() - self.missing:
            cached = self._cached(aggregate_id)
            if cached is None:
                unread.append(aggregate_id)
            else:
                self.loaded[aggregate_id] = cached
        histories = select_histories(self.engine.recorder, unread)
        mapper = self.engine.mapper
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
        cache = self.engine.repository.cache
        if cache is None:
            return None
        try:
            aggregate = cache.get(aggregate_id, evict=self.retrying)
        except KeyError:
            return None
        return None if self.retrying else cast("Aggregate", aggregate)

    # Saving

    def changed(self) -> Iterable[Aggregate]:
        """Every aggregate the batch holds (the unchanged ones have no pending events)."""
        return self.loaded.values()

    def cache_loaded(self) -> None:
        """Cache what the batch saved: the aggregates are now as the store has them."""
        cache = self.engine.repository.cache
        if cache is not None:
            for aggregate_id, aggregate in self.loaded.items():
                cache.put(aggregate_id, aggregate)

    def evict(self) -> None:
        """Forget what a failed batch changed in place (the cache handed those objects out)."""
        cache = self.engine.repository.cache
        if cache is None:
            return
        # (Evicted one by one: LRUCache.clear() in eventsourcing 9.5.6 keeps the entries.)
        for aggregate_id in list(self.loaded):
            with contextlib.suppress(KeyError):
                cache.get(aggregate_id, evict=True)

    # Recording

    def apply(self, event: inbound.InboundEvent) -> Outcome:
        """Record one event's fact: recorded, a duplicate, or suppressed (a forgotten person's)."""
        fid = fact_id(event.source, event.id)
        receipt = receipt_id(event.source, event.id)
        if fid in self.fact_ids or (self.retrying and self.get(Receipt, receipt) is not None):
            return "duplicate"
        self.fact_ids.add(fid)
        try:
            recorded = self._record(translate(event, fid))
        except stitching.SuppressedError:
            return "suppressed"  # no receipt: nothing of it is kept
        if recorded:
            self.receipt_events.append(Receipt.issue(receipt))
            return "recorded"
        return "duplicate"

    def _record(self, translated: LeadFact | CampaignSpend) -> bool:
        if isinstance(translated, CampaignSpend):
            aggregate_id = campaign_id(translated.campaign_key)
            campaign = self.get(Campaign, aggregate_id) or self.add(
                Campaign(id=aggregate_id, key=translated.campaign_key)
            )
            return campaign.record_spend(translated.spend)
        fact = translated.fact
        if stitching.suppressed(self, translated.keys):
            raise stitching.SuppressedError(fact.fact_id)  # before anything is claimed
        if translated.referrer is not None:
            referrer = stitching.claim_referrer(self, translated.referrer, fact.at)
            if referrer is not None:
                fact = msgspec.structs.replace(fact, referrer_lead_id=referrer)
        return stitching.record_fact(self, translated.keys, fact, translated.profile)
