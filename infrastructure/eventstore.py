"""The clinic's event store: loads aggregates at their latest recorded version, saves them in group commits."""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, PersistenceError, StoredEvent, Transcoding

from infrastructure.encryption import ErasedError, Keyring, PatientMapper, data_subject
from infrastructure.recorders import ClinicPostgresRecorder, ClinicSQLiteRecorder

A = TypeVar("A", bound=Aggregate)
Recorder = ClinicPostgresRecorder | ClinicSQLiteRecorder


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class Clinic(Application[UUID]):
    """All of the clinic's aggregates share one application sequence (one notification log).

    With a keyring, the events of a patient's records are sealed with that patient's data key (see encryption)."""

    name = "Clinic"
    mapper: PatientMapper

    def __init__(self, env: dict[str, str] | None = None, keyring: Keyring | None = None) -> None:
        self.keyring = keyring
        super().__init__(env=env)

    def construct_mapper(self) -> PatientMapper:  # type: ignore[override]
        return PatientMapper(self.construct_transcoder(), self.keyring)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())


class StoreUnavailableError(Exception):
    """Raised when the event store cannot be reached, or did not take a change within the time allowed."""


class StaleDecisionError(IntegrityError):
    """Raised when a stream had moved past the version a command decided on by the time its events were recorded."""

    def __init__(self, streams: Iterable[UUID]) -> None:
        super().__init__("The record changed after this command read it.")
        self.streams = frozenset(streams)


@dataclass(eq=False)
class Unit:
    """One command's events, encoded and waiting to be recorded together."""

    stored: list[StoredEvent]
    done: threading.Event = field(default_factory=threading.Event)
    positions: Sequence[int] = ()
    error: BaseException | None = None
    taken: bool = False
    abandoned: bool = False

    @cached_property
    def first_versions(self) -> dict[UUID, int]:
        """Each stream's first new version: the stream must stand one below it when the unit is recorded."""
        first: dict[UUID, int] = {}
        for event in self.stored:
            first.setdefault(event.originator_id, event.originator_version)
        return first

    def stale_streams(self, current: dict[UUID, int]) -> list[UUID]:
        """The streams that no longer stand where this unit's events would follow them."""
        return [stream for stream, version in self.first_versions.items() if current.get(stream, 0) != version - 1]

    def finish(self, positions: Sequence[int] = (), error: BaseException | None = None) -> None:
        self.positions, self.error = positions, error
        self.done.set()


class GroupCommitter:
    """Records the units of all commands waiting at one moment in one transaction (one table lock).

    Units touching the same stream go to different batches, since at most one of them can be current; one that
    a unit recorded here has already outrun fails at once, without a round trip. When a batch conflicts (another
    process moved a stream), the streams' current versions show which units were decided on an older state:
    those fail (their commands decide again), and the others are recorded in one more transaction.
    """

    REMEMBERED_STREAMS = 10_000

    def __init__(self, recorder: Recorder, on_batch: Callable[[int], None] | None = None, max_batch: int = 500) -> None:
        self.recorder = recorder
        self.on_batch = on_batch
        self.max_batch = max_batch
        self._queue: deque[Unit] = deque()
        self._ready = threading.Condition()
        self._stopped = False
        self._recorded: OrderedDict[UUID, int] = OrderedDict()  # the last version recorded here of recent streams
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, unit: Unit) -> None:
        with self._ready:
            if self._stopped:
                raise StoreUnavailableError("The event store is shutting down.")
            self._queue.append(unit)
            self._ready.notify()

    def abandon(self, unit: Unit) -> bool:
        """Withdraws a unit not yet taken into a transaction; answers False if it is already being recorded."""
        with self._ready:
            if unit.taken:
                return False
            unit.abandoned = True
            return True

    def stop(self) -> None:
        with self._ready:
            self._stopped = True
            self._ready.notify()
        self._thread.join(timeout=10)

    def _take_batch(self) -> list[Unit]:
        batch: list[Unit] = []
        later: list[Unit] = []
        touched: set[UUID] = set()
        while self._queue and len(batch) < self.max_batch:
            unit = self._queue.popleft()
            if unit.abandoned:
                continue
            outrun = [stream for stream, version in unit.first_versions.items() if self._recorded.get(stream, 0) >= version]
            if outrun:
                unit.finish(error=StaleDecisionError(outrun))
                continue
            if touched.isdisjoint(unit.first_versions):
                touched.update(unit.first_versions)
                unit.taken = True
                batch.append(unit)
            else:
                later.append(unit)
        self._queue.extendleft(reversed(later))
        return batch

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopped:
                    self._ready.wait()
                if self._stopped and not self._queue:
                    return
                batch = self._take_batch()
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[Unit]) -> None:
        if self.on_batch is not None:
            self.on_batch(len(batch))
        try:
            try:
                self._record(batch)
            except IntegrityError:
                self._record_current(batch)
        except BaseException as error:  # noqa: BLE001 - every waiter must learn the outcome
            for unit in batch:
                if not unit.done.is_set():
                    unit.finish(error=error)

    def _record(self, units: list[Unit]) -> None:
        positions = self.recorder.insert_events([event for unit in units for event in unit.stored]) or []
        offset = 0
        for unit in units:
            unit.finish(positions[offset : offset + len(unit.stored)])
            offset += len(unit.stored)
            for event in unit.stored:
                self._recorded[event.originator_id] = event.originator_version
                self._recorded.move_to_end(event.originator_id)
        while len(self._recorded) > self.REMEMBERED_STREAMS:
            self._recorded.popitem(last=False)

    def _record_current(self, batch: list[Unit]) -> None:
        """Fails the units decided on an older state and records the rest in one more transaction (again only
        if another process recorded something in between: each round fails at least one unit)."""
        pending = batch
        while pending:
            current = self.recorder.current_versions({stream for unit in pending for stream in unit.first_versions})
            stale = {unit: unit.stale_streams(current) for unit in pending if unit.stale_streams(current)}
            for unit in stale or pending:
                unit.finish(error=StaleDecisionError(stale.get(unit, unit.first_versions)))
            pending = [unit for unit in pending if not unit.done.is_set()]
            try:
                if pending:
                    self._record(pending)
                return
            except IntegrityError:
                continue


