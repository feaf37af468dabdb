"""The clinic's event store: one eventsourcing application, loads aggregates, saves them in group commits."""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, PersistenceError, Transcoding


A = TypeVar("A", bound=Aggregate)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class Clinic(Application[UUID]):
    """All of the clinic's aggregates share one application sequence (one notification log)."""

    name = "Clinic"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())


class StoreUnavailableError(Exception):
    """Raised when the event store cannot be reached or fails to record."""


@dataclass
class _Unit:
    events: list[Any]
    done: threading.Event = field(default_factory=threading.Event)
    position: int | None = None
    error: BaseException | None = None

    @property
    def originator_ids(self) -> set[UUID]:
        return {e.originator_id for e in self.events}


class GroupCommitter:
    """Saves the units of all commands waiting at one moment in one transaction (one table lock).

    Each unit still gets its own outcome: when the batch conflicts, units are retried one by one
    so only the stale ones fail. Units that touch an aggregate already in the batch wait for the
    next batch, since at most one of them can succeed.
    """

    def __init__(self, app: Clinic, max_batch: int = 500) -> None:
        self.app = app
        self.max_batch = max_batch
        self._queue: deque[_Unit] = deque()
        self._ready = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def save(self, events: list[Any]) -> int | None:
        unit = _Unit(events)
        with self._ready:
            if self._stopped:
                raise StoreUnavailableError("The event store is shutting down.")
            self._queue.append(unit)
            self._ready.notify()
        unit.done.wait()
        if unit.error is not None:
            raise unit.error
        return unit.position

    def stop(self) -> None:
        with self._ready:
            self._stopped = True
            self._ready.notify()
        self._thread.join(timeout=10)

    def _take_batch(self) -> list[_Unit]:
        batch: list[_Unit] = []
        touched: set[UUID] = set()
        deferred: list[_Unit] = []
        while self._queue and len(batch) < self.max_batch:
            unit = self._queue.popleft()
            ids = unit.originator_ids
            if ids & touched:
                deferred.append(unit)
                continue
            touched |= ids
            batch.append(unit)
        self._queue.extendleft(reversed(deferred))
        return batch

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopped:
                    self._ready.wait()
                if self._stopped and not self._queue:
                    return
                batch = self._take_batch()
            self._commit(batch)

    def _commit(self, batch: list[_Unit]) -> None:
        try:
            if len(batch) == 1:
                self._record(batch[0])
                return
            try:
                positions = _positions(self.app.save(*(e for unit in batch for e in unit.events)))
            except IntegrityError:
                for unit in batch:
                    self._record(unit)
            else:
                for unit in batch:
                    unit.position = max((positions[id(e)] for e in unit.events), default=None)
        except BaseException as error:  # noqa: BLE001 - every waiter must learn the outcome
            for unit in batch:
                if unit.position is None and unit.error is None:
                    unit.error = error
        finally:
            for unit in batch:
                unit.done.set()

    def _record(self, unit: _Unit) -> None:
        try:
            positions = _positions(self.app.save(*unit.events))
        except IntegrityError as error:
            unit.error = error
        else:
            unit.position = max((positions[id(e)] for e in unit.events), default=None)


def _positions(recordings: Iterable[Any]) -> dict[int, int]:
    return {id(r.domain_event): r.notification.id for r in recordings}


def fork(aggregate: A) -> A:
    """A private copy for one command: aggregates hold immutable values in flat containers, so this is enough."""
    twin = copy.copy(aggregate)
    for name, value in vars(aggregate).items():
        if isinstance(value, (dict, list, set)):
            setattr(twin, name, type(value)(value))
    return twin


@dataclass
class _Cached:
    aggregate: Aggregate | None
    verified_at: float


