"""Erasure over HTTP: an admin requests it with a legal ground, a second admin approves; the patient's data then
reads as erased everywhere (records, chart, history, read models, attachments, kept answers, logins) while every
other patient's records still replay and the transparency log still verifies."""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.transparency import verify_store
from tests import billing_seed

from e2e_helpers import AMLODIPINE, PNG, Clinic, User, expect, posted as post

REQUEST = {"legal_basis": "consent_withdrawn", "reason": "The patient withdrew consent in writing on 1 December."}
APPROVAL = {"note": "No retention duty applies: no treatment was given, only a registration."}


class Cast:
    def __init__(self, clinic: Clinic) -> None:
        self.clinic = clinic
        self.admin, self.second_admin = clinic.admin(), clinic.admin()
        self.doctor = clinic.doctor(self.admin)
        self.patient, self.other = clinic.patient(full_name="Ada Lovelace"), clinic.patient(full_name="Mary Somerville")
        self.auditor = clinic.staff(self.admin, "auditor")
        self.records = {patient.profile_id: self.treat(patient, hour) for hour, patient in ((9, self.patient), (10, self.other))}

    def treat(self, patient: User, hour: int) -> dict[str, str]:
        relationship = {"doctor_id": self.doctor.profile_id, "kind": "primary_care", "reason": "registered with the practice"}
        post(self.clinic, self.admin, f"/patients/{patient.profile_id}/care-relationships", relationship, 201)
        consultation = post(self.clinic, self.doctor, "/consultations", {"patient_id": patient.profile_id, "kind": "in_person"}, 201)["id"]
        post(self.clinic, self.doctor, f"/consultations/{consultation}/complaint", {"text": "Persistent cough for three weeks"})
        expect(self.clinic.client.post(
            f"/consultations/{consultation}/attachments",
            headers=self.doctor.headers,
            data={"kind": "photo"},
            files={"file": ("chest.png", PNG, "image/png")},
        ), 201)
        prescription = post(self.clinic, self.doctor, "/prescriptions", {"consultation_id": consultation, "items": [AMLODIPINE]}, 201)["id"]
        appointment = self.clinic.booked(patient, self.doctor, self.clinic.at(3, hour))["id"]
        return {"consultation": consultation, "prescription": prescription, "appointment": appointment}

    def request(self, patient: User | None = None, by: User | None = None, payload: dict[str, Any] | None = None) -> Any:
        patient = patient or self.patient
        return self.clinic.client.post(f"/patients/{patient.profile_id}/erasure-requests", headers=(by or self.admin).headers, json=payload or REQUEST)

    def decide(self, decision: str, by: User, payload: dict[str, Any], patient: User | None = None) -> Any:
        patient = patient or self.patient
        return self.clinic.client.post(f"/patients/{patient.profile_id}/erasure/{decision}", headers=by.headers, json=payload)

    def erase(self) -> None:
        expect(self.request(), 201)
        expect(self.decide("approve", self.second_admin, APPROVAL), 200)


@pytest.fixture
def cast(clinic: Clinic) -> Cast:
    return Cast(clinic)


def test_a_request_waits_for_a_second_admin_and_erases_nothing_meanwhile(clinic: Clinic, cast: Cast) -> None:
    expect(cast.request(), 201)

    view = clinic.read(cast.auditor, f"/patients/{cast.patient.profile_id}/erasure")
    assert view["status"] == "pending" and view["key_destroyed"] is False
    (request,) = view["requests"]
    assert (request["legal_basis"], request["requested_by"], request["decision"]) == ("consent_withdrawn", cast.admin.account_id, None)
    clinic.read(cast.doctor, f"/patients/{cast.patient.profile_id}/chart", after=clinic.latest())
    listed = clinic.read(cast.admin, "/erasure-requests", after=clinic.latest(), status="pending")
    assert [item["patient_id"] for item in listed["items"]] == [cast.patient.profile_id]


