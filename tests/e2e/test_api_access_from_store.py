"""Access through an appointment follows the event store at once, however far behind the read models are."""

from __future__ import annotations

from datetime import timedelta

import httpx

from e2e_helpers import Clinic, User, expect


def projected(clinic: Clinic, admin: User, patient: User) -> None:
    """Waits until the patient's profile is in the read model (the chart and profile show it from there)."""
    clinic.read(admin, f"/patients/{patient.profile_id}", after=clinic.latest())


def chart(clinic: Clinic, doctor: User, patient: User) -> int:
    response = clinic.get(doctor, f"/patients/{patient.profile_id}/chart")
    assert response.status_code in (200, 404), response.text
    return response.status_code


def profile(clinic: Clinic, doctor: User, patient: User) -> int:
    response = clinic.get(doctor, f"/patients/{patient.profile_id}")
    assert response.status_code in (200, 404), response.text
    return response.status_code


def walk_in(clinic: Clinic, doctor: User, patient: User) -> httpx.Response:
    return clinic.client.post("/consultations", headers=doctor.headers, json={"patient_id": patient.profile_id, "kind": "phone"})


def test_a_booking_opens_the_record_at_once_and_a_cancellation_closes_it_at_once(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()
    projected(clinic, admin, patient)
    clinic.medledger.projection.stop()

    booked = clinic.booked(patient, doctor, clinic.at(2, 10))

    assert (chart(clinic, doctor, patient), profile(clinic, doctor, patient)) == (200, 200)
    expect(walk_in(clinic, doctor, patient), 201)

    expect(clinic.act(patient, booked["id"], "cancel", reason="Feeling better"), 200)

    assert (chart(clinic, doctor, patient), profile(clinic, doctor, patient)) == (404, 404)
    expect(walk_in(clinic, doctor, patient), 404, "not_found")


def test_a_no_show_closes_the_record_at_once_and_correcting_it_to_completed_reopens_it(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()
    start = clinic.at(1, 10)
    booked = clinic.booked(patient, doctor, start)
    projected(clinic, admin, patient)
    clinic.medledger.projection.stop()
    clinic.move_clock_to(start + timedelta(minutes=40))
    assert chart(clinic, doctor, patient) == 200

    expect(clinic.act(doctor, booked["id"], "no-show"), 200)
    assert chart(clinic, doctor, patient) == 404

    expect(clinic.act(admin, booked["id"], "status-correction", status="completed", reason="Arrived late, was seen"), 200)
    assert chart(clinic, doctor, patient) == 200

    clinic.move_clock_to(start + timedelta(minutes=30, hours=24))
    assert chart(clinic, doctor, patient) == 404


def test_a_doctor_who_was_never_booked_sees_nothing_while_the_read_models_lag(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, stranger, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
    projected(clinic, admin, patient)
    clinic.medledger.projection.stop()

    clinic.booked(patient, doctor, clinic.at(2, 10))

    assert (chart(clinic, stranger, patient), profile(clinic, stranger, patient)) == (404, 404)
    expect(walk_in(clinic, stranger, patient), 404, "not_found")
