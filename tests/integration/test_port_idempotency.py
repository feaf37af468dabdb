"""The idempotency port, one suite for SQL (SQLite, PostgreSQL) and Redis: a keyed request is answered once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import uuid4

import pytest

from infrastructure.bootstrap import Medledger
from infrastructure.idempotency import (
    IdempotencyKeyInFlightError,
    IdempotencyKeyReusedError,
    RedisIdempotency,
    SqlIdempotency,
    StoredAnswer,
)
from integration_helpers import running

IMPLEMENTATIONS = {
    "sql-sqlite": ("sqlite", False, SqlIdempotency),
    "sql-postgres": ("postgres", False, SqlIdempotency),
    "redis": ("sqlite", True, RedisIdempotency),
}
BODY = '{"id": "appointment-1", "status": "booked"}'


@pytest.fixture(params=list(IMPLEMENTATIONS))
def system(request: pytest.FixtureRequest, make_settings, clock) -> Iterator[Medledger]:
    backend, use_redis, implementation = IMPLEMENTATIONS[request.param]
    with running(make_settings(backend, use_redis=use_redis), clock) as system:
        assert type(system.idempotency) is implementation
        try:
            yield system
        finally:
            if system.redis is not None:
                for key in system.redis.scan_iter(f"{system.settings.redis_prefix}:*"):
                    system.redis.delete(key)


@pytest.fixture
def keys(system: Medledger) -> SqlIdempotency | RedisIdempotency:
    return system.idempotency


def new_scope() -> str:
    return f"account-1:POST /appointments:{uuid4().hex}"


def test_the_first_claim_of_a_key_reserves_it(keys) -> None:
    assert keys.claim(new_scope(), "fingerprint-a") is None


def test_the_same_request_while_the_first_is_in_flight_is_refused(keys) -> None:
    scope = new_scope()
    keys.claim(scope, "fingerprint-a")

    with pytest.raises(IdempotencyKeyInFlightError):
        keys.claim(scope, "fingerprint-a")


def test_the_same_request_after_the_answer_is_recorded_gets_that_answer(keys) -> None:
    scope = new_scope()
    keys.claim(scope, "fingerprint-a")
    keys.record(scope, 201, BODY)

    assert keys.claim(scope, "fingerprint-a") == StoredAnswer(201, BODY)
    assert keys.claim(scope, "fingerprint-a") == StoredAnswer(201, BODY)


@pytest.mark.parametrize("recorded", [True, False], ids=["answered", "in-flight"])
def test_a_different_request_under_a_used_key_is_refused(keys, recorded: bool) -> None:
    scope = new_scope()
    keys.claim(scope, "fingerprint-a")
    if recorded:
        keys.record(scope, 201, BODY)

    with pytest.raises(IdempotencyKeyReusedError):
        keys.claim(scope, "fingerprint-b")


def test_a_released_key_can_be_claimed_again_by_any_request(keys) -> None:
    scope = new_scope()
    keys.claim(scope, "fingerprint-a")

    keys.release(scope)

    assert keys.claim(scope, "fingerprint-b") is None
    with pytest.raises(IdempotencyKeyInFlightError):
        keys.claim(scope, "fingerprint-b")


def test_recording_a_key_nobody_holds_any_more_leaves_it_free(keys) -> None:
    scope = new_scope()
    keys.claim(scope, "fingerprint-a")
    keys.release(scope)

    keys.record(scope, 201, BODY)

    assert keys.claim(scope, "fingerprint-b") is None


def test_keys_are_scoped(keys) -> None:
    scope, other = new_scope(), new_scope()
    keys.claim(scope, "fingerprint-a")
    keys.record(scope, 201, BODY)

    assert keys.claim(other, "fingerprint-b") is None


@pytest.mark.parametrize("contenders", [2, 16])
def test_of_requests_claiming_a_new_key_at_once_exactly_one_reserves_it(keys, contenders: int) -> None:
    for _ in range(5):
        scope = new_scope()
        barrier = threading.Barrier(contenders)

        def claim(_: int) -> object:
            barrier.wait()
            try:
                return keys.claim(scope, "fingerprint-a")
            except Exception as error:  # noqa: BLE001 - the test judges every outcome
                return error

        with ThreadPoolExecutor(contenders) as pool:
            results = list(pool.map(claim, range(contenders)))

        assert results.count(None) == 1
        assert [type(r).__name__ for r in results if r is not None] == ["IdempotencyKeyInFlightError"] * (contenders - 1)


def test_an_erasure_forgets_the_answers_that_name_the_patient_and_keeps_the_others(keys) -> None:
    patient = str(uuid4())
    naming, other = new_scope(), new_scope()
    for scope, body in ((naming, f'{{"id": "{patient}", "position": 7}}'), (other, BODY)):
        keys.claim(scope, "fingerprint-a")
        keys.record(scope, 201, body)

    assert keys.forget_mentioning(patient) == 1

    assert keys.claim(naming, "fingerprint-a") is None  # free again: no answer of theirs is replayed
    assert keys.claim(other, "fingerprint-a") == StoredAnswer(201, BODY)
