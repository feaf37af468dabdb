"""How far the read models have applied the event log, for requests that wait on it without holding a thread."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import anyio.to_thread
from sqlalchemy import Engine, select

from domain.shared import InvalidInputError
from projections.tables import positions

log = logging.getLogger("medledger.progress")

FIRST_POLL_SECONDS = 0.002


class PositionNotInLogError(InvalidInputError):
    """Raised when a query asks to wait for a position the event log does not hold yet."""

    code = "position_not_in_log"


@dataclass(eq=False)
class _Waiter:
    names: frozenset[str]
    position: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None] = field(repr=False)


class ReadModelProgress:
    """Requests waiting for read models to reach a position are asyncio futures, not threads.

    One thread per process reads the projectors' positions while anyone waits (soon after a new waiter or a
    projector's step, then backing off to `poll_seconds`), and wakes every request whose read models have
    reached its position. A position the log does not hold is refused at once: nothing would ever reach it.
    """

    def __init__(self, engine: Engine, log_end: Callable[[], int], poll_seconds: float) -> None:
        self.engine = engine
        self.log_end = log_end
        self.poll_seconds = max(poll_seconds, FIRST_POLL_SECONDS)
        self._waiters: list[_Waiter] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiters)

    async def wait(self, names: Collection[str], position: int, timeout: float) -> bool:
        """True once every named read model has applied the log up to position; False after timeout seconds."""
        wanted = frozenset(names)
        reached, end = await anyio.to_thread.run_sync(self._where, wanted, position)
        if reached >= position:
            return True
        if position > end:
            raise PositionNotInLogError(
                f"The event log ends at position {end}; position {position} does not exist yet.", field="query.after", current=end
            )
        loop = asyncio.get_running_loop()
        waiter = _Waiter(wanted, position, loop, loop.create_future())
        with self._lock:
            self._waiters.append(waiter)
            self._start()
        self.wake()
        try:
            await asyncio.wait_for(waiter.future, timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return True

    def wake(self) -> None:
        """Look again now (a projector has moved, or someone new waits)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _where(self, names: frozenset[str], position: int) -> tuple[int, int]:
        reached = _slowest(self._positions(), names)
        return reached, (position if reached >= position else self.log_end())

    def _positions(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {name: position for name, position in conn.execute(select(positions.c.name, positions.c.position))}

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="read-model-progress", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        delay = FIRST_POLL_SECONDS
        while not self._stopped:
            with self._lock:
                waiters = list(self._waiters)
            if not waiters:
                self._wake.wait()
                self._wake.clear()
                delay = FIRST_POLL_SECONDS
                continue
            released = self._release(waiters)
            delay = FIRST_POLL_SECONDS if released else min(delay * 2, self.poll_seconds)
            if self._wake.wait(delay):
                delay = FIRST_POLL_SECONDS
            self._wake.clear()

    def _release(self, waiters: list[_Waiter]) -> int:
        try:
            reached = self._positions()
        except Exception as error:  # noqa: BLE001 - storage is away: the waiters time out by themselves
            log.warning("cannot read the projectors' positions: %s", error)
            return 0
        released = 0
        for waiter in waiters:
            if not waiter.future.done() and _slowest(reached, waiter.names) >= waiter.position:
                released += 1
                try:
                    waiter.loop.call_soon_threadsafe(_settle, waiter.future)
                except RuntimeError:
                    pass  # its event loop has closed
        return released


def _slowest(reached: dict[str, int], names: frozenset[str]) -> int:
    return min((reached.get(name, 0) for name in names), default=0)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
