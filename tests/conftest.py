"""Fixtures shared by every suite: real SQLite, PostgreSQL and Redis, isolated per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
import redis

from infrastructure.bootstrap import Medledger, bootstrap
from infrastructure.settings import Settings
from tests.schema_pool import SchemaPool

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("MEDLEDGER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MEDLEDGER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
TEST_LOG_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # an Ed25519 private key: bytes 0..31, base64
TEST_MASTER_KEY = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="  # a master key: bytes 32..63, base64


# Modules with tests of tens of seconds each (servers and processes of their own, outages waited out), run first. Under
# -n a worker that runs out of tests takes from another's queue (--dist worksteal in pyproject.toml), but a long test
# that starts last still leaves the other workers idle for as long as it runs.
LONG_RUNNING_MODULES = {
    "e2e/test_api_concurrency.py",
    "e2e/test_api_contract.py",
    "e2e/test_api_outages.py",
    "e2e/test_api_read_wait.py",
    "e2e/test_api_rebuild.py",
    "e2e/test_concurrent_start.py",
    "e2e/test_rebuild_processes.py",
    "integration/test_billing_policy.py",
    "integration/test_projector_kill.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long-running modules' tests first, each module's in its own order; every other test keeps its place."""
    items.sort(key=lambda item: f"{item.path.parent.name}/{item.path.name}" not in LONG_RUNNING_MODULES)


@cache
def _postgres_error() -> str | None:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.Error as error:
        return str(error)
    return None


@cache
def _redis_error() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        return str(error)
    return None


def _need(service: str, error: str | None) -> None:
    """In CI a missing service fails the test; on a laptop it skips it."""
    if error is None:
        return
    message = f"{service} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def need_postgres() -> None:
    _need("PostgreSQL", _postgres_error())


def need_redis() -> None:
    _need("Redis", _redis_error())


class FakeClock:
    """A clock the test moves; starts at the real now so that tokens it helps issue are valid."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def drop_schema(schema: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


SettingsFactory = Callable[..., Settings]


def build_schema(settings: Settings, schema: str) -> None:
    """Bootstraps the system on that schema with these settings (in a data directory of its own), and closes it."""
    data_dir = tempfile.mkdtemp(prefix="medledger-schema-")
    try:
        bootstrap(settings.model_copy(update={"database_schema": schema, "data_dir": Path(data_dir), "pool_size": 2})).close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def schema_pool() -> Iterator[SchemaPool]:
    """This worker's emptied PostgreSQL schemas (tests/schema_pool.py); dropped when the session ends."""
    pool = SchemaPool(POSTGRES_URL)
    yield pool
    if pool.reference is not None:
        pool.close()


@pytest.fixture
def make_settings(tmp_path: Path, schema_pool: SchemaPool) -> Iterator[SettingsFactory]:
    """Settings for one backend ('sqlite' or 'postgres'), optionally with Redis, isolated to this test.

    On PostgreSQL the schema is a new one, unless reuse_schema: then it may be one an earlier test of this worker
    used, emptied and checked to be, rows apart, what bootstrap makes of a new one (tests/schema_pool.py). That is
    for tests that bootstrap the system on it in this process before anything else, which cannot tell the two apart.
    Either way no other test uses the schema while this one runs."""
    schemas: list[str] = []
    pooled: list[str] = []

    def make(backend: str = "sqlite", *, use_redis: bool = False, reuse_schema: bool = False, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "data_dir": tmp_path / f"data-{uuid4().hex[:8]}",
            "jwt_secret": TEST_SECRET,
            "log_signing_key": TEST_LOG_KEY,
            "master_key": TEST_MASTER_KEY,
            "password_hashing": "fast",
            "projector_poll_seconds": 0.01,
            # Fuzzing tests send hundreds of writes a minute as one user; the limit has its own tests.
            "write_rate_limit": "1000000/minute",
            # The drafting policy writes invoices in the background after a completed visit; tests of other records
            # count what the log holds, so it runs only where a test asks for it (billing_policy=True).
            "billing_policy": False,
        }
        if backend == "postgres":
            need_postgres()
            values.update(database_url=POSTGRES_URL, pool_size=5)
            if reuse_schema:
                base = dict(values)
                schema = schema_pool.lend(lambda name: build_schema(Settings(**base), name))
                pooled.append(schema)
            else:
                schema = f"test_{uuid4().hex[:16]}"
                schemas.append(schema)
            values.update(database_schema=schema)
        if use_redis:
            need_redis()
            values.update(redis_url=REDIS_URL, redis_prefix=f"test-{uuid4().hex[:12]}")
        values.update(overrides)
        return Settings(**values)

    yield make
    for schema in schemas:
        drop_schema(schema)
    for schema in pooled:
        schema_pool.give_back(schema)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Runs a test once per event store: SQLite file and PostgreSQL."""
    return request.param


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_system(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Medledger]:
    """One system per backend for a whole module of tests that never collide (no projector, real clock)."""
    values: dict[str, object] = {"data_dir": tmp_path_factory.mktemp("data"), "jwt_secret": TEST_SECRET, "log_signing_key": TEST_LOG_KEY, "master_key": TEST_MASTER_KEY, "password_hashing": "fast"}
    schema = f"test_{uuid4().hex[:16]}"
    if request.param == "postgres":
        need_postgres()
        values.update(database_url=POSTGRES_URL, database_schema=schema, pool_size=2)
    system = bootstrap(Settings(**values))
    yield system
    system.close()
    if request.param == "postgres":
        drop_schema(schema)


@pytest.fixture
def medledger(backend: str, make_settings: SettingsFactory, clock: FakeClock) -> Iterator[Medledger]:
    """The whole system on one backend, with an in-process projector and a fake clock."""
    system = bootstrap(make_settings(backend, reuse_schema=True), clock=clock)
    system.start_projector()
    yield system
    system.close()
