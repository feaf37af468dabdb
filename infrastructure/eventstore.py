"""The clinic's event store: one eventsourcing application, loads aggregates, saves them in group commits."""

from __future__ import annotations

import copy
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    JSONTranscoder,
    PersistenceError,
    StoredEvent,
    Transcoding,
)

from infrastructure.metrics import observe_batch

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


class DependencyFailedError(IntegrityError):
    """Raised for a unit built on another command's staged changes when that command failed to record."""


class StagedChangesAheadError(IntegrityError):
    """Raised when a command was decided on an older state than changes already staged in this process."""


@dataclass(eq=False)
class Unit:
    """One command's events, already encoded, and the staged units whose changes it built upon."""

    originator_ids: set[UUID]
    stored: list[StoredEvent]
    depends_on: list[Unit] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    position: int | None = None
    error: BaseException | None = None

    @property
    def recorded(self) -> bool:
        return self.done.is_set() and self.error is None

    @property
    def doomed(self) -> bool:
        """Failed, or built (directly or not) on changes that failed to record."""
        if self.done.is_set():
            return self.error is not None
        return any(d.doomed for d in self.depends_on)

    @property
    def failed_dependency(self) -> Unit | None:
        return next((d for d in self.depends_on if d.doomed), None)

    def finish(self, error: BaseException | None = None) -> None:
        if error is not None:
            self.error = error
        self.depends_on = []
        self.done.set()


class GroupCommitter:
    """Records the units of all commands waiting at one moment in one transaction (one table lock).

    Each unit still gets its own outcome: when the batch conflicts, units are retried one by one
    so only the stale ones fail. A unit that touches a stream already in the batch joins it only if
    it was built on that unit's staged changes (its events follow them); otherwise it waits for the
    next batch, since at most one of them can succeed. A unit whose base failed fails too, so a
    stream never gets a gap. Encoding happens in the callers' threads, so this thread holds the GIL
    for little more than the round trip.
    """

    def __init__(self, recorder: ApplicationRecorder, max_batch: int = 500) -> None:
        self.recorder = recorder
        self.max_batch = max_batch
        self._queue: deque[Unit] = deque()
        self._ready = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, unit: Unit) -> None:
        with self._ready:
            if self._stopped:
                raise StoreUnavailableError("The event store is shutting down.")
            self._queue.append(unit)
            self._ready.notify()

    def stop(self) -> None:
        with self._ready:
            self._stopped = True
            self._ready.notify()
        self._thread.join(timeout=10)

    def _take_batch(self) -> list[Unit]:
        batch: list[Unit] = []
        in_batch: set[int] = set()
        touched: set[UUID] = set()
        deferred: list[Unit] = []
        while self._queue and len(batch) < self.max_batch:
            unit = self._queue.popleft()
            if unit.failed_dependency is not None:
                unit.finish(DependencyFailedError("built on changes that were not recorded"))
                continue
            pending = [d for d in unit.depends_on if not d.recorded]
            covered = {i for d in pending for i in d.originator_ids}
            if any(id(d) not in in_batch for d in pending) or (unit.originator_ids & touched) - covered:
                deferred.append(unit)
                continue
            touched |= unit.originator_ids
            in_batch.add(id(unit))
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
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[Unit]) -> None:
        observe_batch(len(batch))
        try:
            if len(batch) == 1:
                self._record(batch[0])
                return
            try:
                ids = record(self.recorder, [s for unit in batch for s in unit.stored])
            except IntegrityError:
                for unit in batch:
                    self._record(unit)
            else:
                offset = 0
                for unit in batch:
                    offset += len(unit.stored)
                    unit.position = ids[offset - 1]
        except BaseException as error:  # noqa: BLE001 - every waiter must learn the outcome
            for unit in batch:
                if unit.position is None and unit.error is None:
                    unit.error = error
        finally:
            for unit in batch:
                unit.finish()

    def _record(self, unit: Unit) -> None:
        if unit.failed_dependency is not None:
            unit.finish(DependencyFailedError("built on changes that were not recorded"))
            return
        try:
            unit.position = record(self.recorder, unit.stored)[-1]
        except IntegrityError as error:
            unit.error = error
        finally:
            unit.finish()


