"""SQLAlchemy engines for the read models (SQLite file in embedded mode, PostgreSQL and a replica otherwise),
and the locks that processes sharing that storage take to create its schema or rebuild a read model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from filelock import FileLock, Timeout
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError

from infrastructure.recorders import ended

from infrastructure.settings import Settings


class LockHeldError(Exception):
    """Raised when a lock asked for without waiting is held by another process or thread."""


def create_read_model_engine(settings: Settings, *, replica: bool = False) -> Engine:
    url = settings.sqlalchemy_url(replica=replica)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pool_timeout and the connect arguments bound each wait; a connection the server ended is replaced before a
    # request uses it, found without a round trip (a ping per checkout would add one to every query).
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_timeout=settings.storage_timeout_seconds,
        connect_args=settings.postgres_connect_args(),
    )
    event.listen(engine, "checkout", _replace_if_ended)
    if settings.database_schema:
        if not replica:
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"'))
        engine = engine.execution_options(schema_translate_map={None: settings.database_schema})
    return engine


@contextmanager
def exclusive(settings: Settings, *names: str, wait: bool = True) -> Iterator[None]:
    """Holds the named locks of this storage, across processes, until the block ends; they die with their holder.

    On PostgreSQL they are session advisory locks of this schema, on a connection of their own; in embedded
    mode file locks beside the SQLite files. Without `wait`, a lock someone else holds is a LockHeldError
    naming it, and none is kept.
    """
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as held:
            for name in names:
                lock = FileLock(settings.data_dir / f".{name}.lock")
                try:
                    lock.acquire(timeout=-1 if wait else 0)
                except Timeout:
                    raise LockHeldError(name) from None
                held.callback(lock.release)
            yield
        return
    schema = settings.database_schema or "public"
    with psycopg.connect(settings.database_url or "", autocommit=True, connect_timeout=10, application_name="medledger lock") as conn:
        for name in names:
            key = f"medledger {schema} {name}"
            if wait:
                conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
                continue
            taken = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()
            if not (taken and taken[0]):
                raise LockHeldError(name)
        yield


def _replace_if_ended(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if ended(dbapi_connection):
        raise DisconnectionError("PostgreSQL ended this pooled connection")


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
