"""Runs the projectors: in a thread of the API process, or as its own process; and rebuilds read models."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from eventsourcing.persistence import PersistenceError
from infrastructure.encryption import sealed_by
from infrastructure.eventstore import Clinic, StoreUnavailableError
from infrastructure.database import LockHeldError
from projections.base import PositionMovedError, Projector, advance_together, create_read_models
from projections.shadow import ShadowBuild, SwapBlockedError

log = logging.getLogger("medledger.projector")

RebuildProgress = Callable[[str, int, int], None]
"""Told (read model, position reached, end of the log) as a rebuild advances."""

LIVE_BATCH = 500
REBUILD_BATCH = 1000
SWAP_LOCK_WAIT_MS = 200
SWAP_ATTEMPTS = 100


class ProjectionWorker:
    def __init__(
        self,
        app: Clinic,
        engine: Engine,
        projectors: Sequence[Projector],
        poll_seconds: float,
        rebuild_lock: Callable[..., AbstractContextManager[None]],
    ) -> None:
        self.app = app
        self.rebuild_lock = rebuild_lock
        self.engine = engine
        self.projectors = list(projectors)
        for projector in self.projectors:
            projector.attach(lambda originator_id, version: app.repository.get(originator_id, version=version))
            projector.attach_subjects(lambda notification: sealed_by(notification.state))
        self.poll_seconds = poll_seconds
        self.after_progress: list[Callable[[], None]] = []
        self.followers: list[Callable[[], int]] = []
        """Other followers of the log (the transparency log) run after the projectors each round; each answers
        how many events it took in."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def create_tables(self) -> None:
        create_read_models(self.engine, self.projectors)

    def _read_log(self, start: int, limit: int, stop: int, topics: Sequence[str]) -> Sequence[Any]:
        return self.app.recorder.select_notifications(
            start=start, limit=limit, stop=stop, topics=topics, inclusive_of_start=False
        )

    def run_once(self) -> int:
        """Brings every projector up to the log's current end; answers how many notifications were covered.

        All projectors advance together, in one transaction per batch. If that fails for a reason other than
        storage, each projector then goes on its own: one that fails stays where it is (it never skips an
        event) and is retried next round; the others carry on.
        """
        frontier = self._frontier()
        covered = 0
        decode = self.app.mapper.decode_unless_erased
        try:
            while step := advance_together(self.engine, self.projectors, self._read_log, decode, frontier, LIVE_BATCH):
                covered += step
            return covered
        except PositionMovedError:
            log.info("projectors: another worker moved first; catching up from its positions")
            return covered + 1
        except (DBAPIError, PersistenceError) as error:
            log.warning("projection paused: %s", error)
            return covered
        except Exception:
            log.warning("projectors could not advance together; each goes on its own", exc_info=True)
        for projector in self.projectors:
            try:
                while step := projector.catch_up(self.engine, self._read_log, self.app.mapper.decode_unless_erased, frontier):
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
            for follower in self.followers:
                try:
                    covered += follower()
                except (DBAPIError, PersistenceError, StoreUnavailableError) as error:
                    log.warning("%s paused: %s", getattr(follower, "__qualname__", "follower"), error)
                except Exception:
                    log.exception("%s failed; it will retry", getattr(follower, "__qualname__", "follower"))
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

    def rebuild(self, names: Sequence[str] = (), progress: RebuildProgress | None = None) -> list[str]:
        """Rebuilds the named read models (all when none is named) from the log, one after the other, while the
        service runs; answers their names.

        Each is built in tables of its own beside the live ones, which keep serving queries and following the
        log, and put in their place in one short transaction once it has caught up.
        """
        known = [projector.name for projector in self.projectors]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UnknownReadModelError(unknown, known)
        chosen = [p for p in self.projectors if not names or p.name in names]
        try:
            with self.rebuild_lock(*(f"rebuild-{p.name}" for p in chosen)):
                for projector in chosen:
                    self._rebuild(ShadowBuild(projector), progress or (lambda name, position, frontier: None))
        except LockHeldError as held:
            raise RebuildRunningError(str(held).removeprefix("rebuild-")) from None
        return [p.name for p in chosen]

    def _rebuild(self, shadow: ShadowBuild, progress: RebuildProgress) -> None:
        name, decode = shadow.projector.name, self.app.mapper.decode_unless_erased
        shadow.create(self.engine)
        try:
            self._catch_up_shadow(shadow, progress)
            shadow.index(self.engine)
            for attempt in itertools.count(1):
                self._catch_up_shadow(shadow, progress)
                try:
                    reached = shadow.swap(self.engine, self._read_log, decode, self._frontier, SWAP_LOCK_WAIT_MS)
                except SwapBlockedError:
                    if attempt == SWAP_ATTEMPTS:
                        raise
                    log.info("rebuild of %s: queries held its tables; swapping again", name)
                    time.sleep(min(0.05 * attempt, 1.0))
                    continue
                progress(name, reached, reached)
                log.info("rebuilt %s up to position %d and put it in place", name, reached)
                return
        except BaseException:
            try:
                shadow.discard(self.engine)
            except Exception as error:  # noqa: BLE001 - the next rebuild drops what is left; the first error matters
                log.warning("rebuild of %s: could not drop its unfinished tables: %s", name, error)
            raise

    def _catch_up_shadow(self, shadow: ShadowBuild, progress: RebuildProgress) -> None:
        """Follows the log until what is left for the swap to apply is less than one batch."""
        decode = self.app.mapper.decode_unless_erased
        while True:
            frontier = self._frontier()
            position = shadow.position(self.engine)
            progress(shadow.projector.name, position, frontier)
            if frontier - position < REBUILD_BATCH:
                return
            while step := shadow.catch_up(self.engine, self._read_log, decode, frontier, REBUILD_BATCH):
                position += step
                progress(shadow.projector.name, position, frontier)

    def _frontier(self) -> int:
        return self.app.recorder.max_notification_id() or 0


class UnknownReadModelError(ValueError):
    """Raised when a rebuild names a read model that does not exist."""

    def __init__(self, unknown: Sequence[str], known: Sequence[str]) -> None:
        super().__init__(f"unknown read model {', '.join(unknown)}; the read models are {', '.join(known)}")
        self.unknown = list(unknown)
        self.known = list(known)


class RebuildRunningError(RuntimeError):
    """Raised when a read model asked for is being rebuilt by another process or thread already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is being rebuilt by another process already; nothing was rebuilt")
        self.name = name
