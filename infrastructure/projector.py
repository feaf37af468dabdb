"""Runs the projectors: in a thread of the API process, or as its own process; and rebuilds read models."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from eventsourcing.persistence import PersistenceError
from infrastructure.eventstore import Clinic
from projections.base import PositionMovedError, Projector

log = logging.getLogger("medledger.projector")


class ProjectionWorker:
    def __init__(self, app: Clinic, engine: Engine, projectors: Sequence[Projector], poll_seconds: float) -> None:
        self.app = app
        self.engine = engine
        self.projectors = list(projectors)
        for projector in self.projectors:
            projector.attach(lambda originator_id, version: app.repository.get(originator_id, version=version))
        self.poll_seconds = poll_seconds
        self.after_progress: list[Callable[[], None]] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def create_tables(self) -> None:
        for projector in self.projectors:
            projector.create(self.engine)

    def _read_log(self, start: int, limit: int, stop: int, topics: Sequence[str]) -> Sequence[Any]:
        return self.app.recorder.select_notifications(
            start=start, limit=limit, stop=stop, topics=topics, inclusive_of_start=False
        )

    def run_once(self) -> int:
        """Brings every projector up to the log's current end; answers how many notifications were covered.

        A projector that fails stays where it is (it never skips an event) and is retried next round;
        the others carry on.
        """
        frontier = self.app.recorder.max_notification_id() or 0
        covered = 0
        for projector in self.projectors:
            try:
                while step := projector.catch_up(self.engine, self._read_log, self.app.mapper.to_domain_event, frontier):
                    covered += step
            except PositionMovedError:
                log.info("projector %s: another worker moved first; catching up from its position", projector.name)
                covered += 1
            except (DBAPIError, PersistenceError) as error:
                log.warning("projector %s paused: %s", projector.name, error)
            except Exception:
                log.exception("projector %s failed; it will retry the same batch", projector.name)
        return covered

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                covered = self.run_once()
            except (DBAPIError, PersistenceError) as error:
                log.warning("projection paused: %s", error)
                covered = 0
            if covered:
                for callback in self.after_progress:
                    callback()
            else:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="projector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def rebuild(self, names: Sequence[str] = ()) -> list[str]:
        chosen = [p for p in self.projectors if not names or p.name in names]
        for projector in chosen:
            projector.drop(self.engine)
            projector.create(self.engine)
        frontier = self.app.recorder.max_notification_id() or 0
        for projector in chosen:
            while projector.catch_up(self.engine, self._read_log, self.app.mapper.to_domain_event, frontier, batch=1000):
                pass
        return [p.name for p in chosen]
