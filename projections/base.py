"""A projector applies events to its tables and moves its position in the same transaction: exactly once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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

    def drop(self, engine: Engine) -> None:
        with engine.begin() as conn:
            metadata.drop_all(conn, tables=list(self.tables))
            conn.execute(positions.delete().where(positions.c.name == self.name))

    def position(self, engine: Engine) -> int:
        with engine.connect() as conn:
            return conn.execute(select(positions.c.position).where(positions.c.name == self.name)).scalar_one()

    def catch_up(self, engine: Engine, read_log: ReadLog, decode: Decode, frontier: int, batch: int = 200) -> int:
        """Applies the next batch of this projector's events up to frontier; answers how many notifications it covered."""
        with engine.begin() as conn:
            start = conn.execute(
                select(positions.c.position).where(positions.c.name == self.name).with_for_update()
            ).scalar_one()
            if start >= frontier:
                return 0
            notifications = read_log(start, batch, frontier, tuple(self.handlers))
            reached = notifications[-1].id if len(notifications) == batch else frontier
            for notification in notifications:
                self.handlers[notification.topic](conn, decode(notification))
            moved = conn.execute(
                update(positions)
                .where(positions.c.name == self.name, positions.c.position == start)
                .values(position=reached)
            )
            if moved.rowcount != 1:
                raise PositionMovedError(self.name)
        return reached - start
