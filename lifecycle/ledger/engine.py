"""The engine: records inbound events as facts on Lead, Identity and Campaign aggregates.

Every command takes a batch of decoded events and an optional tracking position (a Kafka
partition offset, say) and saves everything the batch changed, with the position, in one
database transaction. A redelivered batch or a repeated CloudEvent changes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper, ProcessRecorder, Tracking

from lifecycle.adapters import sealing
from lifecycle.adapters.eventstore import (
    KeyedRecorder,
    MsgspecMapper,
    process_recorder,
    select_histories,
)
from lifecycle.adapters.keyring import Keyring, is_sealed
from lifecycle.aggregates import Campaign, Identity, Lead, stitching
from lifecycle.contracts import inbound
from lifecycle.domain.identity import IdentityKey, campaign_id
from lifecycle.errors import (
    ConfigurationError,
    LeadNotFoundError,
    LifecycleError,
    TransientError,
)
from lifecycle.ledger.unit_of_work import UnitOfWork
from lifecycle.rules import LeadView, Rulebook, default_rulebook, fold

A = TypeVar("A", bound=Aggregate)

# The events whose personal fields are sealed (lifecycle/adapters/sealing.py names them).
SEALED = (Lead.IdentifierAdded, Lead.ProfileUpdated, Lead.FactRecorded, Lead.Absorbed)

# Conflicts come from other writers on the same leads; a few retries always settle them.
MAX_ATTEMPTS = 8


class ConcurrencyError(TransientError):
    """Other writers kept changing the same aggregates; the batch was not recorded."""


@dataclass
class RecordResult:
    """What a batch did: facts newly recorded, events already there, and suppressed ones."""

    recorded: int = 0
    duplicates: int = 0
    suppressed: int = 0
    """Facts of a forgotten person's suppressed identities: dropped, not recorded."""


def _apply_all(work: UnitOfWork, events: Sequence[inbound.InboundEvent]) -> RecordResult:
    result = RecordResult()
    for event in events:
        outcome = work.apply(event)
        if outcome == "recorded":
            result.recorded += 1
        elif outcome == "duplicate":
            result.duplicates += 1
        else:
            result.suppressed += 1
    return result


