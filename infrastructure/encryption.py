"""Encryption at rest, per patient: every event of a patient's records is sealed with AES-GCM under that patient's
own data key; the data keys are kept wrapped by a master key from the environment. Destroying a patient's data key
erases their data everywhere at once, while the stored bytes (which the transparency log hashes) stay as they were.

A sealed state is MAGIC, the patient's id (16 bytes: the key's name, needed to find it), a 12-byte nonce, then the
ciphertext with its tag. The associated data binds it to its place: stream, version and topic, so that a sealed
state copied onto another event does not open. States that do not begin with MAGIC are plain JSON (events of
records that are nobody's personal data, and events recorded before encryption existed).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from sqlalchemy import Column, DateTime, Engine, Integer, LargeBinary, MetaData, String, Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from domain.accounts import Account
from domain.patients import Patient
from domain.shared import Role

MAGIC = b"\x00mlE1"
NONCE = 12
SEALED_HEADER = len(MAGIC) + 16 + NONCE
_M, _N = len(MAGIC), len(MAGIC) + 16  # where the patient's id begins and ends in a sealed state
WRAP_CONTEXT = b"medledger data key of "

metadata = MetaData()
patient_keys = Table(
    "patient_keys",
    metadata,
    Column("patient_id", String(36), primary_key=True),
    Column("master_key_id", String(16)),  # null once destroyed
    Column("wrapped", LargeBinary),  # nonce + AES-GCM(master key, data key); null once destroyed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True)),
)
keyring_epoch = Table(
    "keyring_epoch",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("epoch", Integer, nullable=False),  # raised by every erasure, so that every process drops what it holds
)


class ErasedError(Exception):
    """Raised when a record's data key was destroyed: its data is erased and can never be read again."""

    def __init__(self, patient_id: UUID | str) -> None:
        super().__init__(f"The data of patient {patient_id} was erased.")
        self.patient_id = str(patient_id)


class UnknownMasterKeyError(RuntimeError):
    """Raised when a data key is wrapped by a master key this process was not given (rotation half done?)."""


def master_key_id(key: bytes) -> str:
    return hashlib.sha256(b"medledger master key\x00" + key).hexdigest()[:16]


