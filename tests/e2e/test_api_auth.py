"""Registration, login, refresh-token rotation, logout, and every way an access token can be refused."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import jwt
import pytest

from e2e_helpers import PASSWORD, Clinic, bearer, expect, patient_profile, unique_email
from tests.conftest import TEST_SECRET
from tests.private_redis import PrivateRedis, private_redis  # noqa: F401 (a fixture)


def register(clinic: Clinic, **payload: Any) -> Any:
    body = {"email": unique_email("patient"), "password": PASSWORD, "profile": patient_profile(), **payload}
    return clinic.client.post("/auth/register", json=body)


def refresh(clinic: Clinic, refresh_token: str) -> Any:
    return clinic.client.post("/auth/refresh", json={"refresh_token": refresh_token})


def me(clinic: Clinic, token: str) -> Any:
    return clinic.client.get("/auth/me", headers=bearer(token))


def test_a_registered_patient_can_log_in_and_read_their_record(clinic: Clinic) -> None:
    email = unique_email("patient")
    answer = expect(clinic.register(email, full_name="Ada Lovelace"), 201)

    patient = clinic.user(email)

    assert patient.account_id == answer["id"]
    assert patient.role == "patient" and patient.profile_id
    record = clinic.read(patient, f"/patients/{patient.profile_id}", after=answer["position"])
    assert record["full_name"] == "Ada Lovelace"


def test_registering_an_email_that_is_taken_is_409_whatever_its_case(clinic: Clinic) -> None:
    email = unique_email("patient")
    expect(clinic.register(email), 201)

    expect(clinic.register(email), 409, "email_taken")
    expect(clinic.register(email.upper()), 409, "email_taken")


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"profile": patient_profile(date_of_birth=(date.today() + timedelta(days=2)).isoformat())}, "profile.date_of_birth"),
        ({"nickname": "gracie"}, "nickname"),
        ({"profile": patient_profile(favourite_colour="blue")}, "profile.favourite_colour"),
        ({"profile": patient_profile(sex="sometimes")}, "profile.sex"),
    ],
    ids=["bad-email", "short-password", "future-date-of-birth", "unknown-field", "unknown-profile-field", "bad-enum"],
)
def test_registration_with_a_bad_field_is_422_naming_it(clinic: Clinic, payload: dict[str, Any], field: str) -> None:
    answer = expect(register(clinic, **payload), 422, "invalid_request", field)

    assert answer["message"]


def test_login_with_a_wrong_password_or_an_unknown_email_is_the_same_401(clinic: Clinic) -> None:
    patient = clinic.patient()

    wrong_password = expect(clinic.client.post("/auth/login", json={"email": patient.email, "password": "not-the-password"}), 401)
    unknown_email = expect(clinic.client.post("/auth/login", json={"email": unique_email(), "password": PASSWORD}), 401)

    assert wrong_password == unknown_email
    assert wrong_password["code"] == "invalid_credentials"


def test_a_disabled_account_cannot_log_in(clinic: Clinic) -> None:
    admin, patient = clinic.admin(), clinic.patient()
    expect(clinic.client.post(f"/accounts/{patient.account_id}/disable", headers=admin.headers, json={"reason": "left"}), 200)

    expect(clinic.client.post("/auth/login", json={"email": patient.email, "password": PASSWORD}), 403, "account_disabled")


def test_refresh_rotates_the_pair_and_reusing_an_old_refresh_token_revokes_the_whole_family(clinic: Clinic) -> None:
    patient = clinic.patient()

    first = expect(refresh(clinic, patient.refresh_token), 200)
    expect(me(clinic, first["access_token"]), 200)
    second = expect(refresh(clinic, first["refresh_token"]), 200)
    expect(me(clinic, second["access_token"]), 200)
    assert len({patient.refresh_token, first["refresh_token"], second["refresh_token"]}) == 3

    expect(refresh(clinic, patient.refresh_token), 401, "refresh_token_reused")
    expect(refresh(clinic, second["refresh_token"]), 401)
    expect(me(clinic, second["access_token"]), 401)


def test_logout_ends_the_session_for_its_access_and_refresh_tokens(clinic: Clinic) -> None:
    patient = clinic.patient()
    expect(me(clinic, patient.access_token), 200)

    response = clinic.client.post("/auth/logout", headers=patient.headers)

    assert response.status_code == 204 and not response.content
    expect(me(clinic, patient.access_token), 401)
    expect(refresh(clinic, patient.refresh_token), 401)


def test_logout_ends_only_its_own_session(clinic: Clinic) -> None:
    patient = clinic.patient()
    other_session = clinic.login(patient.email)

    assert clinic.client.post("/auth/logout", headers=patient.headers).status_code == 204

    expect(me(clinic, other_session["access_token"]), 200)


def _claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _expired(token: str) -> str:
    claims = _claims_of(token)
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    return jwt.encode({**claims, "iat": past - timedelta(minutes=15), "exp": past}, TEST_SECRET, algorithm="HS256")


def _foreign(token: str) -> str:
    return jwt.encode(_claims_of(token), "another-secret-that-is-long-enough-for-hs256-9876543210", algorithm="HS256")


def _unsigned(token: str) -> str:
    return jwt.encode(_claims_of(token), key=None, algorithm="none")


def _admin_claims_unsigned(token: str) -> str:
    return jwt.encode({**_claims_of(token), "role": "admin"}, key=None, algorithm="none")


def _hs256_with_wrong_issuer(token: str) -> str:
    return jwt.encode({**_claims_of(token), "iss": "someone-else"}, TEST_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "make_header",
    [
        lambda user: {},
        lambda user: {"Authorization": "Bearer"},
        lambda user: {"Authorization": f"Basic {user.access_token}"},
        lambda user: bearer("not.a.jwt"),
        lambda user: bearer("garbage"),
        lambda user: bearer(_expired(user.access_token)),
        lambda user: bearer(_foreign(user.access_token)),
        lambda user: bearer(_unsigned(user.access_token)),
        lambda user: bearer(_admin_claims_unsigned(user.access_token)),
        lambda user: bearer(_hs256_with_wrong_issuer(user.access_token)),
        lambda user: bearer(user.refresh_token),
    ],
    ids=[
        "missing",
        "empty-bearer",
        "basic-scheme",
        "garbage-jwt",
        "garbage",
        "expired",
        "foreign-signed",
        "alg-none",
        "alg-none-admin",
        "wrong-issuer",
        "refresh-as-access",
    ],
)
def test_a_request_without_a_valid_access_token_is_401(clinic: Clinic, make_header: Any) -> None:
    patient = clinic.patient()

    response = clinic.client.get("/auth/me", headers=make_header(patient))

    expect(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    expect(clinic.client.get(f"/patients/{patient.profile_id}", headers=make_header(patient)), 401)


def test_an_access_token_is_not_a_refresh_token(clinic: Clinic) -> None:
    patient = clinic.patient()

    expect(refresh(clinic, patient.access_token), 401, "invalid_token")
    expect(refresh(clinic, _expired(patient.refresh_token)), 401, "invalid_token")
    expect(refresh(clinic, _unsigned(patient.refresh_token)), 401, "invalid_token")


@pytest.mark.parametrize("use_redis", [False, True], ids=["without-redis", "with-redis"])
def test_disabling_an_account_refuses_its_live_access_token_at_once(clinic_with: Any, use_redis: bool) -> None:
    clinic = clinic_with(use_redis=use_redis)
    admin, patient = clinic.admin(), clinic.patient()
    expect(me(clinic, patient.access_token), 200)

    expect(clinic.client.post(f"/accounts/{patient.account_id}/disable", headers=admin.headers, json={"reason": "left"}), 200)

    expect(me(clinic, patient.access_token), 401)
    expect(clinic.client.get(f"/patients/{patient.profile_id}", headers=patient.headers), 401)
    expect(clinic.client.post("/auth/login", json={"email": patient.email, "password": PASSWORD}), 403, "account_disabled")

    expect(clinic.client.post(f"/accounts/{patient.account_id}/enable", headers=admin.headers, json={"reason": "back"}), 200)
    expect(me(clinic, clinic.login(patient.email)["access_token"]), 200)


@pytest.mark.parametrize("use_redis", [False, True], ids=["without-redis", "with-redis"])
def test_logout_and_refresh_reuse_revoke_with_either_revocation_store(clinic_with: Any, use_redis: bool) -> None:
    clinic = clinic_with(use_redis=use_redis)
    patient = clinic.patient()
    rotated = expect(refresh(clinic, patient.refresh_token), 200)

    expect(refresh(clinic, patient.refresh_token), 401, "refresh_token_reused")

    expect(me(clinic, rotated["access_token"]), 401)
    other = clinic.login(patient.email)
    assert clinic.client.post("/auth/logout", headers=bearer(other["access_token"])).status_code == 204
    expect(me(clinic, other["access_token"]), 401)
    expect(refresh(clinic, other["refresh_token"]), 401)


def _answered(call: Any, attempts: int = 20) -> Any:
    """The first answer that is not a 503 (a client's pooled connection to a restarted Redis fails once)."""
    for _ in range(attempts):
        response = call()
        if response.status_code != 503:
            return response
        time.sleep(0.05)
    return response


def test_a_logged_out_token_stays_refused_when_redis_restarts_empty(clinic_with: Any, private_redis: PrivateRedis) -> None:
    clinic = clinic_with(redis_url=private_redis.url)
    patient = clinic.patient()
    assert clinic.client.post("/auth/logout", headers=patient.headers).status_code == 204
    expect(me(clinic, patient.access_token), 401)

    private_redis.restart_empty()

    expect(_answered(lambda: me(clinic, patient.access_token)), 401)
    expect(_answered(lambda: refresh(clinic, patient.refresh_token)), 401)


def test_a_refresh_token_reused_while_redis_is_down_ends_the_session_for_good(clinic_with: Any, private_redis: PrivateRedis) -> None:
    clinic = clinic_with(redis_url=private_redis.url, raise_server_exceptions=False)
    patient = clinic.patient()
    newest = expect(refresh(clinic, patient.refresh_token), 200)
    expect(me(clinic, newest["access_token"]), 200)

    private_redis.kill()
    assert refresh(clinic, patient.refresh_token).status_code in (401, 503)  # refused either way: never a new pair
    private_redis.start()

    expect(_answered(lambda: me(clinic, newest["access_token"])), 401)
    expect(_answered(lambda: refresh(clinic, newest["refresh_token"])), 401)


def _signed(token: str, **changes: Any) -> str:
    return jwt.encode({**_claims_of(token), **changes}, TEST_SECRET, algorithm="HS256")


@pytest.mark.parametrize("use_redis", [False, True], ids=["without-redis", "with-redis"])
@pytest.mark.parametrize("forge", ["role", "unknown-session", "other-account", "other-profile"])
def test_a_correctly_signed_token_that_does_not_match_its_session_and_account_is_401(
    clinic_with: Any, use_redis: bool, forge: str
) -> None:
    clinic = clinic_with(use_redis=use_redis)
    patient, other = clinic.patient(), clinic.patient()
    forged = {
        "role": lambda: _signed(patient.access_token, role="admin"),
        "unknown-session": lambda: _signed(patient.access_token, sid=str(uuid4())),
        "other-account": lambda: _signed(patient.access_token, sub=other.account_id, pid=other.profile_id),
        "other-profile": lambda: _signed(patient.access_token, pid=other.profile_id),
    }[forge]()
    expect(me(clinic, patient.access_token), 200)

    expect(me(clinic, forged), 401, "session_revoked")
    expect(clinic.client.get(f"/patients/{other.profile_id}", headers=bearer(forged)), 401)


@pytest.mark.parametrize("use_redis", [False, True], ids=["without-redis", "with-redis"])
def test_enabling_a_disabled_account_revives_none_of_its_old_sessions(clinic_with: Any, use_redis: bool) -> None:
    clinic = clinic_with(use_redis=use_redis)
    admin, patient = clinic.admin(), clinic.patient()
    reason = {"reason": "investigated"}

    expect(clinic.client.post(f"/accounts/{patient.account_id}/disable", headers=admin.headers, json=reason), 200)
    expect(clinic.client.post(f"/accounts/{patient.account_id}/enable", headers=admin.headers, json=reason), 200)

    expect(me(clinic, patient.access_token), 401, "session_revoked")
    expect(refresh(clinic, patient.refresh_token), 401, "session_revoked")
    expect(me(clinic, clinic.login(patient.email)["access_token"]), 200)