def record(recorder: ApplicationRecorder, stored: list[StoredEvent]) -> list[int]:
    """Inserts stored events atomically; answers their positions in the application log, in order."""
    return list(recorder.insert_events(stored) or [])


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
    staged_by: Unit | None = None

    @property
    def pending(self) -> bool:
        return self.staged_by is not None and not self.staged_by.done.is_set() and not self.staged_by.doomed


class AggregateCache:
    """Recently used aggregates of this process, as of their last verified or staged version.

    Writes stay safe whatever the cache says: a save from a stale copy fails its version check and the
    command reloads. Entries not verified for `fresh_seconds` are fast-forwarded from the store before
    use, which bounds how stale a read-only dependency (a doctor's availability) can be. An entry staged
    by a command whose events are still on their way to the store is handed out as it is, so commands on
    a busy stream follow each other without waiting for each commit.
    """

    def __init__(self, maxsize: int, fresh_seconds: float) -> None:
        self.maxsize = maxsize
        self.fresh_seconds = fresh_seconds
        self._entries: OrderedDict[UUID, _Cached] = OrderedDict()
        self.lock = threading.RLock()

    def get(self, aggregate_id: UUID) -> _Cached | None:
        with self.lock:
            entry = self._entries.get(aggregate_id)
            if entry is not None:
                self._entries.move_to_end(aggregate_id)
            return entry

    def put(self, aggregate_id: UUID, aggregate: Aggregate | None, staged_by: Unit | None = None) -> None:
        with self.lock:
            current = self._entries.get(aggregate_id)
            if aggregate is not None and current is not None and current.aggregate is not None:
                if current.aggregate.version > aggregate.version:
                    return
            self._entries[aggregate_id] = _Cached(aggregate, time.monotonic(), staged_by)
            self._entries.move_to_end(aggregate_id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def evict(self, aggregate_ids: Iterable[UUID]) -> None:
        with self.lock:
            for aggregate_id in aggregate_ids:
                self._entries.pop(aggregate_id, None)

    def evict_staged(self, unit: Unit) -> None:
        with self.lock:
            for aggregate_id in list(unit.originator_ids):
                entry = self._entries.get(aggregate_id)
                if entry is not None and entry.staged_by is unit:
                    del self._entries[aggregate_id]

    def is_usable(self, entry: _Cached) -> bool:
        if entry.staged_by is not None and entry.staged_by.doomed:
            return False
        if entry.pending:
            return True
        return time.monotonic() - entry.verified_at < self.fresh_seconds


class EventStore:
    """Loads aggregates and saves their new events; the only door to the clinic's history."""

    def __init__(
        self, app: Clinic, *, group_commit: bool = True, cache_size: int = 20_000, cache_fresh_seconds: float = 1.0
    ) -> None:
        self.app = app
        self._committer = GroupCommitter(app.recorder) if group_commit else None
        self._cache = AggregateCache(cache_size, cache_fresh_seconds) if cache_size > 0 else None
        self._origins: dict[int, Unit] = {}  # id(fork) -> the pending unit whose staged state it copies
        self._attempt = threading.local()  # the staged units this thread's current decision has read
        self.after_save: list[Callable[[], None]] = []

    def find(self, cls: type[A], aggregate_id: UUID | str, *, fresh: bool = False) -> A | None:
        """A private copy of the aggregate for one command, or None if it does not exist (as that type).

        fresh reads the store itself, for checks that must see other processes' changes at once.
        """
        try:
            uid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(str(aggregate_id))
        except ValueError:
            return None
        try:
            aggregate, origin = (self._read(uid), None) if fresh else self._load(uid)
        except PersistenceError as error:
            raise StoreUnavailableError(str(error)) from error
        if not isinstance(aggregate, cls):
            return None
        twin = fork(aggregate)
        if origin is not None:
            self._origins[id(twin)] = origin
            weakref.finalize(twin, self._origins.pop, id(twin), None)
            self._read_staged().append(origin)
        return twin

    def _read_staged(self) -> list[Unit]:
        if not hasattr(self._attempt, "units"):
            self._attempt.units = []
        return self._attempt.units

    def start_attempt(self) -> None:
        """Forgets which staged changes earlier decisions of this thread have read."""
        self._attempt.units = []

    def read_changes_that_failed(self) -> bool:
        """Waits for the staged changes this decision read; answers whether any of them failed to record.

        A decision that saves is chained to what it read and fails with it; one that saves nothing (a
        refusal, or "already done") calls this before its answer is given.
        """
        units, self._attempt.units = self._read_staged(), []
        for unit in units:
            unit.done.wait(30)
        return any(unit.error is not None or not unit.done.is_set() for unit in units)

    def _load(self, uid: UUID) -> tuple[Aggregate | None, Unit | None]:
        """The aggregate as this process knows it, and the unit that staged it if still on its way."""
        if self._cache is None:
            return self._read(uid), None
        entry = self._cache.get(uid)
        if entry is not None and self._cache.is_usable(entry):
            return entry.aggregate, entry.staged_by if entry.pending else None
        if entry is not None and entry.aggregate is not None and (entry.staged_by is None or entry.staged_by.recorded):
            newer = self.app.events.get(originator_id=uid, gt=entry.aggregate.version)
            aggregate = project_aggregate(fork(entry.aggregate), newer)
        else:
            aggregate = self._read(uid)
        self._cache.put(uid, aggregate)
        return aggregate, None

    def _read(self, uid: UUID) -> Aggregate | None:
        try:
            return self.app.repository.get(uid)
        except AggregateNotFoundError:
            return None

    def save(self, *aggregates: Aggregate | None) -> int | None:
        """Saves atomically; answers the position of the last event in the application log."""
        saved, events = [], []
        for aggregate in aggregates:
            new = aggregate.collect_events() if aggregate is not None else []
            if new:
                saved.append(aggregate)
                events += new
        if not events:
            return None
        unit: Unit | None = None
        try:
            stored = [self.app.mapper.to_stored_event(e) for e in events]
            if self._committer is None:
                position = record(self.app.recorder, stored)[-1]
                self._remember(saved)
            else:
                unit = Unit({s.originator_id for s in stored}, stored)
                self._stage(unit, saved)
                unit.done.wait()
                if unit.error is not None:
                    raise unit.error
                position = unit.position
        except IntegrityError:
            self._forget(saved, unit)
            raise
        except PersistenceError as error:
            self._forget(saved, unit)
            raise StoreUnavailableError(str(error)) from error
        self._attempt.units = []
        for callback in self.after_save:
            callback()
        return position

    def _stage(self, unit: Unit, saved: list[Aggregate]) -> None:
        """Queues the unit, building on any staged state it was derived from, and stages its own result."""
        assert self._committer is not None
        if self._cache is None:
            self._committer.submit(unit)
            return
        with self._cache.lock:
            for aggregate in saved:
                origin = self._origins.pop(id(aggregate), None)
                if origin is not None and origin.doomed:
                    raise DependencyFailedError(f"{aggregate.id} was decided on changes that were not recorded")
                if origin is not None and not origin.done.is_set():
                    unit.depends_on.append(origin)
                entry = self._cache.get(aggregate.id)
                if entry is not None and entry.pending and entry.staged_by is not origin:
                    # A pending entry is only ever replaced by a unit built on it: this one is stale.
                    raise StagedChangesAheadError(f"{aggregate.id} has newer changes on their way to the store")
            for aggregate in saved:
                self._cache.put(aggregate.id, fork(aggregate), staged_by=unit)
            self._committer.submit(unit)

    def _remember(self, saved: list[Aggregate]) -> None:
        if self._cache is not None:
            for aggregate in saved:
                self._cache.put(aggregate.id, fork(aggregate))

    def _forget(self, saved: list[Aggregate], unit: Unit | None) -> None:
        if self._cache is None:
            return
        if unit is None:
            self._cache.evict(a.id for a in saved)
        else:
            self._cache.evict_staged(unit)

    def max_position(self) -> int:
        try:
            return self.app.recorder.max_notification_id() or 0
        except PersistenceError as error:
            raise StoreUnavailableError(str(error)) from error

    def close(self) -> None:
        if self._committer is not None:
            self._committer.stop()
        self.app.close()

