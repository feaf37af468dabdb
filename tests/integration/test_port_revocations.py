"""The revocations port, one suite for the event store (SQLite, PostgreSQL) and Redis: who may still use a token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands import accounts
from infrastructure.bootstrap import Medledger
from infrastructure.revocations import RedisRevocations, StoreRevocations
from infrastructure.security import AccessClaims
from integration_helpers import ADMIN, PASSWORD, Member, open_patient, running

IMPLEMENTATIONS = {
    "store-sqlite": ("sqlite", False, StoreRevocations),
    "store-postgres": ("postgres", False, StoreRevocations),
    "redis": ("sqlite", True, RedisRevocations),
}


@pytest.fixture(params=list(IMPLEMENTATIONS))
def system(request: pytest.FixtureRequest, make_settings, clock) -> Iterator[Medledger]:
    backend, use_redis, implementation = IMPLEMENTATIONS[request.param]
    with running(make_settings(backend, use_redis=use_redis), clock) as system:
        assert type(system.revocations) is implementation
        try:
            yield system
        finally:
            if system.redis is not None:
                for key in system.redis.scan_iter(f"{system.settings.redis_prefix}:*"):
                    system.redis.delete(key)


def logged_in(m: Medledger, member: Member) -> AccessClaims:
    """Logs in through the handler and reads back the access token it would be given."""
    grant = accounts.log_in(m.services, accounts.LogIn(member.email, PASSWORD), "corr-login")
    token = m.tokens.issue(grant, m.services.clock()).access_token
    return m.tokens.access_claims(token)


def test_a_fresh_session_is_active(system: Medledger) -> None:
    claims = logged_in(system, open_patient(system.services))

    assert system.revocations.is_active(claims)


def test_logging_out_ends_that_session_only(system: Medledger) -> None:
    patient = open_patient(system.services)
    leaving, staying = logged_in(system, patient), logged_in(system, patient)

    accounts.log_out(system.services, leaving.session_id, patient.actor)

    assert not system.revocations.is_active(leaving)
    assert system.revocations.is_active(staying)


def test_disabling_an_account_ends_its_sessions_and_not_others(system: Medledger) -> None:
    patient, neighbour = open_patient(system.services), open_patient(system.services)
    claims, neighbours = logged_in(system, patient), logged_in(system, neighbour)

    accounts.disable_account(system.services, accounts.DisableAccount(patient.account_id, "fraud"), ADMIN)

    assert not system.revocations.is_active(claims)
    assert system.revocations.is_active(neighbours)


def test_enabling_a_disabled_account_revives_none_of_the_sessions_it_had(system: Medledger) -> None:
    patient = open_patient(system.services)
    claims = logged_in(system, patient)

    accounts.disable_account(system.services, accounts.DisableAccount(patient.account_id, "fraud"), ADMIN)
    accounts.enable_account(system.services, accounts.EnableAccount(patient.account_id, "cleared"), ADMIN)

    assert not system.revocations.is_active(claims)
    assert system.revocations.is_active(logged_in(system, patient))


def test_enabling_does_not_revive_a_session_that_was_logged_out(system: Medledger) -> None:
    patient = open_patient(system.services)
    claims = logged_in(system, patient)

    accounts.log_out(system.services, claims.session_id, patient.actor)
    accounts.disable_account(system.services, accounts.DisableAccount(patient.account_id, "fraud"), ADMIN)
    accounts.enable_account(system.services, accounts.EnableAccount(patient.account_id, "cleared"), ADMIN)

    assert not system.revocations.is_active(claims)
