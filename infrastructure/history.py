"""Streams read for audit: each stream's decoded events and its state at any version, kept per process.

Recorded events never change, so what this process has read of a stream stays true: a later read fetches only
the events after it. States are kept (pickled, so every copy handed out is private) at every CHECKPOINT-th
version, so a state at any version replays fewer than CHECKPOINT events however long the stream.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import PersistenceError, StoredEvent

from domain.erasure import ErasedEvent
from infrastructure.encryption import ErasedError, seal_prefix
from infrastructure.eventstore import Clinic, Recorder, StoreUnavailableError

CHECKPOINT = 32
STATES_BUDGET = 64 * 1024 * 1024  # pickled checkpoints kept in all; the least recently read streams go first


@dataclass
class _Stream:
    events: list[Any] = field(default_factory=list)
    states: dict[int, bytes] = field(default_factory=dict)  # version -> pickled aggregate
    size: int = 0  # bytes of the pickled states
    lock: threading.Lock = field(default_factory=threading.Lock)


class StreamHistory:
    def __init__(self, app: Clinic, streams: int = 256, checkpoint: int = CHECKPOINT, budget: int = STATES_BUDGET) -> None:
        self.app = app
        self.recorder: Recorder = app.recorder  # type: ignore[assignment]
        self.checkpoint = checkpoint
        self.capacity = streams
        self.budget = budget
        self._streams: OrderedDict[UUID, _Stream] = OrderedDict()
        self._kept = 0  # bytes of the checkpoints of the streams kept
        self._guard = threading.Lock()
        if app.keyring is not None:
            app.keyring.on_erasure.append(self.forget)

    def forget(self) -> None:
        """Drops every stream read (after an erasure: what was decrypted of it must not outlive the key)."""
        with self._guard:
            self._streams.clear()

    def _decode(self, stored: Any) -> Any:
        try:
            return self.app.mapper.to_domain_event(stored)
        except ErasedError as erased:
            return ErasedEvent(stored.originator_id, stored.originator_version, stored.topic, erased.patient_id)

    def _stream(self, record_id: UUID) -> _Stream:
        with self._guard:
            stream = self._streams.get(record_id)
            if stream is None:
                stream = self._streams[record_id] = _Stream()
            self._streams.move_to_end(record_id)
            while len(self._streams) > self.capacity or (self._kept > self.budget and len(self._streams) > 1):
                _, dropped = self._streams.popitem(last=False)
                self._kept -= dropped.size
        return stream

    def _keep(self, record_id: UUID, stream: _Stream, version: int, state: bytes) -> None:
        """Adds a checkpoint, counted against the budget while the stream is kept (a running total: summing every
        stream's on each read cost a chart of hundreds of records most of its time)."""
        with self._guard:
            stream.states[version] = state
            stream.size += len(state)
            if self._streams.get(record_id) is stream:
                self._kept += len(state)

    def _decoded(self, stored: Iterable[StoredEvent]) -> list[Any]:
        """Every event this reads is decoded here, by the application's mapper; an erased patient's events as
        ErasedEvent (their place in the stream, nothing else)."""
        return [self._decode(s) for s in stored]

    def _newer(self, known: dict[UUID, int]) -> list[StoredEvent]:
        try:
            return self.recorder.newer_events(known)
        except PersistenceError as error:
            raise StoreUnavailableError(str(error)) from error

    def _caught_up(self, record_id: UUID) -> _Stream:
        stream = self._stream(record_id)
        with stream.lock:
            newer = self._newer({record_id: len(stream.events)})
            if newer:
                stream.events = [*stream.events, *self._decoded(newer)]
        return stream

    def events(self, record_id: UUID) -> Sequence[Any]:
        return self._caught_up(record_id).events

    def events_of(self, record_ids: Iterable[UUID]) -> dict[UUID, Sequence[Any]]:
        """events() of many streams, with what this process has not read of them yet read in one round trip."""
        streams = {uid: self._stream(uid) for uid in dict.fromkeys(record_ids)}
        newer: dict[UUID, list[StoredEvent]] = {}
        for stored in self._newer({uid: len(stream.events) for uid, stream in streams.items()}):
            newer.setdefault(stored.originator_id, []).append(stored)
        for uid, stream in streams.items():
            with stream.lock:  # another reader may have caught this stream up meanwhile: add only what follows it
                fresh = [s for s in newer.get(uid, ()) if s.originator_version > len(stream.events)]
                if fresh and fresh[0].originator_version == len(stream.events) + 1:
                    stream.events = [*stream.events, *self._decoded(fresh)]
        return {uid: stream.events for uid, stream in streams.items()}

    def state_at(self, record_id: UUID, version: int) -> Aggregate | None:
        """Reads the store only for a version this process has not read yet: those it has cannot change.
        ErasedError if the record's patient was erased."""
        if self.app.keyring is not None:
            self.app.keyring.refresh()
        stream = self._stream(record_id)
        if len(stream.events) < version:
            stream = self._caught_up(record_id)
        version = min(version, len(stream.events))
        if version <= 0:
            return None
        with stream.lock:
            start = max((v for v in stream.states if v <= version), default=0)
            record = pickle.loads(stream.states[start]) if start else None
            for event in stream.events[start:version]:
                if isinstance(event, ErasedEvent):
                    raise ErasedError(event.patient_id)
                record = event.mutate(record)
                reached = event.originator_version
                if reached % self.checkpoint == 0 and reached not in stream.states:
                    self._keep(record_id, stream, reached, pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
        return record

    def openings_mentioning(self, text: str) -> Sequence[Any]:
        """First events whose stored bytes contain the text (or, for an id, its hex form, as UUIDs are encoded;
        or, for a patient's id, the start of every state sealed with their key); with payloads compressed or
        encrypted with the library's cipher, every first event is decoded instead. Erased ones are left out."""
        mapper = self.app.mapper
        needles = [text.encode()]
        try:
            needles += [UUID(text).hex.encode(), seal_prefix(text)]
        except ValueError:
            pass
        try:
            if mapper.cipher is not None or mapper.compressor is not None:
                stored = self.recorder.openings_containing(b"")
            else:
                stored = self.recorder.openings_containing(*needles)
        except PersistenceError as error:
            raise StoreUnavailableError(str(error)) from error
        return [event for event in self._decoded(stored) if not isinstance(event, ErasedEvent)]