def test_the_requesting_admin_cannot_approve_their_own_request(clinic: Clinic, cast: Cast) -> None:
    expect(cast.request(), 201)

    expect(cast.decide("approve", cast.admin, APPROVAL), 403, "second_admin_required")

    assert clinic.read(cast.auditor, f"/patients/{cast.patient.profile_id}/erasure")["status"] == "pending"
    clinic.read(cast.patient, f"/patients/{cast.patient.profile_id}/chart", after=clinic.latest())


def test_only_admins_request_and_decide(clinic: Clinic, cast: Cast) -> None:
    for user in (cast.doctor, cast.auditor, cast.patient):
        expect(cast.request(by=user), 403)
    expect(cast.request(), 201)
    for user in (cast.doctor, cast.auditor, cast.patient):
        expect(cast.decide("approve", user, APPROVAL), 403)
        expect(cast.decide("reject", user, {"reason": "Records must be kept for ten years."}), 403)
    expect(clinic.client.post(f"/patients/{cast.patient.profile_id}/erasure-requests", json=REQUEST), 401)
    expect(clinic.get(cast.doctor, f"/patients/{cast.patient.profile_id}/erasure"), 403)
    expect(clinic.get(cast.patient, "/erasure-requests"), 403)


def test_bad_requests_are_refused_with_the_field_and_change_nothing(clinic: Clinic, cast: Cast) -> None:
    expect(cast.request(payload={**REQUEST, "legal_basis": "because"}), 422, field="body.legal_basis")
    expect(cast.request(payload={**REQUEST, "reason": "short"}), 422, field="body.reason")
    expect(clinic.client.post("/patients/00000000-0000-4000-8000-000000000000/erasure-requests", headers=cast.admin.headers, json=REQUEST), 404)
    expect(clinic.get(cast.admin, f"/patients/{cast.patient.profile_id}/erasure"), 404)
    expect(cast.decide("approve", cast.second_admin, APPROVAL), 404)


def test_a_second_request_while_one_waits_is_a_conflict_and_a_rejection_allows_a_new_one(clinic: Clinic, cast: Cast) -> None:
    expect(cast.request(), 201)
    conflict = expect(cast.request(by=cast.second_admin), 409, "erasure_conflict")
    assert conflict["current"]["status"] == "pending"

    expect(cast.decide("reject", cast.second_admin, {"reason": "Treatment records must be kept for ten years."}), 200)
    expect(cast.decide("approve", cast.second_admin, APPROVAL), 409, "erasure_conflict")
    expect(cast.request(by=cast.second_admin), 201)

    view = clinic.read(cast.auditor, f"/patients/{cast.patient.profile_id}/erasure")
    assert [request["decision"] for request in view["requests"]] == [None, "rejected"]


