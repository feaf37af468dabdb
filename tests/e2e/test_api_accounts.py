"""Accounts for admins: creating every role, listing, disabling and enabling, and exchanging staff roles."""

from __future__ import annotations

from typing import Any

import pytest

from e2e_helpers import Clinic, User, changes_nothing, doctor_profile, expect, patient_profile, position, unique_email


def disable(clinic: Clinic, admin: User, account_id: str, **payload: Any) -> Any:
    return clinic.client.post(f"/accounts/{account_id}/disable", headers=admin.headers, json=payload)


def enable(clinic: Clinic, admin: User, account_id: str, **payload: Any) -> Any:
    return clinic.client.post(f"/accounts/{account_id}/enable", headers=admin.headers, json=payload)


def change_role(clinic: Clinic, admin: User, account_id: str, role: str, reason: str = "reorganisation") -> Any:
    return clinic.client.post(f"/accounts/{account_id}/role", headers=admin.headers, json={"role": role, "reason": reason})


@pytest.mark.parametrize(
    "role, profile",
    [
        ("doctor", {"doctor_profile": doctor_profile()}),
        ("patient", {"patient_profile": patient_profile()}),
        ("auditor", {}),
        ("analyst", {}),
        ("admin", {}),
    ],
    ids=["doctor", "patient", "auditor", "analyst", "admin"],
)
def test_an_admin_creates_accounts_of_every_role(clinic: Clinic, role: str, profile: dict[str, Any]) -> None:
    admin = clinic.admin()
    email = unique_email(role)

    answer = expect(clinic.create_account(admin, role, email, **profile), 201)

    account = clinic.read(admin, f"/accounts/{answer['id']}", after=position(answer))
    assert account["email"] == email and account["role"] == role and account["disabled"] is False
    assert (account["profile_id"] is not None) == (role in ("doctor", "patient"))
    assert clinic.user(email).role == role


@pytest.mark.parametrize("role", ["doctor", "patient"])
def test_a_doctor_or_patient_account_without_its_profile_is_422(clinic: Clinic, role: str) -> None:
    admin = clinic.admin()

    expect(clinic.create_account(admin, role), 422, field=f"{role}_profile")


def test_an_account_with_the_profile_of_another_role_is_422(clinic: Clinic) -> None:
    admin = clinic.admin()

    expect(clinic.create_account(admin, "doctor", doctor_profile=doctor_profile(), patient_profile=patient_profile()), 422)


def test_an_email_already_registered_is_409(clinic: Clinic) -> None:
    admin, patient = clinic.admin(), clinic.patient()

    expect(clinic.create_account(admin, "auditor", patient.email), 409, "email_taken")


@pytest.mark.parametrize("role", ["patient", "doctor", "auditor", "analyst"])
def test_only_admins_create_and_list_accounts(clinic: Clinic, role: str) -> None:
    admin = clinic.admin()
    caller = clinic.member(admin, role)

    expect(clinic.create_account(caller, "admin"), 403, "forbidden")
    expect(clinic.get(caller, "/accounts"), 403)
    expect(disable(clinic, caller, admin.account_id, reason="takeover"), 403)
    expect(change_role(clinic, caller, caller.account_id, "admin"), 403)


def test_an_account_holder_reads_their_own_account_but_not_others(clinic: Clinic) -> None:
    admin, patient = clinic.admin(), clinic.patient()

    assert clinic.read(patient, f"/accounts/{patient.account_id}", after=clinic.latest())["email"] == patient.email
    expect(clinic.get(patient, f"/accounts/{admin.account_id}"), 403)
    expect(clinic.get(admin, "/accounts/00000000-0000-0000-0000-000000000000"), 404)


