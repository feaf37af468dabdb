"""The test suite's pool of PostgreSQL schemas (tests/schema_pool.py): a schema lent again holds what a new one does,
and one a test changed or can still reach is dropped, never lent again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import uuid4

import psycopg
import pytest

from tests.conftest import POSTGRES_URL, build_schema
from tests.schema_pool import SchemaPool, row_counts, survey

pytestmark = pytest.mark.postgres


@pytest.fixture
def build(make_settings) -> Callable[[str], None]:
    """Bootstraps the system, with the suite's PostgreSQL settings, on the named schema."""
    settings = make_settings("postgres")
    return lambda schema: build_schema(settings, schema)


@pytest.fixture
def pool(build: Callable[[str], None]) -> Iterator[SchemaPool]:
    pool = SchemaPool(POSTGRES_URL)
    if not pool.usable:
        pytest.skip("the pool needs Linux's /proc")
    yield pool
    pool.close()


def _fresh(conn: psycopg.Connection, build: Callable[[str], None], name: str) -> tuple[list[tuple[str, str]], dict[str, int]]:
    build(name)
    try:
        return survey(conn, name).structure, row_counts(conn, name)
    finally:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def test_a_schema_lent_again_is_emptied_to_what_bootstrap_makes_of_a_new_one(pool: SchemaPool, build: Callable[[str], None]) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        structure, rows = _fresh(conn, build, f"test_pool_fresh_{uuid4().hex[:8]}")
        schema = pool.lend(build)
        build(schema)
        conn.execute(f'INSERT INTO "{schema}".login_failures (key, at) VALUES (%s, 0), (%s, 0)', ("someone", "someone"))
        conn.execute(f"INSERT INTO \"{schema}\".idempotency_keys (scope, fingerprint, created_at) VALUES ('s', 'f', now())")
        assert row_counts(conn, schema)["login_failures"] == 2
        pool.give_back(schema)

        again = pool.lend(build)
        build(again)

        assert again == schema and pool.reused == 1
        assert survey(conn, again).structure == structure
        assert row_counts(conn, again) == rows
        conn.execute(f'INSERT INTO "{again}".login_failures (key, at) VALUES (%s, 0)', ("someone",))
        assert conn.execute(f'SELECT id FROM "{again}".login_failures').fetchone() == (1,)
        pool.give_back(again)


@pytest.mark.parametrize(
    "change",
    [
        'CREATE TABLE "{schema}".leftover (x int)',
        'ALTER TABLE "{schema}".accounts ADD COLUMN leftover int',
        'CREATE INDEX leftover ON "{schema}".accounts (role, email)',
        'ALTER INDEX "{schema}".ix_accounts_role RENAME TO ix_accounts_role_old',
        'DROP TABLE "{schema}".record_reads',
        'CREATE SEQUENCE "{schema}".leftover',
        "CREATE TYPE \"{schema}\".leftover AS ENUM ('a')",
        'CREATE FUNCTION "{schema}".leftover() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
    ],
)
def test_a_schema_whose_structure_changed_is_dropped(pool: SchemaPool, build: Callable[[str], None], change: str) -> None:
    schema = pool.lend(build)
    build(schema)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(change.format(schema=schema))

    pool.give_back(schema)

    assert pool.dropped == {"structure changed": 1}
    assert schema not in pool.idle and pool.lend(build) != schema


def test_a_schema_the_test_still_holds_a_connection_to_is_dropped(pool: SchemaPool, build: Callable[[str], None]) -> None:
    schema = pool.lend(build)
    build(schema)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as held:
        held.execute(f'SET search_path TO "{schema}"')

        pool.give_back(schema)

    assert pool.dropped == {"left behind: connection": 1}
    assert schema not in pool.idle