def test_after_approval_the_patients_records_read_as_erased_everywhere(clinic: Clinic, cast: Cast) -> None:
    mine = cast.records[cast.patient.profile_id]
    consultation = clinic.read(cast.doctor, f"/consultations/{mine['consultation']}")
    attachment = consultation["attachments"][0]["attachment_id"]
    invoice = billing_seed.issued(clinic.medledger.store, billing_seed.drafted(cast.patient.profile_id, billing_seed.line("visit", "80.00")), clinic.clock.now)
    billing_seed.paid(clinic.medledger.store, invoice, "80.00", clinic.clock.now)
    assert clinic.read(cast.admin, "/invoices", after=clinic.latest(), patient_id=cast.patient.profile_id)["total"] == 1

    cast.erase()

    for path in (
        f"/patients/{cast.patient.profile_id}",
        f"/patients/{cast.patient.profile_id}/chart",
        f"/consultations/{mine['consultation']}",
        f"/consultations/{mine['consultation']}/attachments/{attachment}",
        f"/prescriptions/{mine['prescription']}",
        f"/appointments/{mine['appointment']}",
        f"/invoices/{invoice.id}",
        f"/patients/{cast.patient.profile_id}/statement",
    ):
        expect(clinic.get(cast.admin, path, after=clinic.latest()), 404)
    found = clinic.read(cast.admin, "/appointments", after=clinic.latest(), patient_id=cast.patient.profile_id)
    assert found["items"] == []
    assert clinic.read(cast.admin, "/invoices", patient_id=cast.patient.profile_id)["items"] == []
    assert cast.patient.profile_id not in clinic.client.get("/payments.csv", headers=cast.admin.headers).text
    expect(clinic.client.post("/auth/login", json={"email": cast.patient.email, "password": cast.patient.password}), 401)
    expect(clinic.client.get("/auth/me", headers=cast.patient.headers), 401)

    history = clinic.read(cast.auditor, f"/audit/records/{mine['consultation']}/history")
    assert history["items"] and all(row["erased"] and row["changes"] == [] and row["recorded_at"] is None for row in history["items"])
    assert "cough" not in str(history).lower()
    expect(clinic.get(cast.auditor, f"/audit/records/{mine['consultation']}/as-of"), 410, "erased")
    expect(clinic.get(cast.patient, f"/audit/records/{mine['consultation']}/history"), 401)
    expect(clinic.get(cast.auditor, f"/audit/patients/{cast.patient.profile_id}/report", **{"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}), 410, "erased")
    expect(clinic.get(cast.auditor, f"/audit/patients/{cast.patient.profile_id}/chart"), 410, "erased")
    doctors_work = clinic.read(cast.auditor, f"/audit/users/{cast.doctor.account_id}/report", after=clinic.latest(), page_size=100, **{"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})
    assert not [row for row in doctors_work["items"] if row["record_id"] in mine.values()]
    assert any("cough" in str(row).lower() for row in doctors_work["items"] if row["record_id"] == cast.records[cast.other.profile_id]["consultation"])

    view = clinic.read(cast.auditor, f"/patients/{cast.patient.profile_id}/erasure")
    assert view["status"] == "erased" and view["key_destroyed"] is True
    assert view["requests"][0]["decided_by"] == cast.second_admin.account_id


def logged(clinic: Clinic) -> int:
    """Appends the whole event log to the transparency tree; answers its size."""
    log = clinic.medledger.transparency
    while log.append(clinic.latest()):
        pass
    return clinic.latest()


def test_every_other_patients_records_still_replay_and_the_log_still_verifies(clinic: Clinic, cast: Cast) -> None:
    theirs = cast.records[cast.other.profile_id]
    before = logged(clinic)

    cast.erase()

    chart = clinic.read(cast.doctor, f"/patients/{cast.other.profile_id}/chart", after=clinic.latest())
    assert chart
    consultation = clinic.read(cast.doctor, f"/consultations/{theirs['consultation']}")
    expect(clinic.get(cast.doctor, f"/consultations/{theirs['consultation']}/attachments/{consultation['attachments'][0]['attachment_id']}"), 200)
    history = clinic.read(cast.auditor, f"/audit/records/{theirs['consultation']}/history")
    assert not any(row["erased"] for row in history["items"])
    assert clinic.read(cast.other, f"/patients/{cast.other.profile_id}")["full_name"] == "Mary Somerville"

    system = clinic.medledger
    logged(clinic)
    report = verify_store(system.transparency.read_events, system.write_engine, system.transparency.public_key)
    assert report.clean and report.events == clinic.latest() > before
    proof = clinic.read(cast.auditor, "/audit/log/proofs/inclusion", position=1, tree_size=before)
    assert proof["leaf_index"] == 0


def test_an_erased_patient_cannot_be_requested_again_nor_written_to(clinic: Clinic, cast: Cast) -> None:
    cast.erase()

    expect(cast.request(by=cast.second_admin), 409, "erasure_conflict")
    expect(clinic.book(cast.admin, cast.doctor, clinic.at(4, 10), patient_id=cast.patient.profile_id), 404)
    expect(clinic.client.post("/consultations", headers=cast.doctor.headers, json={"patient_id": cast.patient.profile_id, "kind": "in_person"}), 404)
