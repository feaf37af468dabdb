"""The patient chart over HTTP: what it shows after two consultations and two prescriptions, and to whom."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from e2e_helpers import AMLODIPINE, PNG, Clinic, User, expect, iso, position, posted as post


def consult(
    clinic: Clinic, doctor: User, patient: User, entries: list[tuple[str, dict[str, Any]]], photo: bytes | None = None
) -> str:
    """A walk-in consultation with the given entries (and a photo), signed; answers its id."""
    started = post(clinic, doctor, "/consultations", {"patient_id": patient.profile_id, "kind": "in_person"}, 201)
    for what, payload in entries:
        post(clinic, doctor, f"/consultations/{started['id']}/{what}", payload)
    if photo is not None:
        files = {"file": ("rash.png", photo, "image/png")}
        upload = clinic.client.post(
            f"/consultations/{started['id']}/attachments", headers=doctor.headers, data={"kind": "photo"}, files=files
        )
        expect(upload, 201)
    post(clinic, doctor, f"/consultations/{started['id']}/sign")
    return started["id"]


class Cast:
    def __init__(self, clinic: Clinic) -> None:
        self.admin = clinic.admin()
        self.doctor, self.stranger = clinic.doctor(self.admin), clinic.doctor(self.admin)
        self.patient = clinic.patient(allergies=["penicillin"], blood_group="O+")
        self.other_patient = clinic.patient()
        self.auditor, self.analyst = clinic.staff(self.admin, "auditor"), clinic.staff(self.admin, "analyst")


@pytest.fixture
def chart_world(clinic: Clinic) -> tuple[Cast, dict[str, Any]]:
    """Two signed consultations a day apart, one issued and one cancelled prescription."""
    cast = Cast(clinic)
    relationship = {"doctor_id": cast.doctor.profile_id, "kind": "primary_care", "reason": "registered with the practice"}
    post(clinic, cast.admin, f"/patients/{cast.patient.profile_id}/care-relationships", relationship, 201)
    first = consult(
        clinic,
        cast.doctor,
        cast.patient,
        [
            ("complaint", {"text": "Headaches"}),
            ("vitals", {"systolic": 150, "diastolic": 95, "pulse": 80}),
            ("diagnoses", {"code": "I10", "description": "Essential hypertension", "rank": "primary", "status": "confirmed"}),
            ("diagnoses", {"code": "J06.9", "description": "Upper respiratory infection", "rank": "secondary", "status": "provisional"}),
            ("notes", {"text": "Start amlodipine."}),
        ],
    )
    clinic.clock.advance(days=1)
    second = consult(
        clinic,
        cast.doctor,
        cast.patient,
        [
            ("complaint", {"text": "Review"}),
            ("vitals", {"systolic": 140, "diastolic": 90, "pulse": 80}),
            ("diagnoses", {"code": "J06.9", "description": "Upper respiratory infection", "rank": "primary", "status": "resolved"}),
            ("notes", {"text": "Blood pressure improving."}),
        ],
        photo=PNG,
    )
    issued = post(clinic, cast.doctor, "/prescriptions", {"consultation_id": second, "items": [AMLODIPINE]}, 201)
    post(clinic, cast.doctor, f"/prescriptions/{issued['id']}/issue")
    cancelled = post(clinic, cast.doctor, "/prescriptions", {"consultation_id": second, "items": [AMLODIPINE]}, 201)
    last = post(clinic, cast.doctor, f"/prescriptions/{cancelled['id']}/cancel", {"reason": "written twice"})
    ids = {"first": first, "second": second, "issued": issued["id"], "after": position(last)}
    return cast, ids


def chart(clinic: Clinic, user: User, patient: User, after: int, **params: Any) -> httpx.Response:
    return clinic.get(user, f"/patients/{patient.profile_id}/chart", after=after, **params)


def test_the_chart_shows_demographics_allergies_problems_prescriptions_vitals_and_timeline(clinic, chart_world):
    cast, ids = chart_world

    view = expect(chart(clinic, cast.doctor, cast.patient, ids["after"]), 200)

    assert view["allergies"] == ["penicillin"]
    assert view["demographics"]["full_name"] == "Grace Hopper"
    assert view["demographics"]["blood_group"] == "O+"
    assert "allergies" not in view["demographics"]
    assert [(p["code"], p["status"], p["consultation_id"]) for p in view["active_problems"]] == [("I10", "confirmed", ids["first"])]
    assert [p["id"] for p in view["active_prescriptions"]] == [ids["issued"]]
    systolic = view["vitals"]["systolic"]
    assert (systolic["latest"]["value"], systolic["change"], systolic["trend"], systolic["unit"]) == (140, -10, "down", "mmHg")
    assert [r["value"] for r in systolic["readings"]] == [140, 150]
    assert view["vitals"]["pulse"]["trend"] == "steady"
    assert "temperature" not in view["vitals"]
    timeline = view["timeline"]
    assert (timeline["total"], [c["id"] for c in timeline["items"]]) == (2, [ids["second"], ids["first"]])
    newest = timeline["items"][0]
    assert [n["text"] for n in newest["notes"]] == ["Blood pressure improving."]
    assert [(a["filename"], a["content_type"]) for a in newest["attachments"]] == [("rash.png", "image/png")]


def test_each_vital_sign_keeps_its_own_last_ten_readings(clinic):
    cast = Cast(clinic)
    relationship = {"doctor_id": cast.doctor.profile_id, "kind": "primary_care", "reason": "registered with the practice"}
    post(clinic, cast.admin, f"/patients/{cast.patient.profile_id}/care-relationships", relationship, 201)
    readings = [("vitals", {"height": 172, "measured_at": iso(clinic.clock.now - timedelta(hours=13))})]
    readings += [
        ("vitals", {"pulse": 60 + n, "measured_at": iso(clinic.clock.now - timedelta(hours=12 - n))}) for n in range(12)
    ]
    consult(clinic, cast.doctor, cast.patient, [("complaint", {"text": "Palpitations"}), *readings])

    vitals = expect(chart(clinic, cast.doctor, cast.patient, clinic.latest()), 200)["vitals"]

    assert [r["value"] for r in vitals["pulse"]["readings"]] == [71, 70, 69, 68, 67, 66, 65, 64, 63, 62]
    assert (vitals["pulse"]["change"], vitals["pulse"]["trend"]) == (1, "up")
    assert (vitals["height"]["latest"]["value"], vitals["height"]["change"]) == (172, None)


def test_the_timeline_is_paginated(clinic, chart_world):
    cast, ids = chart_world

    second_page = expect(chart(clinic, cast.patient, cast.patient, ids["after"], page=2, page_size=1), 200)["timeline"]

    assert (second_page["total"], second_page["page"], [c["id"] for c in second_page["items"]]) == (2, 2, [ids["first"]])


def test_the_patient_and_auditors_read_the_chart(clinic, chart_world):
    cast, ids = chart_world

    for reader in (cast.patient, cast.auditor):
        assert expect(chart(clinic, reader, cast.patient, ids["after"]), 200)["patient_id"] == cast.patient.profile_id


def test_the_chart_is_not_found_for_those_who_may_not_read_it(clinic, chart_world):
    cast, ids = chart_world

    for outsider in (cast.stranger, cast.other_patient, cast.admin, cast.analyst):
        expect(chart(clinic, outsider, cast.patient, ids["after"]), 404, "not_found")


def test_an_unknown_patient_has_no_chart(clinic, chart_world):
    cast, ids = chart_world

    expect(clinic.get(cast.auditor, "/patients/00000000-0000-4000-8000-000000000000/chart"), 404, "not_found")
    expect(clinic.get(cast.auditor, "/patients/not-a-patient/chart"), 404, "not_found")


def test_a_new_patient_has_an_empty_chart(clinic):
    patient = clinic.patient()

    view = expect(clinic.get(patient, f"/patients/{patient.profile_id}/chart", after=clinic.latest()), 200)

    assert (view["active_problems"], view["active_prescriptions"], view["vitals"]) == ([], [], {})
    assert (view["allergies"], view["timeline"]["total"], view["timeline"]["items"]) == ([], 0, [])


def test_the_chart_needs_a_token(clinic):
    patient = clinic.patient()

    expect(clinic.client.get(f"/patients/{patient.profile_id}/chart"), 401)


def test_a_doctor_who_breaks_the_glass_reads_the_chart_until_it_expires(clinic, chart_world):
    cast, ids = chart_world
    expect(chart(clinic, cast.stranger, cast.patient, ids["after"]), 404)

    grant = post(
        clinic, cast.stranger, f"/patients/{cast.patient.profile_id}/emergency-access",
        {"reason": "Unconscious in the emergency room", "minutes": 30}, 201,
    )
    assert expect(chart(clinic, cast.stranger, cast.patient, position(grant)), 200)["timeline"]["total"] == 2

    clinic.clock.advance(minutes=31)
    expect(chart(clinic, cast.stranger, cast.patient, position(grant)), 404)


def test_a_patient_id_in_capitals_reads_the_same_chart_and_reminders(clinic, chart_world):
    cast, ids = chart_world
    shouted = cast.patient.profile_id.upper()

    as_written = expect(chart(clinic, cast.doctor, cast.patient, ids["after"]), 200)
    as_shouted = expect(clinic.get(cast.doctor, f"/patients/{shouted}/chart", after=ids["after"]), 200)
    window = {"from": iso(clinic.clock.now - timedelta(days=2)), "to": iso(clinic.clock.now + timedelta(days=2))}
    reminders = expect(clinic.get(cast.patient, f"/patients/{cast.patient.profile_id}/reminders", **window), 200)

    assert as_shouted == as_written
    assert reminders != []
    assert expect(clinic.get(cast.patient, f"/patients/{shouted}/reminders", **window), 200) == reminders
