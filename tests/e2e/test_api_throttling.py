"""Login throttling (per account, per client address, progressive lockout an admin lifts) and per-user write limits,
with Redis and without."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from domain.accounts import Account
from e2e_helpers import PASSWORD, Clinic, expect, unique_email
from infrastructure.settings import Settings

WITH_AND_WITHOUT_REDIS = pytest.mark.parametrize("use_redis", [False, True], ids=["without-redis", "with-redis"])
WRONG = "not-the-password"


def attempt(clinic: Clinic, email: str, password: str = WRONG) -> httpx.Response:
    return clinic.client.post("/auth/login", json={"email": email, "password": password})


def retry_after(response: httpx.Response) -> int:
    expect(response, 429, "too_many_login_attempts")
    seconds = int(response.headers["retry-after"])
    assert seconds >= 1
    return seconds


@WITH_AND_WITHOUT_REDIS
def test_a_burst_of_wrong_passwords_for_one_account_is_refused_with_429_after_the_threshold(
    clinic_with: Any, use_redis: bool
) -> None:
    clinic = clinic_with(use_redis=use_redis)
    patient = clinic.patient()

    statuses = [attempt(clinic, patient.email) for _ in range(200)]

    assert [r.status_code for r in statuses[:5]] == [401] * 5
    assert all(0 < retry_after(r) <= 60 for r in statuses[5:])
    assert retry_after(attempt(clinic, patient.email, PASSWORD)) <= 60  # locked: even the right password waits


@WITH_AND_WITHOUT_REDIS
def test_lockouts_grow_until_an_admin_lifts_them_and_each_is_on_the_account_s_record(clinic_with: Any, use_redis: bool) -> None:
    clinic = clinic_with(use_redis=use_redis)
    admin, patient = clinic.admin(), clinic.patient()

    waits = []
    for _ in range(3):
        for _ in range(5):
            expect(attempt(clinic, patient.email), 401)
        waits.append(retry_after(attempt(clinic, patient.email, PASSWORD)))
        clinic.clock.advance(seconds=waits[-1])
    for _ in range(5):
        expect(attempt(clinic, patient.email), 401)
    assert waits == [60, 300, 900]
    assert retry_after(attempt(clinic, patient.email, PASSWORD)) == 3600

    expect(clinic.client.post(f"/accounts/{patient.account_id}/unlock", headers=patient.headers, json={"reason": "let me in"}), 403)
    expect(clinic.client.post(f"/accounts/{patient.account_id}/unlock", headers=admin.headers, json={}), 422, field="reason")
    unlock = clinic.client.post(f"/accounts/{patient.account_id}/unlock", headers=admin.headers, json={"reason": "called the desk"})
    expect(unlock, 200)
    clinic.login(patient.email)

    history = list(clinic.medledger.store.app.events.get(Account.create_id(patient.email)))
    locks = [e for e in history if type(e).__name__ == "LockedOut"]
    [unlocked] = [e for e in history if type(e).__name__ == "Unlocked"]
    assert [(lock.lockout, lock.failures) for lock in locks] == [(1, 5), (2, 5), (3, 5), (4, 5)]
    assert (unlocked.reason, unlocked.cause["user_id"], unlocked.cause["role"]) == ("called the desk", admin.account_id, "admin")
    for _ in range(5):
        expect(attempt(clinic, patient.email), 401)
    assert retry_after(attempt(clinic, patient.email)) == 60  # the progression starts again after an unlock


def test_a_successful_login_resets_the_count(clinic: Clinic) -> None:
    patient = clinic.patient()

    for _ in range(4):
        expect(attempt(clinic, patient.email), 401)
    clinic.login(patient.email)
    for _ in range(4):
        expect(attempt(clinic, patient.email), 401)
    clinic.login(patient.email)


def test_an_unknown_email_is_answered_exactly_like_a_known_one(clinic: Clinic) -> None:
    patient = clinic.patient()

    def answers(email: str) -> list[tuple[int, str | None, Any]]:
        responses = [attempt(clinic, email) for _ in range(8)]
        return [(r.status_code, r.headers.get("retry-after"), r.json()) for r in responses]

    assert answers(unique_email("nobody")) == answers(patient.email)


def test_one_client_address_is_refused_after_many_failures_across_accounts(clinic_with: Any) -> None:
    clinic = clinic_with(login_address_max_failures=10)
    patients = [clinic.patient() for _ in range(3)]

    for n in range(10):
        expect(attempt(clinic, patients[n % 3].email if n % 2 else unique_email("nobody")), 401)

    assert retry_after(attempt(clinic, patients[0].email, PASSWORD)) > 0
    assert retry_after(attempt(clinic, unique_email("nobody"))) > 0


@WITH_AND_WITHOUT_REDIS
def test_writes_per_user_are_limited_and_reads_are_not(clinic_with: Any, use_redis: bool) -> None:
    clinic = clinic_with(use_redis=use_redis, write_rate_limit="5/minute")
    patient, neighbour = clinic.patient(), clinic.patient()

    def edit(user: Any) -> httpx.Response:
        return clinic.client.patch(f"/patients/{user.profile_id}", headers=user.headers, json={"phone": "+44 20 7946 0002"})

    for _ in range(5):
        expect(edit(patient), 200)
    refused = expect(edit(patient), 429, "rate_limited")
    assert 1 <= int(edit(patient).headers["retry-after"]) <= 60
    assert refused["message"]
    for _ in range(10):
        expect(clinic.client.get(f"/patients/{patient.profile_id}", headers=patient.headers), 200)
    expect(edit(neighbour), 200)


def test_the_default_write_limit_is_120_a_minute(clinic_with: Any) -> None:
    clinic = clinic_with(write_rate_limit=Settings.model_fields["write_rate_limit"].default)
    patient = clinic.patient()

    answers = [
        clinic.client.patch(f"/patients/{patient.profile_id}", headers=patient.headers, json={"phone": f"+44 20 7946 {n:04d}"})
        for n in range(121)
    ]

    assert [a.status_code for a in answers] == [200] * 120 + [429]
