"""Patients: their own record, who else may read or change it, and staff and doctors' patient lists."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from e2e_helpers import Clinic, User, changes_nothing, expect, position, unique_email


def patch(clinic: Clinic, user: User, patient: User, **changes: Any) -> Any:
    return clinic.client.patch(f"/patients/{patient.profile_id}", headers=user.headers, json=changes)


def names(page: dict[str, Any]) -> list[str]:
    return [item["full_name"] for item in page["items"]]


def test_a_patient_reads_their_own_record_but_no_one_elses(clinic: Clinic) -> None:
    grace, alan = clinic.patient(full_name="Grace Hopper"), clinic.patient(full_name="Alan Turing")

    record = clinic.read(grace, f"/patients/{grace.profile_id}", after=clinic.latest())

    assert (record["id"], record["full_name"], record["date_of_birth"], record["phone"]) == (
        grace.profile_id,
        "Grace Hopper",
        "1986-12-09",
        "+44 20 7946 0001",
    )
    assert record["profile"]["sex"] == "female"
    other = expect(clinic.get(grace, f"/patients/{alan.profile_id}"), 404, "not_found")
    unknown = expect(clinic.get(grace, "/patients/00000000-0000-0000-0000-000000000000"), 404, "not_found")
    assert other["code"] == unknown["code"]


def test_a_doctor_reads_a_patient_only_once_the_patient_is_in_their_care(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, other_doctor = clinic.doctor(admin), clinic.doctor(admin)
    patient = clinic.patient()
    expect(clinic.get(doctor, f"/patients/{patient.profile_id}", after=clinic.latest()), 404)

    booked = clinic.booked(patient, doctor, clinic.at(2, 10))

    assert clinic.read(doctor, f"/patients/{patient.profile_id}", after=position(booked))["id"] == patient.profile_id
    expect(clinic.get(other_doctor, f"/patients/{patient.profile_id}"), 404)


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_admins_and_auditors_read_any_patient(clinic: Clinic, role: str) -> None:
    admin = clinic.admin()
    reader = admin if role == "admin" else clinic.staff(admin, role)
    patient = clinic.patient(full_name="Ada Lovelace")

    assert clinic.read(reader, f"/patients/{patient.profile_id}", after=clinic.latest())["full_name"] == "Ada Lovelace"


def test_a_patient_changes_their_own_profile(clinic: Clinic) -> None:
    patient = clinic.patient(full_name="Grace Hopper")
    address = {"line1": "1 Navy Way", "city": "Arlington", "postal_code": "22202", "country": "US"}

    answer = expect(
        patch(clinic, patient, patient, phone="+1 703 555 0100", address=address, allergies=["penicillin"], blood_group="O-"),
        200,
    )

    record = clinic.read(patient, f"/patients/{patient.profile_id}", after=position(answer))
    assert record["full_name"] == "Grace Hopper" and record["phone"] == "+1 703 555 0100"
    assert record["profile"]["address"]["city"] == "Arlington"
    assert record["profile"]["allergies"] == ["penicillin"] and record["profile"]["blood_group"] == "O-"
    changes_nothing(clinic, lambda: patch(clinic, patient, patient, blood_group="O-"))


def test_an_admin_changes_a_patient_profile(clinic: Clinic) -> None:
    admin, patient = clinic.admin(), clinic.patient(full_name="Grace Hopper")

    answer = expect(patch(clinic, admin, patient, full_name="Grace Brewster Hopper"), 200)

    assert clinic.read(admin, f"/patients/{patient.profile_id}", after=position(answer))["full_name"] == "Grace Brewster Hopper"


def test_no_one_else_changes_a_patient_profile(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, patient, other = clinic.doctor(admin), clinic.patient(), clinic.patient()
    clinic.booked(patient, doctor, clinic.at(2, 10))

    expect(patch(clinic, other, patient, full_name="Someone Else"), 404, "not_found")
    expect(patch(clinic, doctor, patient, allergies=["latex"]), 403, "forbidden")
    expect(patch(clinic, clinic.staff(admin, "auditor"), patient, allergies=["latex"]), 403, "forbidden")
    expect(clinic.client.patch("/patients/00000000-0000-0000-0000-000000000000", headers=admin.headers, json={"phone": "+44 1234 5678"}), 404)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"date_of_birth": (date.today() + timedelta(days=2)).isoformat()}, "date_of_birth"),
        ({"phone": "call me"}, "phone"),
        ({"blood_group": "Z+"}, "blood_group"),
        ({"allergies": ["x" * 101]}, "allergies.0"),
        ({"address": {"line1": "1 Road"}}, "address.city"),
        ({"shoe_size": 42}, "shoe_size"),
    ],
    ids=["future-birth", "bad-phone", "bad-blood-group", "long-allergy", "partial-address", "unknown-field"],
)
def test_a_bad_profile_change_is_422_naming_the_field(clinic: Clinic, changes: dict[str, Any], field: str) -> None:
    patient = clinic.patient()

    expect(patch(clinic, patient, patient, **changes), 422, "invalid_request", field)


@pytest.mark.usefixtures("quiet_projector")
@pytest.mark.parametrize("field", ["full_name", "date_of_birth", "sex", "phone"])
def test_clearing_a_required_patient_field_is_422_and_the_patient_list_keeps_up(clinic: Clinic, field: str) -> None:
    patient = clinic.patient(full_name="Grace Hopper")

    expect(patch(clinic, patient, patient, **{field: None}), 422, field=field)
    answer = expect(patch(clinic, patient, patient, phone="+44 20 7946 0002"), 200)
    assert clinic.read(patient, f"/patients/{patient.profile_id}", after=position(answer))["phone"] == "+44 20 7946 0002"


def test_a_name_with_a_nul_byte_is_refused_or_kept_but_never_stops_the_read_models(
    request: pytest.FixtureRequest, clinic: Clinic
) -> None:
    admin = clinic.admin()
    email = unique_email("patient")

    response = clinic.register(email, full_name="Grace\x00Hopper")

    if response.status_code != 422:
        answer = expect(response, 201)
        patient = clinic.user(email)
        expect(clinic.get(admin, f"/patients/{patient.profile_id}", after=position(answer)), 200)


def test_admins_and_auditors_list_and_search_all_patients(clinic: Clinic) -> None:
    admin = clinic.admin()
    auditor = clinic.staff(admin, "auditor")
    for name in ("Grace Hopper", "Alan Turing", "Ada Lovelace"):
        clinic.patient(full_name=name)
    after = clinic.latest()

    assert names(clinic.read(admin, "/patients", after=after)) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert names(clinic.read(auditor, "/patients", name="a")) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert names(clinic.read(admin, "/patients", name="LOVE")) == ["Ada Lovelace"]
    page = clinic.read(admin, "/patients", page=2, page_size=2)
    assert (names(page), page["total"]) == (["Grace Hopper"], 3)


def test_patients_and_analysts_do_not_list_patients(clinic: Clinic) -> None:
    admin = clinic.admin()
    patient, analyst = clinic.patient(), clinic.staff(admin, "analyst")

    expect(clinic.get(patient, "/patients"), 403, "forbidden")
    expect(clinic.get(analyst, "/patients"), 403, "forbidden")


def test_a_doctor_lists_only_the_patients_in_their_care(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, other_doctor = clinic.doctor(admin), clinic.doctor(admin)
    grace, alan = clinic.patient(full_name="Grace Hopper"), clinic.patient(full_name="Alan Turing")
    clinic.patient(full_name="Ada Lovelace")
    clinic.booked(grace, doctor, clinic.at(2, 10))
    clinic.booked(grace, doctor, clinic.at(3, 10))
    clinic.booked(alan, other_doctor, clinic.at(2, 10))
    after = clinic.latest()

    mine = clinic.read(doctor, "/patients", after=after)

    assert (names(mine), mine["total"]) == (["Grace Hopper"], 1)
    assert names(clinic.read(other_doctor, "/patients")) == ["Alan Turing"]
    assert names(clinic.read(doctor, "/patients", name="alan")) == []
