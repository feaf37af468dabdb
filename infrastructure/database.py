"""SQLAlchemy engines for the read models: SQLite file in embedded mode, PostgreSQL (and a replica) otherwise."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, text

from infrastructure.settings import Settings


def create_read_model_engine(settings: Settings, *, replica: bool = False) -> Engine:
    url = settings.sqlalchemy_url(replica=replica)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pool_pre_ping replaces a connection a restart or an outage cut (and, on the first dead one found, every
    # connection older than it) before a request uses it; pool_timeout and the connect arguments bound each wait.
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,
        pool_timeout=settings.storage_timeout_seconds,
        connect_args=settings.postgres_connect_args(),
    )
    if settings.database_schema:
        if not replica:
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"'))
        engine = engine.execution_options(schema_translate_map={None: settings.database_schema})
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