class RecordedStates:
    """The last recorded state of recently used aggregates, pickled: immutable bytes, so every copy handed out
    is built afresh and shares nothing with any other, and nothing unrecorded ever gets in."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[UUID, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, aggregate_id: UUID) -> tuple[int, bytes] | None:
        """The version and pickled state last recorded of the aggregate, if this process knows it."""
        with self._lock:
            entry = self._entries.get(aggregate_id)
            if entry is not None:
                self._entries.move_to_end(aggregate_id)
            return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def remember(self, aggregate: Aggregate) -> None:
        if self.maxsize <= 0:
            return
        state = pickle.dumps(aggregate, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            entry = self._entries.get(aggregate.id)
            if entry is not None and entry[0] >= aggregate.version:
                return
            self._entries[aggregate.id] = (aggregate.version, state)
            self._entries.move_to_end(aggregate.id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)


class StreamTurns:
    """Commands of this process take turns on streams they have seen contended: one at a time decides and saves,
    instead of all deciding on the same version and all but one failing, round after round."""

    def __init__(self) -> None:
        self._locks: dict[UUID, tuple[threading.RLock, int]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def taking(self, streams: Iterable[UUID]) -> Iterator[None]:
        ordered = sorted(set(streams))  # one order for everyone, so no two commands wait on each other in a ring
        joined: list[UUID] = []
        held: list[threading.RLock] = []
        try:
            for stream in ordered:
                with self._guard:
                    lock, waiting = self._locks.get(stream) or (threading.RLock(), 0)
                    self._locks[stream] = (lock, waiting + 1)
                joined.append(stream)
                lock.acquire()
                held.append(lock)
            yield
        finally:
            for lock in held:
                lock.release()
            with self._guard:
                for stream in joined:
                    lock, waiting = self._locks[stream]
                    if waiting == 1:
                        del self._locks[stream]
                    else:
                        self._locks[stream] = (lock, waiting - 1)


def _uuid(aggregate_id: UUID | str) -> UUID | None:
    if isinstance(aggregate_id, UUID):
        return aggregate_id
    try:
        return UUID(str(aggregate_id))
    except ValueError:
        return None


class EventStore:
    """Loads aggregates and saves their new events; the only door to the clinic's history.

    Every load reads the stream's events after the version this process last saw (one query for all the
    streams asked for at once), so a command always decides on the latest recorded version; the events
    before it come from a process-local copy of recorded states.
    """

    def __init__(
        self,
        app: Clinic,
        *,
        group_commit: bool = True,
        cache_size: int = 20_000,
        save_timeout: float = 5.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.app = app
        self.recorder: Recorder = app.recorder  # type: ignore[assignment]
        self.save_timeout = save_timeout
        self._committer = GroupCommitter(self.recorder, on_batch) if group_commit else None
        self._states = RecordedStates(cache_size)
        self._turns = StreamTurns()
        self.after_save: list[Callable[[], None]] = []
        if app.keyring is not None:
            app.keyring.on_erasure.append(self._states.clear)

    def taking_turns(self, streams: Iterable[UUID]) -> AbstractContextManager[None]:
        """Holds the streams for one decision: commands of this process that also hold them wait their turn."""
        return self._turns.taking(streams)

    def find(self, cls: type[A], aggregate_id: UUID | str) -> A | None:
        """A private copy of the aggregate at its latest recorded version, or None if it does not exist (as that type)."""
        (found,) = self.find_all((cls, aggregate_id))
        return found

    def find_all(self, *wanted: tuple[type[Aggregate], UUID | str]) -> list[Any]:
        """Like find for several aggregates, read in one round trip."""
        ids = [_uuid(aggregate_id) for _, aggregate_id in wanted]
        loaded = self._load({uid for uid in ids if uid is not None})
        return [
            loaded.get(uid) if uid is not None and isinstance(loaded.get(uid), cls) else None
            for (cls, _), uid in zip(wanted, ids)
        ]

    def _load(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate | None]:
        if self.app.keyring is not None:
            self.app.keyring.refresh()  # an erasure anywhere drops this process's recorded states first
        recorded = {uid: self._states.get(uid) for uid in ids}
        try:
            newer = self.recorder.newer_events({uid: entry[0] if entry else 0 for uid, entry in recorded.items()})
        except PersistenceError as error:
            raise StoreUnavailableError(str(error)) from error
        events_of: dict[UUID, list[StoredEvent]] = defaultdict(list)
        for stored in newer:
            events_of[stored.originator_id].append(stored)
        loaded: dict[UUID, Aggregate | None] = {}
        for uid, entry in recorded.items():
            aggregate = pickle.loads(entry[1]) if entry else None
            try:
                for stored in events_of[uid]:
                    aggregate = self.app.mapper.to_domain_event(stored).mutate(aggregate)
            except ErasedError:
                aggregate = None  # its patient's data was erased: the record no longer exists for anyone
            else:
                if events_of[uid] and aggregate is not None:
                    self._states.remember(aggregate)
            loaded[uid] = aggregate
        return loaded

    def save(self, *aggregates: Aggregate | None) -> int | None:
        """Records the aggregates' new events atomically; answers the position of the last one in the log.

        Raises StaleDecisionError (an IntegrityError) when a stream moved on since it was loaded: decide again.
        """
        return self.save_soon(*aggregates)()

    def save_soon(self, *aggregates: Aggregate | None) -> Callable[[], int | None]:
        """Hands the aggregates' new events to the group commit and answers a wait for what save answers, so a
        caller can do other work while they are recorded (a read and its read log entry)."""
        saved, stored = [], []
        for aggregate in aggregates:
            new = aggregate.collect_events() if aggregate is not None else []
            if new:
                saved.append(aggregate)
                subject = data_subject(aggregate)
                stored += [self.app.mapper.encode(e, subject) for e in new]
        if not stored:
            return lambda: None
        recorded = self._record(stored)

        def outcome() -> int | None:
            try:
                positions = recorded()
            except IntegrityError:
                raise
            except PersistenceError as error:
                raise StoreUnavailableError(str(error)) from error
            for aggregate in saved:
                self._states.remember(aggregate)
            for callback in self.after_save:
                callback()
            return positions[-1]

        return outcome

    def _record(self, stored: list[StoredEvent]) -> Callable[[], Sequence[int]]:
        if self._committer is None:
            return lambda: self.recorder.insert_events(stored) or []
        unit = Unit(stored)
        self._committer.submit(unit)

        def recorded() -> Sequence[int]:
            if not unit.done.wait(self.save_timeout) and self._committer.abandon(unit):  # type: ignore[union-attr]
                raise StoreUnavailableError("The event store did not take the change in time; nothing was recorded.")
            unit.done.wait()
            if unit.error is not None:
                raise unit.error
            return unit.positions

        return recorded

    def max_position(self) -> int:
        try:
            return self.recorder.max_notification_id() or 0
        except PersistenceError as error:
            raise StoreUnavailableError(str(error)) from error

    def close(self) -> None:
        if self._committer is not None:
            self._committer.stop()
        self.app.close()
