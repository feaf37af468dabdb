"""The login-attempts port, one suite for Redis and the SQL fallback (SQLite, PostgreSQL): sliding windows of
failed logins per identity and per client address, and the lockouts of emails that are no account."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from commands.base import LoginAttempts
from domain.accounts import Lockout
from infrastructure.login_attempts import RedisLoginAttempts, SqlLoginAttempts
from integration_helpers import running

IMPLEMENTATIONS = {
    "sql-sqlite": ("sqlite", False, SqlLoginAttempts),
    "sql-postgres": ("postgres", False, SqlLoginAttempts),
    "redis": ("sqlite", True, RedisLoginAttempts),
}
WINDOW_SECONDS = 1
ADDRESS_LIMIT = 3


@pytest.fixture(params=list(IMPLEMENTATIONS))
def attempts(request: pytest.FixtureRequest, make_settings, clock) -> Iterator[LoginAttempts]:
    backend, use_redis, implementation = IMPLEMENTATIONS[request.param]
    settings = make_settings(
        backend, use_redis=use_redis, login_window_seconds=WINDOW_SECONDS, login_address_max_failures=ADDRESS_LIMIT
    )
    with running(settings, clock) as system:
        assert type(system.services.login_attempts) is implementation
        yield system.services.login_attempts


def identity() -> str:
    return str(uuid4())


def test_failures_are_counted_per_identity_and_forgotten_on_demand(attempts: LoginAttempts) -> None:
    one, other = identity(), identity()

    assert [attempts.failed(one, f"10.0.0.{n}") for n in range(3)] == [1, 2, 3]
    assert attempts.failed(other, "10.0.0.9") == 1
    attempts.forget(one)

    assert attempts.failed(one, "10.0.0.1") == 1
    assert attempts.failed(other, "10.0.0.9") == 2


def test_an_address_waits_once_it_reaches_its_limit_across_identities(attempts: LoginAttempts) -> None:
    address = f"192.0.2.{uuid4().int % 250}"
    for _ in range(ADDRESS_LIMIT - 1):
        attempts.failed(identity(), address)
    assert attempts.address_retry_after(address) is None

    attempts.failed(identity(), address)

    wait = attempts.address_retry_after(address)
    assert wait is not None and 0 < wait <= WINDOW_SECONDS
    assert attempts.address_retry_after("198.51.100.1") is None


def test_the_window_slides_failures_out_of_both_counts(attempts: LoginAttempts) -> None:
    one, address = identity(), "203.0.113.7"
    for _ in range(ADDRESS_LIMIT):
        attempts.failed(one, address)
    assert attempts.address_retry_after(address) is not None

    time.sleep(WINDOW_SECONDS + 0.2)

    assert attempts.address_retry_after(address) is None
    assert attempts.failed(one, address) == 1


def test_the_lockout_of_an_email_that_is_no_account_is_kept(attempts: LoginAttempts) -> None:
    one = identity()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    assert attempts.lockout(one) == Lockout()

    attempts.hold(one, Lockout(now + timedelta(minutes=5), 2), now)

    assert attempts.lockout(one) == Lockout(now + timedelta(minutes=5), 2)
    assert attempts.lockout(identity()) == Lockout()