@dataclass(frozen=True)
class MasterKeys:
    """The current master key (wraps every new or re-wrapped data key) and the previous ones (only unwrap)."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        for key in (self.current, *self.previous):
            if len(key) != 32:
                raise ValueError("A master key is 32 bytes (AES-256).")

    @property
    def current_id(self) -> str:
        return master_key_id(self.current)

    def by_id(self) -> dict[str, bytes]:
        return {master_key_id(key): key for key in (*self.previous, self.current)}

    def wrap(self, patient_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + AESGCM(self.current).encrypt(nonce, data_key, WRAP_CONTEXT + patient_id.encode())

    def unwrap(self, patient_id: str, key_id: str, wrapped: bytes) -> bytes:
        key = self.by_id().get(key_id)
        if key is None:
            raise UnknownMasterKeyError(
                f"The data key of patient {patient_id} is wrapped by master key {key_id}, which this process was not "
                "given (set it in MEDLEDGER_PREVIOUS_MASTER_KEYS until `medledger rotate-master-key` has run)."
            )
        return AESGCM(key).decrypt(wrapped[:NONCE], wrapped[NONCE:], WRAP_CONTEXT + patient_id.encode())


_ERASED = object()


class Keyring:
    """Patients' data keys: created on first use, unwrapped once per process, destroyed by an approved erasure.

    Unwrapped keys are kept in memory. Every `recheck_seconds` at most, a read of one counter tells whether any
    process erased a patient since; if so this process forgets every key and everything decrypted it keeps
    (the callbacks in `on_erasure`), and finds out afresh which keys still exist.
    """

    def __init__(self, engine: Engine, master: MasterKeys, *, recheck_seconds: float = 1.0, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.master = master
        self.recheck_seconds = recheck_seconds
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.on_erasure: list[Callable[[], None]] = []
        self._keys: dict[str, Any] = {}  # patient id -> AESGCM, or _ERASED
        self._by_name: dict[bytes, Any] = {}  # the same, by the id's 16 bytes as a sealed state names it
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._checked = 0.0

    def create_tables(self) -> None:
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            conn.execute(self._insert(keyring_epoch).values(id=1, epoch=0).on_conflict_do_nothing())

    def _insert(self, table: Table) -> Any:
        return (pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(table)

    # Freshness

    def refresh(self, force: bool = False) -> None:
        """Drops what this process holds if any patient was erased since it last looked (at most once a recheck)."""
        now = time.monotonic()
        if not force and now - self._checked < self.recheck_seconds:
            return
        with self.engine.connect() as conn:
            epoch = conn.execute(select(keyring_epoch.c.epoch).where(keyring_epoch.c.id == 1)).scalar_one()
        self._checked = now
        if self._epoch is not None and epoch != self._epoch:
            self._forget()
        self._epoch = epoch

    def _forget(self) -> None:
        with self._lock:
            self._keys.clear()
            self._by_name.clear()
        for callback in self.on_erasure:
            callback()

    # Keys

    def cipher(self, patient_id: str, *, create: bool) -> AESGCM:
        """The patient's data key (created if asked and missing); ErasedError once it was destroyed."""
        self.refresh()
        found = self._keys.get(patient_id)
        if found is None:
            found = self._load(patient_id, create)
        if found is _ERASED:
            raise ErasedError(patient_id)
        return found

    def cipher_named(self, name: bytes) -> AESGCM:
        """cipher(create=False) for the patient a sealed state names by the 16 bytes of their id (the hot path of
        every decode: no text id is made once the key is known)."""
        self.refresh()
        found = self._by_name.get(name)
        if found is None:
            patient_id = str(UUID(bytes=name))
            found = self._keys.get(patient_id) or self._load(patient_id, create=False)
            with self._lock:
                self._by_name[name] = found
        if found is _ERASED:
            raise ErasedError(str(UUID(bytes=name)))
        return found

    def _load(self, patient_id: str, create: bool) -> Any:
        row = self._row(patient_id)
        if row is None and create:
            with self.engine.begin() as conn:
                data_key = AESGCM.generate_key(bit_length=256)
                conn.execute(
                    self._insert(patient_keys)
                    .values(
                        patient_id=patient_id,
                        master_key_id=self.master.current_id,
                        wrapped=self.master.wrap(patient_id, data_key),
                        created_at=self.clock(),
                    )
                    .on_conflict_do_nothing()
                )
            row = self._row(patient_id)  # ours, or the one a concurrent writer made first
        if row is None:
            raise ErasedError(patient_id)  # no key was ever made: nothing of theirs was sealed, nothing can be read
        if row.wrapped is None:
            found: Any = _ERASED
        else:
            found = AESGCM(self.master.unwrap(patient_id, row.master_key_id, bytes(row.wrapped)))
        with self._lock:
            self._keys[patient_id] = found
        return found

    def _row(self, patient_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(patient_keys).where(patient_keys.c.patient_id == patient_id)).first()

    def erased(self, patient_id: str) -> bool:
        """Whether the patient's data key was destroyed (read from the keys table, not from memory)."""
        row = self._row(patient_id)
        return row is not None and row.wrapped is None

    def destroy(self, patient_id: str) -> bool:
        """Destroys the patient's data key for ever (a tombstone remains, so none is ever made again); answers
        whether this call destroyed it. Raises the epoch in the same transaction, so every process learns it."""
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                self._insert(patient_keys)
                .values(patient_id=patient_id, master_key_id=None, wrapped=None, created_at=now, destroyed_at=now)
                .on_conflict_do_nothing()
            )
            destroyed = conn.execute(
                update(patient_keys)
                .where(patient_keys.c.patient_id == patient_id, patient_keys.c.wrapped.is_not(None))
                .values(wrapped=None, master_key_id=None, destroyed_at=now)
            ).rowcount
            conn.execute(update(keyring_epoch).where(keyring_epoch.c.id == 1).values(epoch=keyring_epoch.c.epoch + 1))
        self._forget()
        self.refresh(force=True)
        return bool(destroyed)

    def rotate(self, progress: Callable[[int], None] | None = None) -> int:
        """Re-wraps every data key not wrapped by the current master key; events are not touched. Answers how many.
        Each key is re-wrapped only if it is still wrapped as read, so running processes and a concurrent
        rotation or erasure are safe."""
        current = self.master.current_id
        rewrapped = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(patient_keys.c.patient_id, patient_keys.c.master_key_id, patient_keys.c.wrapped)
                    .where(patient_keys.c.wrapped.is_not(None), patient_keys.c.master_key_id != current)
                    .limit(1000)
                ).all()
            if not rows:
                return rewrapped
            with self.engine.begin() as conn:
                for row in rows:
                    data_key = self.master.unwrap(row.patient_id, row.master_key_id, bytes(row.wrapped))
                    rewrapped += conn.execute(
                        update(patient_keys)
                        .where(patient_keys.c.patient_id == row.patient_id, patient_keys.c.master_key_id == row.master_key_id)
                        .values(master_key_id=current, wrapped=self.master.wrap(row.patient_id, data_key))
                    ).rowcount
            if progress is not None:
                progress(rewrapped)

    def counts(self) -> Mapping[str, int]:
        """How many data keys are live under each master key, and how many were destroyed."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(patient_keys.c.master_key_id)).scalars().all()
        counts: dict[str, int] = {}
        for key_id in rows:
            name = key_id or "destroyed"
            counts[name] = counts.get(name, 0) + 1
        return counts


# Whose data a record is


def data_subject(aggregate: Aggregate) -> str | None:
    """The patient whose personal data the aggregate's events carry, or None for records that are nobody's
    (doctors, calendars, staff accounts, sessions, the read log, erasure decisions). Any record naming a
    `patient_id` is that patient's, so records added later are sealed without being listed here; a record
    that names a patient but must outlive their erasure says so with KEPT_AFTER_ERASURE = True."""
    if getattr(type(aggregate), "KEPT_AFTER_ERASURE", False):
        return None
    if isinstance(aggregate, Patient):
        return str(aggregate.id)
    if isinstance(aggregate, Account):
        return aggregate.profile_id if aggregate.role == Role.PATIENT and aggregate.profile_id else None
    patient_id = getattr(aggregate, "patient_id", None)
    return str(patient_id) if patient_id else None


def sealed_by(state: bytes) -> str | None:
    """The patient whose key sealed this stored state, or None if it is plain."""
    if state[: len(MAGIC)] != MAGIC:
        return None
    return str(UUID(bytes=bytes(state[len(MAGIC) : len(MAGIC) + 16])))


def seal_prefix(patient_id: str) -> bytes:
    """The first bytes of every state sealed with the patient's key (to find their records in the store)."""
    return MAGIC + UUID(patient_id).bytes