class LeadLifecycle(Application[UUID]):
    """Leads, identities and campaigns in one event store (made by ``lifecycle.wiring``)."""

    name = "lifecycle"
    env: ClassVar[dict[str, str]] = {
        # Queries bring cached aggregates up to date with the store on every read (other
        # processes write too). Commands trust the cache first (see UnitOfWork._cached).
        # Cached aggregates are not copied: a failed batch evicts what it changed.
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
        self.public_mapper: Mapper[UUID] = self.mapper
        """Reads events without opening personal fields (the relay, replays): needs no key."""
        self.keyring: Keyring | None = None
        """The leads' keys, when personal data is sealed (``seal_with``)."""

    def seal_with(self, keyring: Keyring, published_properties: Collection[str]) -> None:
        """Seal personal fields with the leads' keys from now on (and open them when read)."""
        mapper, recorder = self.mapper, self.recorder
        if not isinstance(mapper, MsgspecMapper) or not isinstance(recorder, KeyedRecorder):
            raise ConfigurationError("sealing personal data needs the engine's mapper and recorder")
        self.public_mapper = copy.copy(mapper)
        mapper.seal_with(keyring, published_properties)
        recorder.keyring = keyring
        keyring.read_wrapped = recorder.read_keys
        self.keyring = keyring

    def holds_in_clear(self, lead_ids: Sequence[UUID]) -> bool:
        """Whether any of these leads has personal data stored in clear (before sealing)."""
        clear = self.mapper.clear_properties if isinstance(self.mapper, MsgspecMapper) else ()
        for history in select_histories(self.recorder, lead_ids).values():
            for stored in history:
                if stored.topic not in sealing.PERSONAL_TOPICS:
                    continue
                state = vars(self.public_mapper.to_domain_event(stored))
                values = sealing.personal_values(stored.topic, state, clear)
                if any(not is_sealed(v) for v in values):
                    return True
        return False

    def forget_cached(self, aggregate_ids: Sequence[UUID]) -> None:
        """Drop these aggregates from the cache (they hold a forgotten person in clear)."""
        cache = self.repository.cache
        if cache is not None:
            for aggregate_id in aggregate_ids:
                with contextlib.suppress(KeyError):
                    cache.get(aggregate_id, evict=True)

    def compact_keys(self) -> None:
        """Leave no deleted key on disk that the database can still give back."""
        recorder = self.recorder
        if isinstance(recorder, KeyedRecorder):
            recorder.compact_keys()

    def holds_sealed_data(self) -> bool:
        """Whether personal data was sealed in this store (it then needs the master key)."""
        recorder = self.recorder
        return isinstance(recorder, KeyedRecorder) and recorder.has_keys()

    def construct_recorder(self) -> ProcessRecorder:
        """A process recorder: only it writes tracking records with the events."""
        return process_recorder(self.factory)

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
            work = UnitOfWork(self, retrying=attempt > 0)
            try:
                result = self._attempt(work, events, tracking)
            except IntegrityError:
                self._undo(work)
                if tracking is not None and self._already_tracked(tracking):
                    return RecordResult(duplicates=len(events))
                time.sleep(min(0.01 * 2**attempt, 0.5))
            except BaseException:
                self._undo(work)
                raise
            else:
                return result
        raise ConcurrencyError(f"gave up after {MAX_ATTEMPTS} conflicting attempts")

    def _attempt(
        self,
        work: UnitOfWork,
        events: Sequence[inbound.InboundEvent],
        tracking: Tracking | None,
    ) -> RecordResult:
        work.prefetch(events)
        result = _apply_all(work, events)
        processing = ProcessingEvent[UUID](tracking)
        # (Events appended directly: collect_events() checks each object against runtime
        # protocols, which costs more than the rest of the batch.)
        for aggregate in work.changed():
            processing.events.extend(aggregate.collect_events())
        processing.events.extend(work.receipt_events)
        if self.keyring is not None:
            # The keys of the leads it writes, in one query (new leads have none).
            self.keyring.load({e.originator_id for e in processing.events if isinstance(e, SEALED)})
        if processing.events or tracking is not None:
            self._notify(self._record(processing))
        work.cache_loaded()
        return result

    def _undo(self, work: UnitOfWork) -> None:
        """Forget what a failed attempt changed in memory (aggregates, keys not written)."""
        work.evict()
        if self.keyring is not None:
            self.keyring.discard_unwritten()

    def position(self, tracking_name: str) -> int | None:
        """The last position recorded under this tracking name (None: nothing yet)."""
        return self.process_recorder.max_tracking_id(tracking_name)

    def _already_tracked(self, tracking: Tracking) -> bool:
        last = self.position(tracking.application_name)
        return last is not None and last >= tracking.notification_id

    # Queries

    def find_lead(self, key: IdentityKey) -> UUID | None:
        """The live lead that owns this identity, if any."""
        identity = self.get(Identity, key.identity_id)
        if identity is None or identity.lead_id is None:
            return None  # nobody's, or a forgotten person's
        return self.get_lead(identity.lead_id).id

    def get_lead(self, lead_id: UUID) -> Lead:
        """The lead, or the lead it was merged into."""
        lead = stitching.live_lead(lambda i: self.get(Lead, i), lead_id)
        if lead is None:
            raise LeadNotFoundError(f"no lead with id {lead_id}")
        return lead

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
        return self.get(Campaign, campaign_id(key))

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """An aggregate of this class from the store (up to date), or None."""
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, cls):
            raise LifecycleError(f"{aggregate_id} is a {type(aggregate).__name__}, not a {cls}")
        return aggregate
