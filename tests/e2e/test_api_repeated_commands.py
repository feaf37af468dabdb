"""A command repeated after it took effect changes nothing, yet still answers a position that ?after= reads at."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from e2e_helpers import ALL_DAY_EVERY_DAY, Clinic, User, changes_nothing, expect, iso, position

Send = Callable[[], httpx.Response]


def repeated(clinic: Clinic, send: Send) -> int:
    """Sends a command, then again: the repeat writes nothing and answers the log's position as it stands."""
    first = send()
    assert first.status_code in (200, 201), first.text
    again = changes_nothing(clinic, send)
    assert again["id"] == first.json()["id"]
    return position(again)


def post(clinic: Clinic, user: User, path: str, payload: dict[str, Any] | None = None) -> Send:
    return lambda: clinic.client.post(path, headers=user.headers, json=payload)


def caring_doctor(clinic: Clinic) -> tuple[User, User, User, str]:
    """An admin, a doctor caring for a patient (primary care) and the relationship's id."""
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()
    payload = {"doctor_id": doctor.profile_id, "kind": "primary_care", "reason": "registered with the practice"}
    started = expect(clinic.client.post(f"/patients/{patient.profile_id}/care-relationships", headers=admin.headers, json=payload), 201)
    return admin, doctor, patient, started["id"]


def walk_in(clinic: Clinic, doctor: User, patient: User) -> str:
    started = clinic.client.post("/consultations", headers=doctor.headers, json={"patient_id": patient.profile_id, "kind": "phone"})
    return expect(started, 201)["id"]


def test_starting_a_started_consultation(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()
    start = clinic.at(1, 10)
    booked = clinic.booked(patient, doctor, start)
    clinic.move_clock_to(start + timedelta(minutes=5))

    at = repeated(clinic, post(clinic, doctor, "/consultations", {"appointment_id": booked["id"], "kind": "in_person"}))

    assert clinic.read(doctor, f"/appointments/{booked['id']}", after=at)["status"] == "in_progress"


def test_booking_the_same_slot_twice(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()

    at = repeated(clinic, lambda: clinic.book(patient, doctor, clinic.at(2, 10)))

    assert clinic.read(patient, "/appointments", after=at)["total"] == 1


def test_confirming_and_cancelling_an_appointment_twice(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()
    booked = clinic.booked(patient, doctor, clinic.at(3, 10))

    confirmed = repeated(clinic, lambda: clinic.act(doctor, booked["id"], "confirm"))
    assert clinic.read(patient, f"/appointments/{booked['id']}", after=confirmed)["status"] == "confirmed"
    cancelled = repeated(clinic, lambda: clinic.act(patient, booked["id"], "cancel", reason="feeling better"))
    assert clinic.read(patient, f"/appointments/{booked['id']}", after=cancelled)["status"] == "cancelled"


def test_recording_the_same_complaint_twice(clinic: Clinic) -> None:
    _, doctor, patient, _ = caring_doctor(clinic)
    consultation_id = walk_in(clinic, doctor, patient)

    at = repeated(clinic, post(clinic, doctor, f"/consultations/{consultation_id}/complaint", {"text": "Cough for a week"}))

    assert clinic.read(doctor, f"/consultations/{consultation_id}", after=at)["chief_complaint"]["text"] == "Cough for a week"


def test_ending_a_relationship_twice(clinic: Clinic) -> None:
    admin, _, patient, relationship_id = caring_doctor(clinic)
    path = f"/patients/{patient.profile_id}/care-relationships"

    at = repeated(clinic, post(clinic, admin, f"{path}/{relationship_id}/end", {"reason": "Patient moved away"}))

    assert [r["active"] for r in clinic.read(admin, path, after=at)] == [False]


def test_checking_issuing_and_cancelling_a_prescription_twice(clinic: Clinic) -> None:
    admin, doctor, patient, _ = caring_doctor(clinic)
    consultation_id = walk_in(clinic, doctor, patient)
    item = {
        "item_id": "paracetamol", "medication": {"name": "Paracetamol", "strength": "500 mg", "form": "tablet"},
        "dose": "1 tablet", "route": "oral", "frequency": "twice_daily", "duration_days": 5, "quantity": 10,
    }
    written = expect(post(clinic, doctor, "/prescriptions", {"consultation_id": consultation_id, "items": [item]})(), 201)
    path = f"/prescriptions/{written['id']}"

    checked = repeated(clinic, post(clinic, doctor, f"{path}/check"))
    assert len(clinic.read(doctor, path, after=checked)["checks"]) == 1
    issued = repeated(clinic, post(clinic, doctor, f"{path}/issue"))
    assert clinic.read(doctor, path, after=issued)["status"] == "issued"
    cancelled = repeated(clinic, post(clinic, admin, f"{path}/cancel", {"reason": "Stopped the course."}))
    assert clinic.read(doctor, path, after=cancelled)["status"] == "cancelled"


def test_sweeps_with_nothing_to_do(clinic: Clinic) -> None:
    admin = clinic.admin()

    for sweep in ("recheck", "expire"):
        at = repeated(clinic, post(clinic, admin, f"/prescriptions/{sweep}"))
        assert clinic.read(admin, "/prescriptions", after=at)["total"] == 0


def test_the_same_profile_availability_and_leave_again(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()
    day = clinic.at(4, 0).date()
    doctor_path, patient_path = f"/doctors/{doctor.profile_id}", f"/patients/{patient.profile_id}"

    bio = repeated(clinic, lambda: clinic.client.patch(doctor_path, headers=doctor.headers, json={"bio": "Heart rhythms."}))
    assert clinic.read(patient, doctor_path, after=bio)["bio"] == "Heart rhythms."
    hours = repeated(clinic, lambda: clinic.client.put(f"{doctor_path}/availability", headers=doctor.headers, json=ALL_DAY_EVERY_DAY))
    assert clinic.read(patient, f"{doctor_path}/slots", after=hours, **{"from": iso(day)})
    leave = repeated(clinic, post(clinic, doctor, f"{doctor_path}/leave", {"day": iso(day), "reason": "conference"}))
    assert clinic.read(patient, f"{doctor_path}/slots", after=leave, **{"from": iso(day)}) == []
    blood = repeated(clinic, lambda: clinic.client.patch(patient_path, headers=patient.headers, json={"blood_group": "O-"}))
    assert clinic.read(patient, patient_path, after=blood)["profile"]["blood_group"] == "O-"


def test_disabling_an_account_and_giving_the_same_role_twice(clinic: Clinic) -> None:
    admin = clinic.admin()
    analyst, patient = clinic.staff(admin, "analyst"), clinic.patient()

    disabled = repeated(clinic, post(clinic, admin, f"/accounts/{patient.account_id}/disable", {"reason": "left the clinic"}))
    assert clinic.read(admin, f"/accounts/{patient.account_id}", after=disabled)["disabled"] is True
    role = repeated(clinic, post(clinic, admin, f"/accounts/{analyst.account_id}/role", {"role": "auditor", "reason": "reorganisation"}))
    assert clinic.read(admin, f"/accounts/{analyst.account_id}", after=role)["role"] == "auditor"
