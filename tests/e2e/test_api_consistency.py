"""Read-your-writes with ?after=, Idempotency-Key replays, and correlation ids carried into the stored events."""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import uuid4

import pytest

from e2e_helpers import PASSWORD, Clinic, expect, iso, patient_profile, position, unique_email


def stored_causes(clinic: Clinic, correlation_id: str) -> dict[str, dict[str, str]]:
    """The cause of every stored event recorded under this correlation id, by event topic."""
    store = clinic.medledger.store.app
    notifications = store.recorder.select_notifications(start=1, limit=10_000)
    causes: dict[str, dict[str, str]] = {}
    for notification in notifications:
        cause = json.loads(store.mapper.open(notification).state).get("cause")  # a patient's events are sealed
        if cause and cause["correlation_id"] == correlation_id:
            causes[notification.topic] = cause
    return causes


class TestReadYourWrites:
    def test_a_query_after_a_commands_position_sees_that_command(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()

        for hour in range(8, 18):
            booked = clinic.booked(patient, doctor, clinic.at(2, hour))
            record = clinic.read(patient, f"/appointments/{booked['id']}", after=position(booked))
            assert record["status"] == "booked"
            cancelled = expect(clinic.act(patient, booked["id"], "cancel", reason="changed plans"), 200)
            assert clinic.read(doctor, f"/appointments/{booked['id']}", after=position(cancelled))["status"] == "cancelled"

    def test_every_read_model_waits_for_the_position(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        email = unique_email("auditor")

        created = expect(clinic.create_account(admin, "auditor", email), 201)
        assert clinic.read(admin, f"/accounts/{created['id']}", after=position(created))["email"] == email

        registered = expect(clinic.register(full_name="Katherine Johnson"), 201)
        assert clinic.read(admin, "/patients", after=position(registered), name="katherine")["total"] == 1

        doctor = clinic.doctor(admin, availability=None)
        changed = expect(clinic.client.patch(f"/doctors/{doctor.profile_id}", headers=doctor.headers, json={"bio": "Orbits."}), 200)
        assert clinic.read(admin, f"/doctors/{doctor.profile_id}", after=position(changed))["bio"] == "Orbits."

    def test_a_read_model_that_does_not_reach_the_position_in_time_is_503(self, clinic_with: Any) -> None:
        clinic = clinic_with(read_wait_seconds=0.2)
        patient = clinic.patient()
        clinic.medledger.projection.stop()
        written = position(expect(clinic.register(), 201))

        began = time.monotonic()
        response = clinic.get(patient, "/appointments", after=written)

        answer = expect(response, 503, "read_model_behind")
        assert str(written) in answer["message"]
        assert response.headers["retry-after"] == "1"
        assert time.monotonic() - began < 2
        expect(clinic.get(patient, f"/patients/{patient.profile_id}", after=written), 503, "read_model_behind")
        expect(clinic.get(patient, "/doctors", after=written), 503, "read_model_behind")
        expect(clinic.get(patient, "/appointments", after=0), 200)
        expect(clinic.get(patient, "/appointments", after=-1), 422, "invalid_request", "after")

    def test_a_position_beyond_the_end_of_the_log_is_422_at_once(self, clinic_with: Any) -> None:
        clinic = clinic_with(read_wait_seconds=5)
        patient = clinic.patient()

        began = time.monotonic()
        for path in ("/appointments", f"/patients/{patient.profile_id}", "/doctors"):
            expect(clinic.get(patient, path, after=clinic.latest() + 1), 422, "position_not_in_log", "after")
            expect(clinic.get(patient, path, after=10**12), 422, "position_not_in_log", "after")
        assert time.monotonic() - began < 4
        expect(clinic.get(patient, "/appointments", after=clinic.latest()), 200)


@pytest.mark.parametrize("use_redis", [False, True], ids=["sql-keys", "redis-keys"])
class TestIdempotencyKeys:
    def test_a_repeated_key_and_body_replays_the_first_answer_and_books_once(self, clinic_with: Any, use_redis: bool) -> None:
        clinic = clinic_with(use_redis=use_redis)
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        headers = {**patient.headers, "Idempotency-Key": uuid4().hex}
        payload = {"doctor_id": doctor.profile_id, "start": iso(clinic.at(2, 10))}

        first = clinic.client.post("/appointments", headers=headers, json=payload)
        second = clinic.client.post("/appointments", headers=headers, json=payload)

        answer = expect(first, 201)
        assert "idempotent-replayed" not in first.headers
        assert second.status_code == 201 and second.json() == answer
        assert second.headers["idempotent-replayed"] == "true"
        listed = clinic.read(admin, "/appointments", after=position(answer), doctor_id=doctor.profile_id)
        assert [item["id"] for item in listed["items"]] == [answer["id"]]

    def test_a_key_reused_for_another_body_is_422(self, clinic_with: Any, use_redis: bool) -> None:
        clinic = clinic_with(use_redis=use_redis)
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        headers = {**patient.headers, "Idempotency-Key": uuid4().hex}
        expect(clinic.client.post("/appointments", headers=headers, json={"doctor_id": doctor.profile_id, "start": iso(clinic.at(2, 10))}), 201)

        response = clinic.client.post("/appointments", headers=headers, json={"doctor_id": doctor.profile_id, "start": iso(clinic.at(2, 11))})

        expect(response, 422, "idempotency_key_reused", "Idempotency-Key")
        assert clinic.read(admin, "/appointments", after=clinic.latest())["total"] == 1

    def test_a_refusal_is_replayed_too(self, clinic_with: Any, use_redis: bool) -> None:
        clinic = clinic_with(use_redis=use_redis)
        admin = clinic.admin()
        doctor, first, second = clinic.doctor(admin), clinic.patient(), clinic.patient()
        start = clinic.at(2, 10)
        clinic.booked(first, doctor, start)
        headers = {**second.headers, "Idempotency-Key": uuid4().hex}
        payload = {"doctor_id": doctor.profile_id, "start": iso(start)}

        refused = expect(clinic.client.post("/appointments", headers=headers, json=payload), 409, "slot_taken")
        replayed = clinic.client.post("/appointments", headers=headers, json=payload)

        assert replayed.status_code == 409 and replayed.json() == refused
        assert replayed.headers["idempotent-replayed"] == "true"

    def test_keys_belong_to_their_caller(self, clinic_with: Any, use_redis: bool) -> None:
        clinic = clinic_with(use_redis=use_redis)
        admin = clinic.admin()
        doctor, grace, alan = clinic.doctor(admin), clinic.patient(), clinic.patient()
        key = uuid4().hex
        payload = {"doctor_id": doctor.profile_id, "start": iso(clinic.at(2, 10))}

        mine = expect(clinic.client.post("/appointments", headers={**grace.headers, "Idempotency-Key": key}, json=payload), 201)
        theirs = clinic.client.post("/appointments", headers={**alan.headers, "Idempotency-Key": key}, json=payload)

        expect(theirs, 409, "slot_taken")
        assert "idempotent-replayed" not in theirs.headers
        assert theirs.json()["current"]["bookings"][0]["appointment_id"] == mine["id"]

    def test_a_keyed_command_without_a_body_replays(self, clinic_with: Any, use_redis: bool) -> None:
        clinic = clinic_with(use_redis=use_redis)
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        booked = clinic.booked(patient, doctor, clinic.at(2, 10))
        headers = {**doctor.headers, "Idempotency-Key": uuid4().hex}

        first = expect(clinic.client.post(f"/appointments/{booked['id']}/confirm", headers=headers), 200)
        second = clinic.client.post(f"/appointments/{booked['id']}/confirm", headers=headers)

        assert second.status_code == 200 and second.json() == first and first["position"] is not None
        assert second.headers["idempotent-replayed"] == "true"


class TestCorrelationIds:
    def test_a_given_correlation_id_is_echoed_and_stored_with_the_actor_in_every_event(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        correlation_id = f"e2e-{uuid4().hex}"

        response = clinic.client.post(
            "/appointments",
            headers={**patient.headers, "X-Correlation-ID": correlation_id},
            json={"doctor_id": doctor.profile_id, "start": iso(clinic.at(2, 10))},
        )

        expect(response, 201)
        assert response.headers["x-correlation-id"] == correlation_id
        causes = stored_causes(clinic, correlation_id)
        assert {"medledger:Appointment.Booked.v1", "medledger:DoctorCalendar.SlotBooked.v1", "medledger:PatientAgenda.Held.v1"} <= set(causes)
        assert all(
            cause == {"user_id": patient.account_id, "role": "patient", "correlation_id": correlation_id} for cause in causes.values()
        )

    def test_an_admins_command_records_the_admin(self, clinic: Clinic) -> None:
        admin, patient = clinic.admin(), clinic.patient()
        correlation_id = f"e2e-{uuid4().hex}"

        response = clinic.client.post(
            f"/accounts/{patient.account_id}/disable",
            headers={**admin.headers, "X-Correlation-ID": correlation_id},
            json={"reason": "duplicate account"},
        )

        expect(response, 200)
        assert stored_causes(clinic, correlation_id) == {
            "medledger:Account.Disabled.v1": {"user_id": admin.account_id, "role": "admin", "correlation_id": correlation_id}
        }

    def test_a_registration_is_caused_by_the_new_patient(self, clinic: Clinic) -> None:
        correlation_id = f"e2e-{uuid4().hex}"
        email = unique_email("patient")

        response = clinic.client.post(
            "/auth/register",
            headers={"X-Correlation-ID": correlation_id},
            json={"email": email, "password": PASSWORD, "profile": patient_profile()},
        )

        account_id = expect(response, 201)["id"]
        assert response.headers["x-correlation-id"] == correlation_id
        causes = stored_causes(clinic, correlation_id)
        assert set(causes) == {"medledger:Account.Registered.v1", "medledger:Patient.Registered.v1"}
        assert all(cause == {"user_id": account_id, "role": "patient", "correlation_id": correlation_id} for cause in causes.values())

    @pytest.mark.parametrize("given", [None, "", "has spaces", "x" * 101, "semi;colon"], ids=["none", "empty", "spaces", "too-long", "semicolon"])
    def test_a_missing_or_unusable_correlation_id_is_replaced_by_a_fresh_one(self, clinic: Clinic, given: str | None) -> None:
        headers = {} if given is None else {"X-Correlation-ID": given}

        first = clinic.client.get("/health", headers=headers)
        second = clinic.client.get("/health", headers=headers)

        assert first.status_code == 200
        assert first.headers["x-correlation-id"] != given
        assert len(first.headers["x-correlation-id"]) == 32
        assert first.headers["x-correlation-id"] != second.headers["x-correlation-id"]
        refused = clinic.client.get("/auth/me", headers=headers)
        assert refused.status_code == 401 and len(refused.headers["x-correlation-id"]) == 32