def _associated(stored: StoredEvent) -> bytes:
    return stored.originator_id.bytes + stored.originator_version.to_bytes(8, "big") + stored.topic.encode()


@lru_cache(maxsize=65536)
def _name(patient_id: str) -> bytes:
    return UUID(patient_id).bytes


class PatientMapper(Mapper[UUID]):
    """The application's mapper: seals the events of a patient's records on the way in, opens them on the way out."""

    def __init__(self, transcoder: Transcoder, keyring: Keyring | None) -> None:
        super().__init__(transcoder)
        self.keyring = keyring

    def encode(self, event: Any, patient_id: str | None) -> StoredEvent:
        stored = super().to_stored_event(event)
        if patient_id is None or self.keyring is None:
            return stored
        cipher = self.keyring.cipher(patient_id, create=True)
        nonce = os.urandom(NONCE)
        sealed = MAGIC + _name(patient_id) + nonce + cipher.encrypt(nonce, stored.state, _associated(stored))
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic, sealed)

    def open(self, stored: StoredEvent) -> StoredEvent:
        """The stored event with its state in plain JSON; ErasedError if its patient's key was destroyed."""
        state = stored.state
        if state[:_M] != MAGIC:
            return stored
        if self.keyring is None:
            raise ErasedError(str(sealed_by(state)))
        cipher = self.keyring.cipher_named(bytes(state[_M:_N]))
        try:
            plain = cipher.decrypt(bytes(state[_N:SEALED_HEADER]), bytes(state[SEALED_HEADER:]), _associated(stored))
        except InvalidTag as error:
            raise TamperedStateError(stored) from error
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic, plain)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return super().to_domain_event(self.open(stored_event))

    def decode_unless_erased(self, stored_event: StoredEvent) -> Any | None:
        """The domain event, or None if its data was erased (projectors skip it: it projects to nothing)."""
        try:
            return self.to_domain_event(stored_event)
        except ErasedError:
            return None


class TamperedStateError(Exception):
    """Raised when a sealed state does not open with its patient's key at its place in the store: it was altered."""

    def __init__(self, stored: StoredEvent) -> None:
        super().__init__(
            f"The sealed state of event {stored.originator_id} v{stored.originator_version} does not authenticate: "
            "it was altered or moved (see `medledger verify`)."
        )
