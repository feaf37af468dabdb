"""The event store's own SQL on PostgreSQL and SQLite: a binary batch insert, the events after known versions of
several streams in one round trip, and the current version of streams."""

from __future__ import annotations

import select
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier


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
        self._notify = SQL("NOTIFY {0}").format(Identifier(self.channel_name))

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
        with self.datastore.get_connection() as conn, conn.pipeline() as pipeline:
            with conn.transaction():
                for statement in self.lock_table_statements:
                    conn.execute(statement, prepare=True)
                cursor = conn.cursor(row_factory=tuple_row)
                cursor.execute(self._insert_columns, columns, prepare=True)
                conn.execute(self._notify, prepare=True)
                pipeline.sync()
                positions = [row[0] for row in cursor.fetchall()]
        return positions

    def max_notification_id(self) -> int | None:
        """The log's end, once: no retries, so a request never waits longer than the connection bounds."""
        with self.datastore.get_connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            cursor.execute(self.max_notification_id_statement, prepare=True)
            row = cursor.fetchone()
            return row[0] if row else None

    def newer_events(self, known: Mapping[UUID, int]) -> list[StoredEvent]:
        """The events of each stream after the version known of it (0: all), in one round trip."""
        if not known:
            return []
        with self.datastore.get_connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            if len(known) == 1:
                ((originator_id, version),) = known.items()
                cursor.execute(self._newer_of_one, (originator_id, version), prepare=True)
            else:
                cursor.execute(self._newer_of_many, (list(known), list(known.values())), prepare=True)
            return [StoredEvent(row[0], row[1], row[2], bytes(row[3])) for row in cursor.fetchall()]

    def current_versions(self, originator_ids: Iterable[UUID]) -> dict[UUID, int]:
        with self.datastore.get_connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            cursor.execute(self._versions, (list(originator_ids),), prepare=True)
            return {row[0]: row[1] for row in cursor.fetchall()}


def bound_to_connections(datastore: PostgresDatastore) -> None:
    """Bounds every wait of the store's connections by the pool's own wait (POSTGRES_CONNECT_TIMEOUT): connecting,
    and a server gone silent (TCP user timeout, keepalives); and replaces a pooled connection the server ended
    before anyone uses it. The library passes no connect timeout, so libpq would wait minutes for a silent host."""
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
    datastore.pool._check = discard_if_ended  # noqa: SLF001 - the pool takes its check only at construction


def discard_if_ended(conn: psycopg.Connection[Any]) -> None:
    """A pooled connection is checked without a round trip: an idle healthy one has nothing to read, while one the
    server ended (a restart, an administrator's terminate) has its farewell or end-of-file waiting. Such a one is
    closed, so the pool replaces it and hands out another: no request fails on it."""
    if conn.closed or select.select([conn.fileno()], [], [], 0)[0]:
        conn.close()
        raise OperationalError("PostgreSQL ended this pooled connection")


class ClinicSQLiteRecorder(SQLiteApplicationRecorder):
    """The same reads on the embedded store, where a round trip costs nothing and one query per stream is plain."""

    datastore: SQLiteDatastore

    def newer_events(self, known: Mapping[UUID, int]) -> list[StoredEvent]:
        return [event for originator_id, version in known.items() for event in self.select_events(originator_id, gt=version)]

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
