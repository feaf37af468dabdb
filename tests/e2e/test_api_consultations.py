"""Consultations over HTTP: from booking to signed and amended record, walk-ins, attachments, access and search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from e2e_helpers import Clinic, User, expect, position
from infrastructure.blobs import sealed_blobs

PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)


@dataclass
class Visit:
    """A consultation started from an appointment, and everyone a test may need (all logged in before the
    fake clock moves: tokens are checked against the real time)."""

    admin: User
    doctor: User
    patient: User
    appointment_id: str
    consultation_id: str
    auditor: User
    analyst: User
    other_doctor: User
    other_patient: User


def post(clinic: Clinic, user: User, path: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
    return clinic.client.post(path, headers=user.headers, json=payload, **kwargs)


def record(clinic: Clinic, user: User, consultation_id: str, what: str, payload: dict[str, Any] | None = None) -> httpx.Response:
    return post(clinic, user, f"/consultations/{consultation_id}/{what}", payload)


def recorded(clinic: Clinic, user: User, consultation_id: str, what: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return expect(record(clinic, user, consultation_id, what, payload), 200)


def consultation(clinic: Clinic, user: User, consultation_id: str, **params: Any) -> dict[str, Any]:
    return clinic.read(user, f"/consultations/{consultation_id}", **params)


def upload(
    clinic: Clinic, user: User, consultation_id: str, content: bytes, content_type: str, kind: str = "lab_report", name: str = "report.pdf"
) -> httpx.Response:
    return clinic.client.post(
        f"/consultations/{consultation_id}/attachments",
        headers=user.headers,
        data={"kind": kind},
        files={"file": (name, content, content_type)},
    )


def open_visits(clinic: Clinic, count: int = 1) -> list[Visit]:
    """Consultations started by their doctors five minutes into booked slots, one doctor and patient each."""
    admin = clinic.admin()
    auditor, analyst = clinic.staff(admin, "auditor"), clinic.staff(admin, "analyst")
    other_doctor, other_patient = clinic.doctor(admin), clinic.patient()
    pairs = [(clinic.doctor(admin), clinic.patient(), clinic.at(1, 10 + n)) for n in range(count)]
    booked = [clinic.booked(patient, doctor, start)["id"] for doctor, patient, start in pairs]
    visits = []
    for (doctor, patient, start), appointment_id in zip(pairs, booked):
        clinic.move_clock_to(start + timedelta(minutes=5))
        started = expect(post(clinic, doctor, "/consultations", {"appointment_id": appointment_id, "kind": "in_person"}), 201)
        clinic.read(doctor, f"/appointments/{appointment_id}", after=position(started))
        visits.append(Visit(admin, doctor, patient, appointment_id, started["id"], auditor, analyst, other_doctor, other_patient))
    return visits


def open_visit(clinic: Clinic) -> Visit:
    return open_visits(clinic)[0]


def primary_care(clinic: Clinic, admin: User, doctor: User, patient: User) -> None:
    payload = {"doctor_id": doctor.profile_id, "kind": "primary_care", "reason": "registered with the practice"}
    expect(post(clinic, admin, f"/patients/{patient.profile_id}/care-relationships", payload), 201)


def walk_in(clinic: Clinic, admin: User, doctor: User, patient: User) -> str:
    primary_care(clinic, admin, doctor, patient)
    return expect(post(clinic, doctor, "/consultations", {"patient_id": patient.profile_id, "kind": "phone"}), 201)["id"]


def sign(clinic: Clinic, visit: Visit) -> Visit:
    recorded(clinic, visit.doctor, visit.consultation_id, "complaint", {"text": "Chest pain on exertion"})
    recorded(clinic, visit.doctor, visit.consultation_id, "diagnoses", {"code": "i20.9", "description": "Angina", "rank": "primary"})
    recorded(clinic, visit.doctor, visit.consultation_id, "sign")
    return visit


def signed_visit(clinic: Clinic) -> Visit:
    return sign(clinic, open_visit(clinic))


class TestFullFlow:
    def test_booking_to_signed_amended_record(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)
        doctor, cid = visit.doctor, visit.consultation_id
        assert clinic.read(doctor, f"/appointments/{visit.appointment_id}")["status"] == "in_progress"

        recorded(clinic, doctor, cid, "complaint", {"text": "Cough for a week"})
        recorded(clinic, doctor, cid, "symptoms", {"name": "cough", "onset": "2020-01-01", "severity": "moderate", "duration": "7 days"})
        recorded(clinic, doctor, cid, "vitals", {"systolic": 128, "diastolic": 82, "pulse": 230, "temperature": 37.9})
        recorded(clinic, doctor, cid, "diagnoses", {"code": "j069", "description": "Acute URTI", "rank": "primary"})
        recorded(clinic, doctor, cid, "notes", {"text": "Advised fluids and rest."})
        attached = expect(upload(clinic, doctor, cid, PDF, "application/pdf"), 201)
        recorded(clinic, doctor, cid, "follow-up", {"date": (clinic.clock.now.date() + timedelta(days=14)).isoformat(), "reason": "review"})
        signed = recorded(clinic, doctor, cid, "sign")

        view = consultation(clinic, doctor, cid)
        assert (view["status"], view["chief_complaint"]["text"], view["signed_by"]) == ("signed", "Cough for a week", doctor.profile_id)
        assert view["diagnoses"][0]["code"] == "J06.9"
        assert view["vital_signs"][0]["flags"] == {"pulse": "implausible"}
        assert view["notes"][0]["author_id"] == doctor.profile_id
        assert view["attachments"][0]["sha256"] == __import__("hashlib").sha256(PDF).hexdigest()
        appointment = clinic.read(doctor, f"/appointments/{visit.appointment_id}", after=position(signed))
        assert appointment["status"] == "completed"

        download = clinic.get(doctor, f"/consultations/{cid}/attachments/{attached['id']}")
        assert (download.status_code, download.content, download.headers["content-type"]) == (200, PDF, "application/pdf")

        vitals_entry = view["vital_signs"][0]["entry_id"]
        expect(record(clinic, doctor, cid, "notes", {"text": "late note"}), 409, "consultation_signed")
        amended = recorded(clinic, doctor, cid, "amendments", {"entry_id": vitals_entry, "changes": {"pulse": 82}, "reason": "typo: 82 not 230"})

        current = consultation(clinic, doctor, cid)
        original = consultation(clinic, doctor, cid, view="as_recorded")
        assert (current["vital_signs"][0]["pulse"], current["vital_signs"][0]["flags"]) == (82, {})
        assert (original["vital_signs"][0]["pulse"], original["vital_signs"][0]["flags"]) == (230, {"pulse": "implausible"})
        [amendment] = current["amendments"]
        assert (amendment["previous"]["pulse"], amendment["new"]["pulse"], amendment["after_signing"]) == (230, 82, True)

        listed = clinic.read(doctor, "/consultations", after=position(amended), patient_id=visit.patient.profile_id)
        assert [item["id"] for item in listed["items"]] == [cid]
        assert listed["items"][0] == current

    def test_starting_twice_is_the_same_consultation(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)

        again = expect(post(clinic, visit.doctor, "/consultations", {"appointment_id": visit.appointment_id}), 200)

        assert again["id"] == visit.consultation_id

    def test_follow_up_booking_by_the_patient(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)
        cid = visit.consultation_id
        expect(record(clinic, visit.patient, cid, "follow-up/book", {"start": clinic.at(10, 9).isoformat()}), 409, "no_follow_up")
        recorded(clinic, visit.doctor, cid, "follow-up", {"date": (clinic.clock.now.date() + timedelta(days=9)).isoformat(), "reason": "review"})

        booked = expect(record(clinic, visit.patient, cid, "follow-up/book", {"start": clinic.at(10, 9).isoformat()}), 201)

        appointment = clinic.read(visit.patient, f"/appointments/{booked['id']}", after=position(booked))
        assert (appointment["doctor_id"], appointment["patient_id"]) == (visit.doctor.profile_id, visit.patient.profile_id)
        assert consultation(clinic, visit.admin, cid)["follow_up_bookings"][0]["appointment_id"] == booked["id"]
        by_doctor = expect(record(clinic, visit.doctor, cid, "follow-up/book", {"start": clinic.at(11, 9).isoformat()}), 201)
        assert by_doctor["id"] != booked["id"]
        expect(record(clinic, visit.auditor, cid, "follow-up/book", {"start": clinic.at(12, 9).isoformat()}), 403, "forbidden")


class TestWalkIn:
    def test_a_treating_doctor_starts_a_walk_in(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()

        cid = walk_in(clinic, admin, doctor, patient)

        view = consultation(clinic, doctor, cid)
        assert (view["appointment_id"], view["kind"], view["status"], view["patient_id"]) == (None, "phone", "open", patient.profile_id)

    def test_a_doctor_without_relationship_cannot_start_a_walk_in(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()

        expect(post(clinic, doctor, "/consultations", {"patient_id": patient.profile_id}), 404, "not_found")
        expect(post(clinic, admin, "/consultations", {"patient_id": patient.profile_id}), 403, "forbidden")
        expect(post(clinic, patient, "/consultations", {"patient_id": patient.profile_id}), 403, "forbidden")


class TestErrors:
    def test_without_a_token_is_401(self, clinic: Clinic) -> None:
        assert clinic.client.get("/consultations").status_code == 401
        assert clinic.client.post("/consultations", json={"patient_id": "x"}).status_code == 401

    def test_validation_is_422_with_the_field(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)
        doctor, cid = visit.doctor, visit.consultation_id

        expect(post(clinic, doctor, "/consultations", {}), 422, "invalid_request")
        expect(record(clinic, doctor, cid, "vitals", {"pulse": 0}), 422, "impossible_vital_sign", "pulse")
        expect(record(clinic, doctor, cid, "vitals", {"systolic": 80, "diastolic": 90}), 422, "impossible_vital_sign", "diastolic")
        expect(record(clinic, doctor, cid, "vitals", {"temperature": 50}), 422, "impossible_vital_sign", "temperature")
        expect(record(clinic, doctor, cid, "vitals", {}), 422, field="vital_signs")
        expect(record(clinic, doctor, cid, "diagnoses", {"code": "123", "description": "x"}), 422, "invalid_request", "code")
        expect(record(clinic, doctor, cid, "symptoms", {"name": "x", "severity": "awful"}), 422, field="severity")
        expect(record(clinic, doctor, cid, "amendments", {"entry_id": "nope", "changes": {"text": "x"}, "reason": "typo"}), 422, "unknown_entry", "entry_id")

    def test_a_vital_sign_is_a_number_not_a_boolean(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)
        doctor, cid = visit.doctor, visit.consultation_id
        recorded(clinic, doctor, cid, "vitals", {"weight": 70})
        entry = consultation(clinic, doctor, cid)["vital_signs"][0]["entry_id"]

        expect(record(clinic, doctor, cid, "vitals", {"weight": True}), 422, field="weight")
        refused = expect(record(clinic, doctor, cid, "amendments", {"entry_id": entry, "changes": {"weight": True}, "reason": "scale"}), 422)
        assert any(error["field"].startswith("body.changes.weight") for error in refused["errors"]), refused

        assert [v["weight"] for v in consultation(clinic, doctor, cid)["vital_signs"]] == [70]

    def test_rule_conflicts_are_409(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)
        doctor, cid = visit.doctor, visit.consultation_id

        expect(record(clinic, doctor, cid, "sign"), 409, "chief_complaint_missing")
        recorded(clinic, doctor, cid, "diagnoses", {"code": "I10", "description": "Hypertension", "rank": "primary"})
        expect(record(clinic, doctor, cid, "diagnoses", {"code": "E11", "description": "Diabetes", "rank": "primary"}), 409, "primary_diagnosis_exists")
        recorded(clinic, doctor, cid, "complaint", {"text": "Headache"})
        expect(record(clinic, doctor, cid, "complaint", {"text": "Dizziness"}), 409, "complaint_already_recorded")

    def test_others_who_may_read_get_403_strangers_404(self, clinic: Clinic) -> None:
        visit = signed_visit(clinic)
        cid = visit.consultation_id
        for user in (visit.patient, visit.admin, visit.auditor):
            expect(record(clinic, user, cid, "notes", {"text": "x"}), 403, "forbidden")
        for user in (visit.other_doctor, visit.analyst, visit.other_patient):
            expect(record(clinic, user, cid, "notes", {"text": "x"}), 404, "not_found")
            expect(clinic.get(user, f"/consultations/{cid}"), 404, "not_found")
        expect(clinic.get(visit.doctor, "/consultations/no-such-id"), 404, "not_found")

    def test_admins_see_the_administrative_view_only(self, clinic: Clinic) -> None:
        visit = signed_visit(clinic)

        view = consultation(clinic, visit.admin, visit.consultation_id)

        assert view["view"] == "administrative"
        assert {"chief_complaint", "diagnoses", "notes", "vital_signs", "attachments", "symptoms"}.isdisjoint(view)
        assert (view["status"], view["doctor_id"]) == ("signed", visit.doctor.profile_id)
        assert consultation(clinic, visit.patient, visit.consultation_id)["chief_complaint"]["text"] == "Chest pain on exertion"


class TestAttachments:
    def test_too_large_wrong_type_and_mismatch_are_refused(self, clinic_with) -> None:
        clinic = clinic_with(attachment_max_bytes=100)
        visit = open_visit(clinic)
        doctor, cid = visit.doctor, visit.consultation_id

        expect(upload(clinic, doctor, cid, PDF + bytes(100), "application/pdf"), 422, "attachment_too_large", "file")
        expect(upload(clinic, doctor, cid, b"\x00\x01binary\xff", "application/octet-stream"), 422, "attachment_type_refused", "file")
        expect(upload(clinic, doctor, cid, PDF, "image/png", name="x.png"), 422, "attachment_type_refused", "file")
        expect(upload(clinic, doctor, cid, PDF, "application/pdf", kind="photo"), 422, "attachment_type_refused", "file")
        expect(upload(clinic, doctor, cid, PNG, "image/png", kind="photo", name="rash.png"), 201)

    def test_a_file_name_with_control_or_formatting_characters_is_refused(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)
        doctor, cid = visit.doctor, visit.consultation_id

        for name in ("scan\u202egnp.pdf", "scan\u200b.pdf", "scan\x7f.pdf", "scan\u2028.pdf"):
            expect(upload(clinic, doctor, cid, PDF, "application/pdf", name=name), 422, field="file")
        expect(upload(clinic, doctor, cid, PDF, "application/pdf", name="Röntgenbefund 2026.pdf"), 201)
        assert [a["filename"] for a in consultation(clinic, doctor, cid, after=clinic.latest())["attachments"]] == ["Röntgenbefund 2026.pdf"]

    def test_a_repeated_form_field_is_refused_not_half_taken(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)
        path = f"/consultations/{visit.consultation_id}/attachments"
        two_files = [("file", ("a.pdf", PDF, "application/pdf")), ("file", ("rash.png", PNG, "image/png"))]

        expect(clinic.client.post(path, headers=visit.doctor.headers, data={"kind": "scan"}, files=two_files), 422, field="file")
        one_file = {"file": ("a.pdf", PDF, "application/pdf")}
        expect(clinic.client.post(path, headers=visit.doctor.headers, data={"kind": ["scan", "photo"]}, files=one_file), 422, field="kind")

        assert consultation(clinic, visit.doctor, visit.consultation_id)["attachments"] == []

    def test_a_tampered_blob_is_refused_on_download(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)
        attached = expect(upload(clinic, visit.doctor, visit.consultation_id, b"Potassium 4.1 mmol/L\n", "text/plain"), 201)
        with clinic.medledger.write_engine.begin() as conn:
            conn.execute(update(sealed_blobs).values(content=b"Potassium 9.9 mmol/L\n"))

        response = clinic.get(visit.doctor, f"/consultations/{visit.consultation_id}/attachments/{attached['id']}")

        expect(response, 409, "attachment_integrity_failed")

    def test_admins_and_strangers_cannot_download(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)
        attached = expect(upload(clinic, visit.doctor, visit.consultation_id, PDF, "application/pdf"), 201)
        path = f"/consultations/{visit.consultation_id}/attachments/{attached['id']}"

        expect(clinic.get(visit.admin, path), 404)
        expect(clinic.get(visit.other_patient, path), 404)
        assert clinic.get(visit.patient, path).content == PDF


class TestSearch:
    def test_filters_never_leak_foreign_records(self, clinic: Clinic) -> None:
        mine, theirs = (sign(clinic, visit) for visit in open_visits(clinic, 2))
        latest = clinic.latest()
        analyst, auditor = mine.analyst, mine.auditor

        def ids(user: User, **params: Any) -> set[str]:
            return {item["id"] for item in clinic.read(user, "/consultations", after=latest, **params)["items"]}

        assert ids(mine.patient) == {mine.consultation_id}
        assert ids(mine.patient, patient_id=theirs.patient.profile_id) == set()
        assert ids(mine.patient, diagnosis_code="I20") == {mine.consultation_id}
        assert ids(mine.doctor) == {mine.consultation_id}
        assert ids(mine.doctor, patient_id=theirs.patient.profile_id) == set()
        assert ids(mine.doctor, doctor_id=theirs.doctor.profile_id) == set()
        assert ids(auditor, diagnosis_code="I20.9") >= {mine.consultation_id, theirs.consultation_id}
        assert ids(auditor, diagnosis_code="I21") & {mine.consultation_id, theirs.consultation_id} == set()
        assert ids(auditor, doctor_id=theirs.doctor.profile_id, status="signed") == {theirs.consultation_id}
        assert ids(auditor, doctor_id=theirs.doctor.profile_id, kind="video") == set()
        admin_items = clinic.read(mine.admin, "/consultations", doctor_id=mine.doctor.profile_id)["items"]
        assert [(i["id"], i["view"]) for i in admin_items] == [(mine.consultation_id, "administrative")]
        assert "chief_complaint" not in admin_items[0]
        expect(clinic.get(mine.admin, "/consultations", diagnosis_code="I20"), 403, "forbidden")
        expect(clinic.get(analyst, "/consultations"), 403, "forbidden")
        expect(clinic.get(auditor, "/consultations", diagnosis_code="20"), 422, field="diagnosis_code")

    def test_a_code_finds_its_subcodes(self, clinic: Clinic) -> None:
        visit = open_visit(clinic)
        recorded(clinic, visit.doctor, visit.consultation_id, "diagnoses", {"code": "E11.65", "description": "T2DM with hyperglycaemia", "rank": "primary"})
        latest = clinic.latest()

        def found(code: str) -> bool:
            items = clinic.read(visit.auditor, "/consultations", after=latest, diagnosis_code=code)["items"]
            return visit.consultation_id in {item["id"] for item in items}

        assert [found(code) for code in ("E11", "E11.6", "E11.65")] == [True, True, True]
        assert [found(code) for code in ("E11.5", "E11.651", "E12")] == [False, False, False]

    def test_date_range(self, clinic: Clinic) -> None:
        visit = signed_visit(clinic)
        started = consultation(clinic, visit.doctor, visit.consultation_id)["started_at"]
        latest = clinic.latest()

        def count(**params: Any) -> int:
            return clinic.read(visit.patient, "/consultations", after=latest, **params)["total"]

        assert count(**{"from": started}) == 1
        assert count(to=started) == 0


@pytest.mark.parametrize("what", ["complaint", "notes"])
def test_an_amendment_before_signing_is_kept_too(clinic: Clinic, what: str) -> None:
    visit = open_visit(clinic)
    recorded(clinic, visit.doctor, visit.consultation_id, what, {"text": "Frist draft"})
    view = consultation(clinic, visit.doctor, visit.consultation_id)
    entry = view["chief_complaint"] if what == "complaint" else view["notes"][0]

    recorded(clinic, visit.doctor, visit.consultation_id, "amendments", {"entry_id": entry["entry_id"], "changes": {"text": "First draft"}, "reason": "spelling"})

    current = consultation(clinic, visit.doctor, visit.consultation_id)
    original = consultation(clinic, visit.doctor, visit.consultation_id, view="as_recorded")
    pick = (lambda v: v["chief_complaint"]["text"]) if what == "complaint" else (lambda v: v["notes"][0]["text"])
    assert (pick(current), pick(original), current["amendments"][0]["after_signing"]) == ("First draft", "Frist draft", False)
