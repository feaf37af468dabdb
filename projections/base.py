"""A projector applies events to its tables and moves its position in the same transaction: exactly once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select, update

from projections.tables import metadata, positions

Handler = Callable[[Connection, Any], None]
LoadVersion = Callable[[Any, int], Any]
ReadLog = Callable[[int, int, int, Sequence[str]], Sequence[Any]]
Decode = Callable[[Any], Any]


class PositionMovedError(Exception):
    """Raised when another worker advanced this projector first; the batch is rolled back, not applied twice."""


class Projector:
    """Subclasses name their tables and map event topics to handlers."""

    name: str
    tables: tuple[Table, ...]
    handlers: dict[str, Handler]

    def attach(self, load: LoadVersion) -> None:
        """Gives the projector the aggregate as of an event's version: load(originator_id, version).

        Projectors of rich records (a consultation, a prescription) write the aggregate's own view of
        itself at each event, rather than repeating the aggregate's rules on rows.
        """
        self.load = load

    def create(self, engine: Engine) -> None:
        with engine.begin() as conn:
            metadata.create_all(conn, tables=[positions, *self.tables])
            if conn.execute(select(positions.c.position).where(positions.c.name == self.name)).first() is None:
                conn.execute(insert(positions).values(name=self.name, position=0))

    def position(self, engine: Engine) -> int:
        with engine.connect() as conn:
            return conn.execute(select(positions.c.position).where(positions.c.name == self.name)).scalar_one()

    def catch_up(self, engine: Engine, read_log: ReadLog, decode: Decode, frontier: int, batch: int = 200) -> int:
        """Applies the next batch of this projector's events up to frontier; answers how many notifications it covered."""
        return advance(engine, self.name, self.handlers, read_log, decode, frontier, batch)


def advance(
    engine: Engine,
    position_name: str,
    handlers: Mapping[str, Handler],
    read_log: ReadLog,
    decode: Decode,
    frontier: int,
    batch: int,
    on: Callable[[Connection], Connection] = lambda conn: conn,
) -> int:
    """One transaction: applies the next batch after the named position (handlers write on `on(conn)`) and moves it."""
    with engine.begin() as conn:
        if read_position(conn, position_name) >= frontier:
            return 0
        start = lock_position(conn, position_name)
        if start >= frontier:
            return 0
        reached = apply_events(on(conn), handlers, read_log, decode, start, frontier, batch)
        moved = conn.execute(
            update(positions)
            .where(positions.c.name == position_name, positions.c.position == start)
            .values(position=reached)
        )
        if moved.rowcount != 1:
            raise PositionMovedError(position_name)
    return reached - start


def read_position(conn: Connection, name: str) -> int:
    return conn.execute(select(positions.c.position).where(positions.c.name == name)).scalar_one()


def lock_position(conn: Connection, name: str) -> int:
    """Reads a position and holds it until the transaction ends, so that no other worker applies events meanwhile.

    SQLite ignores FOR UPDATE: there a write to the row takes the database's write lock before the read.
    """
    if conn.dialect.name == "sqlite":
        conn.execute(update(positions).where(positions.c.name == name).values(position=positions.c.position))
    return conn.execute(select(positions.c.position).where(positions.c.name == name).with_for_update()).scalar_one()


def apply_events(
    conn: Connection, handlers: Mapping[str, Handler], read_log: ReadLog, decode: Decode, start: int, frontier: int, batch: int
) -> int:
    """Applies up to `batch` notifications after start (to frontier at most) on conn; answers the position reached."""
    notifications = read_log(start, batch, frontier, tuple(handlers))
    reached = notifications[-1].id if len(notifications) == batch else frontier
    for notification in notifications:
        handlers[notification.topic](conn, decode(notification))
    return reached
