"""The event store's own SQL on PostgreSQL and SQLite: a binary batch insert, the events after known versions of
several streams in one round trip, the current version of streams, the first events that mention a text, and
the raw log read in large pages."""

from __future__ import annotations

import select
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
from eventsourcing.persistence import OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg.rows import args_row, tuple_row
from psycopg.sql import SQL, Identifier


class StoredRow(NamedTuple):
    """A stored event as the log holds it, undecoded."""

    id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


class ClinicPostgresRecorder(PostgresApplicationRecorder):
    """Inserts with one binary statement (no composite-type text dumping), in one pipelined round trip that
    takes the table lock, inserts, notifies and commits; the library's recorder sends more and slower."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        bound_to_connections(datastore)
        super().__init__(datastore, events_table_name=events_table_name)
        table = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(events_table_name))
        self._insert_columns = SQL(
            "INSERT INTO {0} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::int8[], %b::text[], %b::bytea[]) RETURNING notification_id"
        ).format(table)
        self._newer_of_one = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {0} "
            "WHERE originator_id = %b AND originator_version > %b ORDER BY originator_version"
        ).format(table)
        self._newer_of_many = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%b::uuid[], %b::int8[]) AS known(id, version) "
            "JOIN {0} AS e ON e.originator_id = known.id AND e.originator_version > known.version "
            "ORDER BY e.originator_id, e.originator_version"
        ).format(table)
        self._versions = SQL(
            "SELECT originator_id, max(originator_version) FROM {0} WHERE originator_id = ANY(%b::uuid[]) GROUP BY originator_id"
        ).format(table)
        self._openings = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {0} "
            "WHERE originator_version = 1 AND (position(%b::bytea in state) > 0 OR position(%b::bytea in state) > 0 "
            "OR position(%b::bytea in state) > 0) "
            "ORDER BY notification_id"
        ).format(table)
        rows = "SELECT notification_id, originator_id, originator_version, topic, state FROM {0} WHERE notification_id > %b "
        # Without a stop, no upper bound at all: with one far beyond the end, PostgreSQL estimates the whole table
        # and reads it all with a bitmap scan and a sort, for every page (50 times slower at 1,000,000 events).
        self._rows_after = SQL(rows + "ORDER BY notification_id LIMIT %b").format(table)
        self._rows_between = SQL(rows + "AND notification_id <= %b ORDER BY notification_id LIMIT %b").format(table)
        self._notify = SQL("NOTIFY {0}").format(Identifier(self.channel_name))
        # Rendered once: composing a statement's identifiers on every execution costs more than its round trip.
        self._lock_table = [statement.as_bytes(None) for statement in self.lock_table_statements]
        for name in ("_insert_columns", "_newer_of_one", "_newer_of_many", "_versions", "_openings", "_rows_after", "_rows_between", "_notify"):
            setattr(self, name, getattr(self, name).as_bytes(None))
        self.max_notification_id_statement = self.max_notification_id_statement.as_bytes(None)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection the server has not ended: ended ones are closed (the pool replaces them) and passed
        over, so the first requests after a restart fail on none of them."""
        for _ in range(self.datastore.pool.max_size + 1):
            with self.datastore.get_connection() as conn:
                if ended(conn):
                    conn.close()
                    continue
                yield conn
                return
        raise OperationalError("every pooled connection had been ended by the server")

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Records the events atomically; answers their positions in the log, in order."""
        if not stored_events:
            return []
        columns = (
            [s.originator_id for s in stored_events],
            [s.originator_version for s in stored_events],
            [s.topic for s in stored_events],
            [s.state for s in stored_events],
        )
        with self._connection() as conn, conn.pipeline() as pipeline:
            with conn.transaction():
                for statement in self._lock_table:
                    conn.execute(statement, prepare=True)
                cursor = conn.cursor(row_factory=tuple_row)
                cursor.execute(self._insert_columns, columns, prepare=True)
                conn.execute(self._notify, prepare=True)
                pipeline.sync()
                positions = [row[0] for row in cursor.fetchall()]
        return positions

    def max_notification_id(self) -> int | None:
        """The log's end, once: no retries, so a request never waits longer than the connection bounds."""
        with self._connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            cursor.execute(self.max_notification_id_statement, prepare=True)
            row = cursor.fetchone()
            return row[0] if row else None

    def newer_events(self, known: Mapping[UUID, int]) -> list[StoredEvent]:
        """The events of each stream after the version known of it (0: all), in one round trip."""
        if not known:
            return []
        with self._connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            if len(known) == 1:
                ((originator_id, version),) = known.items()
                cursor.execute(self._newer_of_one, (originator_id, version), prepare=True)
            else:
                cursor.execute(self._newer_of_many, (list(known), list(known.values())), prepare=True)
            return [StoredEvent(row[0], row[1], row[2], bytes(row[3])) for row in cursor.fetchall()]

    def stored_rows(self, after: int | None, limit: int, stop: int | None = None) -> list[StoredRow]:
        """The stored events after a position (None: from the first), up to stop, in log order, read raw (binary)."""
        with self._connection() as conn:
            cursor = conn.cursor(row_factory=args_row(StoredRow), binary=True)
            start = -(2**63) if after is None else after
            if stop is None:
                cursor.execute(self._rows_after, (start, limit), prepare=True)
            else:
                cursor.execute(self._rows_between, (start, stop, limit), prepare=True)
            return cursor.fetchall()

    def current_versions(self, originator_ids: Iterable[UUID]) -> dict[UUID, int]:
        with self._connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            cursor.execute(self._versions, (list(originator_ids),), prepare=True)
            return {row[0]: row[1] for row in cursor.fetchall()}

    def openings_containing(self, *texts: bytes) -> list[StoredEvent]:
        """The first event of each stream whose stored state contains one of the (one to three) byte strings, in log order."""
        with self._connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            cursor.execute(self._openings, _three(texts))
            return [StoredEvent(row[0], row[1], row[2], bytes(row[3])) for row in cursor.fetchall()]


