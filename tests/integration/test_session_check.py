"""Who may still use an access token, decided from the Session and Account streams alone: SQLite, PostgreSQL,
and with Redis configured (which must change nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from commands import accounts
from commands.accounts import AccessClaims
from domain.sessions import SessionRevokedError
from domain.shared import Role
from infrastructure.bootstrap import Medledger
from integration_helpers import ADMIN, PASSWORD, Member, open_patient, running

CONFIGURATIONS = {
    "sqlite": ("sqlite", False),
    "postgres": ("postgres", False),
    "sqlite-with-redis": ("sqlite", True),
}


@pytest.fixture(params=list(CONFIGURATIONS))
def system(request: pytest.FixtureRequest, make_settings, clock) -> Iterator[Medledger]:
    backend, use_redis = CONFIGURATIONS[request.param]
    with running(make_settings(backend, use_redis=use_redis), clock) as system:
        yield system


def is_active(m: Medledger, claims: AccessClaims) -> bool:
    try:
        accounts.check_access(m.store, claims)
    except SessionRevokedError:
        return False
    return True


def logged_in(m: Medledger, member: Member) -> AccessClaims:
    """Logs in through the handler and reads back the access token it would be given."""
    grant = accounts.log_in(m.services, accounts.LogIn(member.email, PASSWORD), "corr-login")
    token = m.tokens.issue(grant, m.services.clock()).access_token
    return m.tokens.access_claims(token)


def test_a_fresh_session_is_active(system: Medledger) -> None:
    claims = logged_in(system, open_patient(system.services))

    assert is_active(system, claims)


def test_logging_out_ends_that_session_only(system: Medledger) -> None:
    patient = open_patient(system.services)
    leaving, staying = logged_in(system, patient), logged_in(system, patient)

    accounts.log_out(system.services, leaving.session_id, patient.actor)

    assert not is_active(system, leaving)
    assert is_active(system, staying)


def test_disabling_an_account_ends_its_sessions_and_not_others(system: Medledger) -> None:
    patient, neighbour = open_patient(system.services), open_patient(system.services)
    claims, neighbours = logged_in(system, patient), logged_in(system, neighbour)

    accounts.disable_account(system.services, accounts.DisableAccount(patient.account_id, "fraud"), ADMIN)

    assert not is_active(system, claims)
    assert is_active(system, neighbours)


def test_enabling_a_disabled_account_revives_none_of_the_sessions_it_had(system: Medledger) -> None:
    patient = open_patient(system.services)
    claims = logged_in(system, patient)

    accounts.disable_account(system.services, accounts.DisableAccount(patient.account_id, "fraud"), ADMIN)
    accounts.enable_account(system.services, accounts.EnableAccount(patient.account_id, "cleared"), ADMIN)

    assert not is_active(system, claims)
    assert is_active(system, logged_in(system, patient))


def test_enabling_does_not_revive_a_session_that_was_logged_out(system: Medledger) -> None:
    patient = open_patient(system.services)
    claims = logged_in(system, patient)

    accounts.log_out(system.services, claims.session_id, patient.actor)
    accounts.disable_account(system.services, accounts.DisableAccount(patient.account_id, "fraud"), ADMIN)
    accounts.enable_account(system.services, accounts.EnableAccount(patient.account_id, "cleared"), ADMIN)

    assert not is_active(system, claims)


def test_a_token_naming_another_account_or_role_than_its_session_is_refused(system: Medledger) -> None:
    patient, neighbour = open_patient(system.services), open_patient(system.services)
    claims = logged_in(system, patient)

    assert not is_active(system, AccessClaims(neighbour.account_id, claims.role, neighbour.profile_id, claims.session_id))
    assert not is_active(system, AccessClaims(claims.account_id, claims.role, neighbour.profile_id, claims.session_id))
    assert not is_active(system, AccessClaims(claims.account_id, Role.ADMIN, claims.profile_id, claims.session_id))
    assert not is_active(system, AccessClaims(claims.account_id, claims.role, claims.profile_id, str(uuid4())))
    assert is_active(system, claims)


def test_the_refresh_token_of_a_session_that_ended_with_a_disabling_is_refused_after_enabling(system: Medledger) -> None:
    patient = open_patient(system.services)
    grant = accounts.log_in(system.services, accounts.LogIn(patient.email, PASSWORD), "corr-login")

    accounts.disable_account(system.services, accounts.DisableAccount(patient.account_id, "fraud"), ADMIN)
    accounts.enable_account(system.services, accounts.EnableAccount(patient.account_id, "cleared"), ADMIN)

    with pytest.raises(SessionRevokedError):
        accounts.refresh_session(system.services, accounts.RefreshSession(grant.session_id, grant.refresh_token_id), "corr")
