"""Strict input: a number is not a date, a key given twice is refused, and human text carries no hidden characters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from e2e_helpers import (
    PASSWORD,
    Clinic,
    User,
    expect,
    iso,
    patient_profile,
    unique_email,
)

FUTURE_EPOCH_SECONDS = 4_102_444_800  # 2100-01-01T00:00:00Z: a number that would be a valid future start


def raw_json(clinic: Clinic, method: str, path: str, text: str, user: User | None = None) -> Any:
    headers = {"content-type": "application/json", **(user.headers if user else {})}
    return clinic.client.request(method, path, content=text.encode(), headers=headers)


# A number is not a date


@pytest.mark.parametrize("value", [0, 1, 631152000, 1.5, True])
def test_a_number_is_not_a_date_of_birth_at_registration(clinic: Clinic, value: Any) -> None:
    expect(clinic.register(date_of_birth=value), 422, "invalid_request", "date_of_birth")


def test_a_number_is_not_a_date_of_birth_in_a_profile_change_and_nothing_changes(clinic: Clinic) -> None:
    patient = clinic.patient()
    path = f"/patients/{patient.profile_id}"
    expect(clinic.client.patch(path, headers=patient.headers, json={"date_of_birth": 0}), 422, "invalid_request", "date_of_birth")
    assert clinic.read(patient, path, after=clinic.latest())["date_of_birth"] == "1986-12-09"


@pytest.mark.parametrize("value", [FUTURE_EPOCH_SECONDS, str(FUTURE_EPOCH_SECONDS), "4102444800.5"])
def test_a_number_is_not_the_start_of_a_booking(clinic: Clinic, value: Any) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    patient = clinic.patient()
    payload = {"doctor_id": doctor.profile_id, "start": value}
    expect(clinic.client.post("/appointments", headers=patient.headers, json=payload), 422, "invalid_request", "start")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/patients", {"date_of_birth": "0"}, "date_of_birth"),
        ("/patients", {"date_of_birth": "631152000"}, "date_of_birth"),
        ("/appointments", {"to": "0.5"}, "to"),
        ("/appointments", {"from": "1700000000"}, "from"),
        ("/consultations", {"from": "0"}, "from"),
        ("/prescriptions", {"to": "1e3"}, "to"),
        ("/doctors", {"available_on": "0"}, "available_on"),
    ],
)
def test_a_number_is_not_a_date_in_a_query(clinic: Clinic, path: str, params: dict[str, str], field: str) -> None:
    admin = clinic.admin()
    expect(clinic.get(admin, path, **params), 422, "invalid_request", field)


def test_a_number_is_not_a_day_of_free_slots(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    expect(clinic.get(admin, f"/doctors/{doctor.profile_id}/slots", **{"from": "0"}), 422, "invalid_request", "from")


def test_dates_and_moments_written_as_iso_8601_are_still_accepted(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    patient = clinic.patient()
    clinic.booked(patient, doctor, clinic.at(2, 10))
    found = clinic.read(admin, "/appointments", after=clinic.latest(), **{"from": iso(clinic.at(1, 0)), "to": iso(clinic.at(3, 0))})
    assert found["total"] == 1
    assert clinic.read(admin, "/patients", date_of_birth="1986-12-09")["total"] >= 1


# A key given twice


def test_a_role_given_twice_is_422_naming_the_key_and_no_account_is_made(clinic: Clinic) -> None:
    admin = clinic.admin()
    email = unique_email("twice")
    text = f'{{"email": "{email}", "password": "{PASSWORD}", "role": "analyst", "role": "admin"}}'
    answer = expect(raw_json(clinic, "POST", "/accounts", text, admin), 422, "duplicate_key", "role")
    assert "role" in answer["message"]
    expect(clinic.client.post("/auth/login", json={"email": email, "password": PASSWORD}), 401)


def test_a_key_given_twice_deep_in_a_body_is_refused(clinic: Clinic) -> None:
    profile = json.dumps(patient_profile())[:-1] + ', "full_name": "Someone Else"}'
    text = f'{{"email": "{unique_email("patient")}", "password": "{PASSWORD}", "profile": {profile}}}'
    expect(raw_json(clinic, "POST", "/auth/register", text), 422, "duplicate_key", "profile.full_name")


def test_a_key_given_twice_in_a_profile_change_changes_nothing(clinic: Clinic) -> None:
    patient = clinic.patient()
    path = f"/patients/{patient.profile_id}"
    text = '{"phone": "+44 20 7946 0002", "phone": "+44 20 7946 0003"}'
    expect(raw_json(clinic, "PATCH", path, text, patient), 422, "duplicate_key", "phone")
    assert clinic.read(patient, path, after=clinic.latest())["phone"] == "+44 20 7946 0001"


def test_the_same_key_in_two_different_objects_is_not_a_duplicate(clinic: Clinic) -> None:
    payload = {
        "email": unique_email("patient"),
        "password": PASSWORD,
        "profile": patient_profile(
            emergency_contact={"name": "Ada", "relationship": "sister", "phone": "+44 20 7946 0009"},
            insurance={"provider": "Ada Mutual", "policy_number": "P-1"},
        ),
    }
    expect(raw_json(clinic, "POST", "/auth/register", json.dumps(payload)), 201)


# Human text


HIDDEN = {
    "right-to-left override": "Grace\u202eHopper",
    "left-to-right isolate": "Grace \u2066Hopper",
    "right-to-left mark": "Grace\u200fHopper",
    "arabic letter mark": "Grace\u061cHopper",
    "zero-width space": "Grace\u200bHopper",
    "zero-width joiner": "Gr\u200dace Hopper",
    "byte order mark": "\ufeffGrace Hopper",
    "soft hyphen": "Grace Hop\u00adper",
    "only combining marks": "\u0301\u0308\u0327",
    "line break in a name": "Grace\nHopper",
    "escape character": "Grace\x1b[31mHopper",
}


@pytest.mark.parametrize("name", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_person_name_with_hidden_characters_is_refused_at_registration(clinic: Clinic, name: str) -> None:
    expect(clinic.register(full_name=name), 422, field="full_name")


@pytest.mark.parametrize("name", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_doctor_name_with_hidden_characters_is_refused(clinic: Clinic, name: str) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    answer = clinic.client.patch(f"/doctors/{doctor.profile_id}", headers=doctor.headers, json={"name": name})
    expect(answer, 422, field="name")


FREE_TEXT = [
    ("address", lambda v: {"address": {"line1": v, "city": "London", "postal_code": "N1", "country": "UK"}}, "line1"),
    ("emergency contact", lambda v: {"emergency_contact": {"name": v, "relationship": "sister", "phone": "+44 20 7946 0009"}}, "name"),
    ("allergy", lambda v: {"allergies": [v]}, "allergies.0"),
]


@pytest.mark.parametrize(("what", "changes", "field"), FREE_TEXT, ids=[f[0] for f in FREE_TEXT])
@pytest.mark.parametrize("hidden", ["Penicillin\u202e", "Peni\u200bcillin", "\u0301\u0301"], ids=["bidi", "zero-width", "combining"])
def test_free_text_in_a_profile_with_hidden_characters_is_refused(clinic: Clinic, what: str, changes: Any, field: str, hidden: str) -> None:
    patient = clinic.patient()
    answer = clinic.client.patch(f"/patients/{patient.profile_id}", headers=patient.headers, json=changes(hidden))
    expect(answer, 422, field=field)


@pytest.mark.parametrize("reason", ["changed my mind\u202e", "changed\u200b my mind", "\u0301\u0301\u0301\u0301"])
def test_a_cancellation_reason_with_hidden_characters_is_refused_and_the_booking_stands(clinic: Clinic, reason: str) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    patient = clinic.patient()
    booking = clinic.booked(patient, doctor, clinic.at(3, 10))
    expect(clinic.act(patient, booking["id"], "cancel", reason=reason), 422, field="reason")
    assert clinic.read(patient, f"/appointments/{booking['id']}", after=clinic.latest())["status"] == "booked"


def test_a_name_is_stored_in_its_composed_form(clinic: Clinic) -> None:
    patient = clinic.patient(full_name="Jose\u0301 Nun\u0303ez")
    assert clinic.read(patient, f"/patients/{patient.profile_id}", after=clinic.latest())["full_name"] == "Jos\u00e9 Nu\u00f1ez"


def test_names_in_other_scripts_and_marks_on_letters_are_accepted(clinic: Clinic) -> None:
    for name in ("Nguyễn Thị Minh Khai", "محمد عبد الله", "שרה כהן", "田中 太郎", "Zoë O'Brien-Łukasiewicz"):
        patient = clinic.patient(full_name=name)
        assert clinic.read(patient, f"/patients/{patient.profile_id}", after=clinic.latest())["full_name"] == name
