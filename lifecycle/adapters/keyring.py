"""Per-person data keys: the personal fields of stored events, sealed so they can be shredded.

Each lead has a data key of its own (AES-256-GCM, from the ``cryptography`` package). The keys
are kept in ``lifecycle_keys``, in the event store's database, each wrapped by the master key
(``LIFECYCLE_MASTER_KEY``). A sealed field is ``sealed:v1:`` and the base64 of nonce and
ciphertext, with the lead id as associated data: a value moved to another lead does not open.
Erasing a person deletes their keys, and what was sealed with them reads as ``[erased]`` from
then on. The rules read no personal field, so every figure stays as it was.

A new key is written by the recorder (``eventstore``) in the transaction of the first events
sealed with it, and an erasure deletes keys in the transaction of its ``Erased`` event: a
lead's events are never stored without their key, and a person is forgotten all at once.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from typing import Final
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifecycle.domain.facts import ERASED
from lifecycle.errors import ConfigurationError

__all__ = ["ERASED", "Keyring", "is_sealed", "master_key", "new_master_key"]

SEALED: Final = "sealed:v1:"
MASTER_PREFIX: Final = "lmk1_"
_NONCE_BYTES: Final = 12
_WRAP_CONTEXT: Final = b"lifecycle-key:"

# Unwrapped keys kept in memory (about 200 bytes each): the leads of the last days' traffic.
REMEMBERED_KEYS: Final = 50_000

# Reads the wrapped keys of these leads from the store (the ones it has).
ReadWrapped = Callable[[list[UUID]], dict[UUID, bytes]]


def new_master_key() -> str:
    """A new master key, as ``lifecycle keys create`` prints it."""
    return MASTER_PREFIX + base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def master_key(text: str, where: str = "LIFECYCLE_MASTER_KEY") -> bytes:
    """The bytes of a master key (``lmk1_`` and 32 bytes in base64url)."""
    text = text.strip()
    if not text.startswith(MASTER_PREFIX):
        raise ConfigurationError(
            f"{where}: a master key starts with {MASTER_PREFIX} (run lifecycle keys create)"
        )
    try:
        key = base64.b64decode(text.removeprefix(MASTER_PREFIX), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{where}: not base64 after {MASTER_PREFIX}") from None
    if len(key) != 32:
        raise ConfigurationError(f"{where}: a master key holds 32 bytes, this one {len(key)}")
    return key


def is_sealed(value: object) -> bool:
    """Whether a stored value is a sealed one."""
    return isinstance(value, str) and value.startswith(SEALED)


class Keyring:
    """The data keys of the leads, unwrapped as needed and cached.

    ``load`` reads keys from the store (the recorder gives it a reader); ``seal`` makes a
    lead's key on first use, kept pending until the recorder has written it.
    """

    def __init__(self, master: bytes, *, remember: int = REMEMBERED_KEYS) -> None:
        self._master = AESGCM(master)
        self._remember = remember
        # The most recently used, unwrapped (None: erased, or never had one).
        self._keys: OrderedDict[UUID, AESGCM | None] = OrderedDict()
        self._pending: dict[UUID, bytes] = {}  # new keys, wrapped, not yet in the store
        self._erasing: set[UUID] = set()
        self._lock = threading.Lock()
        self.read_wrapped: ReadWrapped = lambda _ids: {}

    # Sealing and opening

    def seal(self, lead_id: UUID, plain: str) -> str:
        """``plain`` sealed with the lead's key (made now if the lead has none)."""
        # A key in memory needs no lock (one dict read is atomic); ingest seals on every fact.
        key = self._keys.get(lead_id) or self._key(lead_id, create=True)
        assert key is not None  # noqa: S101 (create=True makes one)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = key.encrypt(nonce, plain.encode(), lead_id.bytes)
        return SEALED + base64.b64encode(nonce + sealed).decode()

    def open(self, lead_id: UUID, value: str) -> str:
        """The plain value of a sealed one; ``[erased]`` once the lead's key is destroyed."""
        if not is_sealed(value):
            return value  # stored before encryption was on
        key = self._key(lead_id, create=False)
        if key is None:
            return ERASED
        try:
            raw = base64.b64decode(value.removeprefix(SEALED), validate=True)
            return key.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], lead_id.bytes).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise ConfigurationError(
                f"a personal field of lead {lead_id} does not open with its key (or is damaged): "
                "is LIFECYCLE_MASTER_KEY the key this store was made with?"
            ) from None

    def load(self, lead_ids: Iterable[UUID]) -> None:
        """Read the keys of these leads from the store at once (before opening their events)."""
        with self._lock:
            unread = [i for i in lead_ids if i not in self._keys]
        if not unread:
            return
        wrapped = self.read_wrapped(unread)
        with self._lock:
            for lead_id in unread:
                # A new key not written yet is the pending one (it may have been forgotten
                # here since it was made, not by the store).
                found = wrapped.get(lead_id) or self._pending.get(lead_id)
                if lead_id not in self._keys:
                    self._remembered(
                        lead_id, None if found is None else self._unwrap(lead_id, found)
                    )

    def _key(self, lead_id: UUID, *, create: bool) -> AESGCM | None:
        if lead_id not in self._keys:
            self.load([lead_id])
        with self._lock:
            key = self._keys.get(lead_id)
            if key is None and create:
                raw = AESGCM.generate_key(bit_length=256)
                self._pending[lead_id] = self._wrap(lead_id, raw)
                key = AESGCM(raw)
                self._remembered(lead_id, key)
            return key

    def _remembered(self, lead_id: UUID, key: AESGCM | None) -> None:
        """Keep this key (the lock held); beyond the bound, the oldest kept are forgotten."""
        self._keys[lead_id] = key
        self._keys.move_to_end(lead_id)
        while len(self._keys) > self._remember:
            self._keys.popitem(last=False)

    # What the recorder writes in the transaction of the events

    def unwritten(self, lead_ids: Collection[UUID]) -> dict[UUID, bytes]:
        """The new keys of these leads not in the store yet (wrapped)."""
        with self._lock:
            return {i: self._pending[i] for i in lead_ids if i in self._pending}

    def discard_unwritten(self) -> None:
        """The transaction failed: forget the keys it would have written.

        A retry reads the store, where another writer may have stored the lead's key first.
        """
        with self._lock:
            for lead_id in self._pending:
                self._keys.pop(lead_id, None)
            self._pending.clear()

    def written(self, lead_ids: Iterable[UUID]) -> None:
        """These keys were committed with their events."""
        with self._lock:
            for lead_id in lead_ids:
                self._pending.pop(lead_id, None)

    def erase(self, lead_ids: Iterable[UUID]) -> None:
        """Destroy these leads' keys with the next events written (the erasure's)."""
        with self._lock:
            self._erasing.update(lead_ids)

    def keep(self, lead_ids: Iterable[UUID]) -> None:
        """The erasure of these keys failed: they stay."""
        with self._lock:
            self._erasing.difference_update(lead_ids)

    def erasing(self) -> set[UUID]:
        """The keys to delete in the transaction being written."""
        with self._lock:
            return set(self._erasing)

    def erased(self, lead_ids: Iterable[UUID]) -> None:
        """These keys were deleted, and the transaction committed."""
        with self._lock:
            for lead_id in lead_ids:
                self._erasing.discard(lead_id)
                self._pending.pop(lead_id, None)
                self._remembered(lead_id, None)

    def _wrap(self, lead_id: UUID, raw: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._master.encrypt(nonce, raw, _WRAP_CONTEXT + lead_id.bytes)

    def _unwrap(self, lead_id: UUID, wrapped: bytes) -> AESGCM:
        try:
            raw = self._master.decrypt(
                wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _WRAP_CONTEXT + lead_id.bytes
            )
        except InvalidTag:
            raise ConfigurationError(
                "LIFECYCLE_MASTER_KEY does not open the keys of this store "
                "(it was made with another master key)"
            ) from None
        return AESGCM(raw)