def test_accounts_are_listed_by_role(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    auditor = clinic.staff(admin, "auditor")
    analyst = clinic.staff(admin, "analyst")
    patient = clinic.patient()
    after = clinic.latest()

    def emails(**params: Any) -> list[str]:
        page = clinic.read(admin, "/accounts", after=after, **params)
        assert page["total"] == len(page["items"])
        return sorted(item["email"] for item in page["items"])

    assert emails(role="doctor") == [doctor.email]
    assert emails(role="auditor") == [auditor.email]
    assert emails(role="analyst") == [analyst.email]
    assert emails(role="patient") == [patient.email]
    assert emails(role="admin") == [admin.email]
    assert len(emails()) == 5
    expect(clinic.get(admin, "/accounts", role="superuser"), 422, field="role")


def test_disable_and_enable_are_idempotent_and_listed(clinic: Clinic) -> None:
    admin, patient = clinic.admin(), clinic.patient()

    first = expect(disable(clinic, admin, patient.account_id, reason="moved away"), 200)
    again = changes_nothing(clinic, lambda: disable(clinic, admin, patient.account_id, reason="moved away"))

    assert first["id"] == again["id"] == patient.account_id
    disabled = clinic.read(admin, "/accounts", after=position(first), disabled="true")
    assert [item["id"] for item in disabled["items"]] == [patient.account_id]

    enabled = expect(enable(clinic, admin, patient.account_id, reason="came back"), 200)
    changes_nothing(clinic, lambda: enable(clinic, admin, patient.account_id, reason="came back"))
    assert clinic.read(admin, f"/accounts/{patient.account_id}", after=position(enabled))["disabled"] is False
    assert clinic.read(admin, "/accounts", after=position(enabled), disabled="true")["total"] == 0


@pytest.mark.parametrize("action", ["disable", "enable"])
@pytest.mark.parametrize("payload", [{}, {"reason": ""}, {"reason": "no"}], ids=["missing", "empty", "too-short"])
def test_disable_and_enable_need_a_reason(clinic: Clinic, action: str, payload: dict[str, Any]) -> None:
    admin, patient = clinic.admin(), clinic.patient()

    response = clinic.client.post(f"/accounts/{patient.account_id}/{action}", headers=admin.headers, json=payload)

    expect(response, 422, "invalid_request", "reason")


def test_an_admin_cannot_disable_themself_and_unknown_accounts_are_404(clinic: Clinic) -> None:
    admin = clinic.admin()

    expect(disable(clinic, admin, admin.account_id, reason="tired"), 403)
    expect(disable(clinic, admin, "00000000-0000-0000-0000-000000000000", reason="ghost"), 404)


def test_staff_roles_are_exchanged(clinic: Clinic) -> None:
    admin = clinic.admin()
    analyst = clinic.staff(admin, "analyst")

    answer = expect(change_role(clinic, admin, analyst.account_id, "auditor"), 200)

    assert clinic.read(admin, f"/accounts/{analyst.account_id}", after=position(answer))["role"] == "auditor"
    assert clinic.user(analyst.email).role == "auditor"
    changes_nothing(clinic, lambda: change_role(clinic, admin, analyst.account_id, "auditor"))
    expect(change_role(clinic, admin, analyst.account_id, "admin"), 200)
    assert clinic.user(analyst.email).role == "admin"


@pytest.mark.parametrize("holder", ["patient", "doctor"])
def test_patient_and_doctor_accounts_keep_their_role(clinic: Clinic, holder: str) -> None:
    admin = clinic.admin()
    account = clinic.member(admin, holder)

    expect(change_role(clinic, admin, account.account_id, "admin"), 409, "role_change_not_allowed")
    expect(change_role(clinic, admin, account.account_id, "auditor"), 409, "role_change_not_allowed")
    assert clinic.user(account.email).role == holder


def test_a_staff_account_does_not_become_a_patient(clinic: Clinic) -> None:
    admin = clinic.admin()
    auditor = clinic.staff(admin, "auditor")

    expect(change_role(clinic, admin, auditor.account_id, "patient"), 409, "role_change_not_allowed")
    expect(change_role(clinic, admin, auditor.account_id, "wizard"), 422, field="role")


@pytest.mark.parametrize("use_redis", [False, True], ids=["without-redis", "with-redis"])
def test_a_role_change_retires_the_tokens_that_carry_the_old_role(clinic_with: Any, use_redis: bool) -> None:
    clinic = clinic_with(use_redis=use_redis)
    admin = clinic.admin()
    auditor = clinic.staff(admin, "auditor")
    expect(clinic.client.get("/auth/me", headers=auditor.headers), 200)

    expect(change_role(clinic, admin, auditor.account_id, "analyst"), 200)

    expect(clinic.client.get("/auth/me", headers=auditor.headers), 401, "session_revoked")
    assert clinic.user(auditor.email).role == "analyst"
    expect(change_role(clinic, admin, auditor.account_id, "auditor", "back again"), 200)
    expect(clinic.client.get("/auth/me", headers=clinic.user(auditor.email).headers), 200)