RECONNECT_GIVE_UP_SECONDS = 1.0


def _three(texts: Sequence[bytes]) -> tuple[bytes, bytes, bytes]:
    """One to three needles as exactly three (the first repeated), for the openings query's parameters."""
    if not 1 <= len(texts) <= 3:
        raise ValueError("openings_containing takes one to three byte strings")
    first, second, third = (*texts, texts[0], texts[0])[:3]
    return first, second, third


def bound_to_connections(datastore: PostgresDatastore) -> None:
    """Bounds every wait of the store's connections by the pool's own wait (POSTGRES_CONNECT_TIMEOUT): connecting,
    and a server gone silent (TCP user timeout, keepalives). The library passes no connect timeout, so libpq would
    wait minutes for a silent host."""
    bound = max(2, round(datastore.pool.timeout))
    datastore.pool.kwargs.update(
        connect_timeout=bound,
        tcp_user_timeout=bound * 1000,
        keepalives=1,
        keepalives_idle=bound,
        keepalives_interval=1,
        keepalives_count=3,
        application_name="medledger events",
    )
    # After an outage the pool's reconnection attempts back off exponentially (1, 2, 4, 8 s...): give them up
    # within a second, so a request once the server is back makes a new connection at once.
    datastore.pool.reconnect_timeout = RECONNECT_GIVE_UP_SECONDS


def ended(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server ended this idle pooled connection (a restart, an administrator's terminate), told without
    a round trip: a healthy idle connection has nothing to read, an ended one its farewell or end-of-file."""
    return conn.closed or bool(select.select([conn.fileno()], [], [], 0)[0])


class ClinicSQLiteRecorder(SQLiteApplicationRecorder):
    """The same reads on the embedded store, where a round trip costs nothing and one query per stream is plain."""

    datastore: SQLiteDatastore

    def newer_events(self, known: Mapping[UUID, int]) -> list[StoredEvent]:
        return [event for originator_id, version in known.items() for event in self.select_events(originator_id, gt=version)]

    def stored_rows(self, after: int | None, limit: int, stop: int | None = None) -> list[StoredRow]:
        statement = (
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "
            "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (-(2**63) if after is None else after, 2**63 - 1 if stop is None else stop, limit))
            return [StoredRow(row[0], UUID(row[1]), row[2], row[3], bytes(row[4])) for row in cursor.fetchall()]

    def current_versions(self, originator_ids: Iterable[UUID]) -> dict[UUID, int]:
        ids = [originator_id.hex for originator_id in originator_ids]
        if not ids:
            return {}
        statement = (
            f"SELECT originator_id, max(originator_version) FROM {self.events_table_name} "
            f"WHERE originator_id IN ({','.join('?' * len(ids))}) GROUP BY originator_id"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, ids)
            return {UUID(row[0]): row[1] for row in cursor.fetchall()}

    def openings_containing(self, *texts: bytes) -> list[StoredEvent]:
        statement = (
            f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} "
            "WHERE originator_version = 1 AND (instr(state, ?) > 0 OR instr(state, ?) > 0 OR instr(state, ?) > 0) ORDER BY rowid"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, _three(texts))
            return [StoredEvent(UUID(row[0]), row[1], row[2], row[3]) for row in cursor.fetchall()]