class AggregateCache:
    """Recently used aggregates of this process, as of their last verified version.

    Writes stay safe whatever the cache says: a save from a stale copy fails its version check and the
    command reloads. Entries not verified for `fresh_seconds` are fast-forwarded from the store before
    use, which bounds how stale a read-only dependency (a doctor's availability) can be.
    """

    def __init__(self, maxsize: int, fresh_seconds: float) -> None:
        self.maxsize = maxsize
        self.fresh_seconds = fresh_seconds
        self._entries: OrderedDict[UUID, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, aggregate_id: UUID) -> _Cached | None:
        with self._lock:
            entry = self._entries.get(aggregate_id)
            if entry is not None:
                self._entries.move_to_end(aggregate_id)
            return entry

    def put(self, aggregate_id: UUID, aggregate: Aggregate | None) -> None:
        with self._lock:
            current = self._entries.get(aggregate_id)
            if aggregate is not None and current is not None and current.aggregate is not None:
                if current.aggregate.version > aggregate.version:
                    return
            self._entries[aggregate_id] = _Cached(aggregate, time.monotonic())
            self._entries.move_to_end(aggregate_id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def evict(self, aggregate_ids: Iterable[UUID]) -> None:
        with self._lock:
            for aggregate_id in aggregate_ids:
                self._entries.pop(aggregate_id, None)

    def is_fresh(self, entry: _Cached) -> bool:
        return time.monotonic() - entry.verified_at < self.fresh_seconds


class EventStore:
    """Loads aggregates and saves their new events; the only door to the clinic's history."""

    def __init__(
        self, app: Clinic, *, group_commit: bool = True, cache_size: int = 20_000, cache_fresh_seconds: float = 1.0
    ) -> None:
        self.app = app
        self._committer = GroupCommitter(app) if group_commit else None
        self._cache = AggregateCache(cache_size, cache_fresh_seconds) if cache_size > 0 else None
        self.after_save: list[Callable[[], None]] = []

    def find(self, cls: type[A], aggregate_id: UUID | str) -> A | None:
        """A private copy of the aggregate for one command, or None if it does not exist (as that type)."""
        try:
            uid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(str(aggregate_id))
        except ValueError:
            return None
        try:
            aggregate = self._load(uid)
        except PersistenceError as error:
            raise StoreUnavailableError(str(error)) from error
        return fork(aggregate) if isinstance(aggregate, cls) else None

    def _load(self, uid: UUID) -> Aggregate | None:
        if self._cache is None:
            return self._read(uid)
        entry = self._cache.get(uid)
        if entry is not None and self._cache.is_fresh(entry):
            return entry.aggregate
        if entry is not None and entry.aggregate is not None:
            newer = self.app.events.get(originator_id=uid, gt=entry.aggregate.version)
            aggregate = project_aggregate(fork(entry.aggregate), newer)
        else:
            aggregate = self._read(uid)
        self._cache.put(uid, aggregate)
        return aggregate

    def _read(self, uid: UUID) -> Aggregate | None:
        try:
            return self.app.repository.get(uid)
        except AggregateNotFoundError:
            return None

    def save(self, *aggregates: Aggregate | None) -> int | None:
        """Saves atomically; answers the position of the last event in the application log."""
        saved = [a for a in aggregates if a is not None]
        events = [e for a in saved for e in a.collect_events()]
        if not events:
            return None
        try:
            if self._committer is not None:
                position = self._committer.save(events)
            else:
                position = max(r.notification.id for r in self.app.save(*events))
        except IntegrityError:
            if self._cache is not None:
                self._cache.evict(a.id for a in saved)
            raise
        except PersistenceError as error:
            if self._cache is not None:
                self._cache.evict(a.id for a in saved)
            raise StoreUnavailableError(str(error)) from error
        if self._cache is not None:
            for aggregate in saved:
                self._cache.put(aggregate.id, fork(aggregate))
        for callback in self.after_save:
            callback()
        return position

    def max_position(self) -> int:
        try:
            return self.app.recorder.max_notification_id() or 0
        except PersistenceError as error:
            raise StoreUnavailableError(str(error)) from error

    def close(self) -> None:
        if self._committer is not None:
            self._committer.stop()
        self.app.close()

