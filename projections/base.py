"""A projector applies events to its tables and moves its position in the same transaction: exactly once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby
from operator import attrgetter
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, select, update

from projections.tables import metadata, positions

Handler = Callable[[Connection, Any], None]
BulkHandler = Callable[[Connection, list[Any]], None]
LoadVersion = Callable[[Any, int], Any]
ReadLog = Callable[[int, int, int, Sequence[str]], Sequence[Any]]
Decode = Callable[[Any], Any]
"""A notification's domain event, or None if its patient's data was erased."""


class PositionMovedError(Exception):
    """Raised when another worker advanced this projector first; the batch is rolled back, not applied twice."""


ERASURE_APPROVED = "medledger:PatientErasure.Approved.v1"


class Projector:
    """Subclasses name their tables and map event topics to handlers."""

    name: str
    tables: tuple[Table, ...]
    handlers: dict[str, Handler]
    bulk: ClassVar[dict[str, str]] = {}
    """Topics whose consecutive events one method writes in one statement: topic -> method name (events list)."""
    erased_by: ClassVar[dict[str, str]] = {}
    """Table -> the column naming the patient whose rows an approved erasure deletes, where it is not `patient_id`."""
    kept_after_erasure: ClassVar[bool] = False
    """True for read models that must outlive a patient's erasure (the read log: who opened the record, no content)."""

    def erases_patients(self) -> Projector:
        """Adds the rule every read model of personal data follows: an approved erasure deletes the patient's rows
        (the events it had projected from can no longer be opened, so a rebuild projects nothing of them either)."""
        if not self.kept_after_erasure:
            self.handlers[ERASURE_APPROVED] = self.erase_patient
        return self

    def erase_patient(self, conn: Connection, event: Any) -> None:
        for table in self.tables:
            column = self.erased_by.get(table.name, "patient_id")
            if column in table.c:
                conn.execute(delete(table).where(table.c[column] == event.patient_id))

    def attach(self, load: LoadVersion) -> None:
        """Gives the projector the aggregate as of an event's version: load(originator_id, version).

        Projectors of rich records (a consultation, a prescription) write the aggregate's own view of
        itself at each event, rather than repeating the aggregate's rules on rows.
        """
        self.load = load

    def subject_of(self, notification: Any) -> str | None:
        """The patient whose key sealed the stored event, if any (told by the store: see attach_subjects)."""
        return None

    def attach_subjects(self, subject_of: Callable[[Any], str | None]) -> None:
        self.subject_of = subject_of  # type: ignore[method-assign]

    def create(self, engine: Engine) -> None:
        create_read_models(engine, [self])

    def position(self, engine: Engine) -> int:
        with engine.connect() as conn:
            return conn.execute(select(positions.c.position).where(positions.c.name == self.name)).scalar_one()

    def catch_up(self, engine: Engine, read_log: ReadLog, decode: Decode, frontier: int, batch: int = 200) -> int:
        """Applies the next batch of this projector's events up to frontier; answers how many notifications it covered."""
        return advance(engine, self.name, self, read_log, decode, frontier, batch)

    def apply(self, conn: Connection, notifications: Sequence[Any], decode: Decode) -> None:
        """Applies the notifications in order; a run of one topic that has a bulk method goes in one call."""
        for topic, run in groupby(notifications, key=attrgetter("topic")):
            events = [event for event in map(decode, run) if event is not None]  # None: erased, projects to nothing
            if not events:
                continue
            if topic in self.bulk:
                getattr(self, self.bulk[topic])(conn, events)
                continue
            handler = self.handlers[topic]
            for event in events:
                handler(conn, event)


def create_read_models(engine: Engine, projectors: Sequence[Projector]) -> None:
    """Creates the projectors' tables that do not exist yet and their positions at 0, in one transaction."""
    with engine.begin() as conn:
        metadata.create_all(conn, tables=[positions, *(table for projector in projectors for table in projector.tables)])
        known = set(read_positions(conn, [projector.name for projector in projectors]))
        missing = [{"name": projector.name, "position": 0} for projector in projectors if projector.name not in known]
        if missing:
            conn.execute(insert(positions), missing)


def advance(
    engine: Engine,
    position_name: str,
    projector: Projector,
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
        reached = apply_events(on(conn), projector, read_log, decode, start, frontier, batch)
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
    conn: Connection, projector: Projector, read_log: ReadLog, decode: Decode, start: int, frontier: int, batch: int
) -> int:
    """Applies up to `batch` notifications after start (to frontier at most) on conn; answers the position reached."""
    notifications = read_log(start, batch, frontier, tuple(projector.handlers))
    reached = notifications[-1].id if len(notifications) == batch else frontier
    projector.apply(conn, notifications, decode)
    return reached


def advance_together(
    engine: Engine, projectors: Sequence[Projector], read_log: ReadLog, decode: Decode, frontier: int, batch: int
) -> int:
    """One transaction for every projector behind the frontier: the log is read and decoded once, each projector
    applies its share, and every position moves; answers how many notifications were covered.

    Exactly once as for one projector: the positions are locked, and rows and positions commit together.
    """
    names = [projector.name for projector in projectors]
    with engine.begin() as conn:
        if min(read_positions(conn, names).values(), default=frontier) >= frontier:
            return 0
        held = lock_positions(conn, names)
        behind = [projector for projector in projectors if held[projector.name] < frontier]
        if not behind:
            return 0
        start = min(held[projector.name] for projector in behind)
        topics = sorted({topic for projector in behind for topic in projector.handlers})
        notifications = read_log(start, batch, frontier, topics)
        reached = notifications[-1].id if len(notifications) == batch else frontier
        decoded: dict[int, Any] = {}

        def decode_once(notification: Any) -> Any:
            if notification.id not in decoded:
                decoded[notification.id] = decode(notification)
            return decoded[notification.id]

        moving = [projector for projector in behind if held[projector.name] < reached]
        for projector in moving:
            after = held[projector.name]
            projector.apply(conn, [n for n in notifications if n.id > after and n.topic in projector.handlers], decode_once)
        moved = conn.execute(
            update(positions)
            .where(positions.c.name == bindparam("moving"), positions.c.position == bindparam("held"))
            .values(position=reached),
            [{"moving": projector.name, "held": held[projector.name]} for projector in moving],
        )
        if moved.rowcount != len(moving):
            raise PositionMovedError(", ".join(projector.name for projector in moving))
    return reached - start


def read_positions(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    return dict(conn.execute(select(positions.c.name, positions.c.position).where(positions.c.name.in_(names))).all())


def lock_positions(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    """lock_position for several projectors at once (in name order, so two workers never wait on each other in a ring)."""
    if conn.dialect.name == "sqlite":
        conn.execute(update(positions).where(positions.c.name.in_(names)).values(position=positions.c.position))
    query = select(positions.c.name, positions.c.position).where(positions.c.name.in_(names)).order_by(positions.c.name)
    return dict(conn.execute(query.with_for_update()).all())
