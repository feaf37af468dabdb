"""The clinic's event store: one eventsourcing application, loads aggregates, saves them in group commits."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
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


class EventStore:
    """Loads aggregates and saves their new events; the only door to the clinic's history."""

    def __init__(self, app: Clinic, *, group_commit: bool = True) -> None:
        self.app = app
        self._committer = GroupCommitter(app) if group_commit else None
        self.after_save: list[Callable[[], None]] = []

    def find(self, cls: type[A], aggregate_id: UUID | str) -> A | None:
        try:
            uid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(str(aggregate_id))
        except ValueError:
            return None
        try:
            aggregate = self.app.repository.get(uid)
        except AggregateNotFoundError:
            return None
        except PersistenceError as error:
            raise StoreUnavailableError(str(error)) from error
        return aggregate if isinstance(aggregate, cls) else None

    def save(self, *aggregates: Aggregate | None) -> int | None:
        """Saves atomically; answers the position of the last event in the application log."""
        events = [e for a in aggregates if a is not None for e in a.collect_events()]
        if not events:
            return None
        try:
            if self._committer is not None:
                position = self._committer.save(events)
            else:
                position = max(r.notification.id for r in self.app.save(*events))
        except IntegrityError:
            raise
        except PersistenceError as error:
            raise StoreUnavailableError(str(error)) from error
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

