"""The chart as of two times over HTTP: as recorded by known_at, as clinically true at true_at; who may ask, and
that asking is in the read log."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from e2e_helpers import AMLODIPINE, Clinic, User, expect, posted as post


class Seen:
    """A patient seen once: a complaint, vital signs taken ten minutes before, a provisional diagnosis, signed,
    amlodipine issued; then the pulse corrected, and two days later the diagnosis resolved as of the day before."""

    def __init__(self, clinic: Clinic) -> None:
        self.clinic = clinic
        self.admin = clinic.admin()
        self.doctor = clinic.doctor(self.admin)
        self.patient, self.other_patient = clinic.patient(allergies=["penicillin"]), clinic.patient()
        self.auditor, self.analyst = clinic.staff(self.admin, "auditor"), clinic.staff(self.admin, "analyst")
        relationship = {"doctor_id": self.doctor.profile_id, "kind": "primary_care", "reason": "registered with the practice"}
        post(clinic, self.admin, f"/patients/{self.patient.profile_id}/care-relationships", relationship, 201)
        self.started_at = clinic.clock.now
        self.consultation = post(clinic, self.doctor, "/consultations", {"patient_id": self.patient.profile_id}, 201)["id"]
        self.measured_at = self.started_at - timedelta(minutes=10)
        self.record("complaint", {"text": "Chest pain on exertion"})
        self.record("vitals", {"pulse": 230, "measured_at": self.measured_at.isoformat()})
        self.record("diagnoses", {"code": "I20.9", "description": "Angina pectoris", "rank": "primary"})
        self.record("sign")
        prescription = post(clinic, self.doctor, "/prescriptions", {"consultation_id": self.consultation, "items": [AMLODIPINE]}, 201)
        post(clinic, self.doctor, f"/prescriptions/{prescription['id']}/issue")
        self.prescription = prescription["id"]
        self.signed_recorded_at = self.history()[-1]["recorded_at"]
        view = clinic.read(self.doctor, f"/consultations/{self.consultation}")
        self.amend(view["vital_signs"][0]["entry_id"], {"pulse": 82}, "typed 230 for 82")
        clinic.clock.advance(days=2)
        self.resolved_on = clinic.clock.now - timedelta(days=1)
        self.amend(view["diagnoses"][0]["entry_id"], {"status": "resolved"}, "settled with treatment", effective_at=self.resolved_on.isoformat())

    def record(self, what: str, payload: dict[str, Any] | None = None) -> None:
        post(self.clinic, self.doctor, f"/consultations/{self.consultation}/{what}", payload)

    def amend(self, entry_id: str, changes: dict[str, Any], reason: str, **extra: Any) -> None:
        self.record("amendments", {"entry_id": entry_id, "changes": changes, "reason": reason, **extra})

    def history(self) -> list[dict[str, Any]]:
        return self.clinic.read(self.auditor, f"/audit/records/{self.consultation}/history", page_size=100)["items"]

    def chart(self, user: User, **params: Any) -> dict[str, Any]:
        return self.clinic.read(user, f"/audit/patients/{self.patient.profile_id}/chart", **params)

    def reads_by(self, reader: User) -> list[dict[str, Any]]:
        return self.clinic.read(self.auditor, "/audit/reads", after=self.clinic.latest(), reader_id=reader.account_id, page_size=100)["items"]


@pytest.fixture
def seen(clinic: Clinic) -> Seen:
    return Seen(clinic)


def test_the_chart_as_recorded_by_one_moment_and_clinically_true_at_another(clinic: Clinic, seen: Seen) -> None:
    now = seen.chart(seen.auditor)
    known_before_amending = seen.chart(seen.auditor, known_at=seen.signed_recorded_at)
    true_before_it_resolved = seen.chart(seen.auditor, true_at=(seen.resolved_on - timedelta(hours=1)).isoformat())
    both = seen.chart(seen.auditor, known_at=seen.signed_recorded_at, true_at=clinic.clock.now.isoformat())

    assert (now["known_at"], now["true_at"], now["view"]) == (None, None, "clinical")
    assert now["vitals"]["pulse"]["latest"]["value"] == 82 and now["active_problems"] == []
    assert [p["id"] for p in now["active_prescriptions"]] == [seen.prescription] and now["allergies"] == ["penicillin"]
    assert now["timeline"]["total"] == 1 and now["timeline"]["items"][0]["id"] == seen.consultation

    assert known_before_amending["known_at"] == seen.signed_recorded_at
    assert known_before_amending["vitals"]["pulse"]["latest"]["value"] == 230
    assert [p["status"] for p in known_before_amending["active_problems"]] == ["provisional"]
    assert known_before_amending["timeline"]["items"][0]["amendments"] == []

    assert true_before_it_resolved["vitals"]["pulse"]["latest"]["value"] == 82  # a correction holds from the measurement
    [problem] = true_before_it_resolved["active_problems"]
    assert (problem["code"], problem["status"], datetime.fromisoformat(problem["true_since"])) == ("I20.9", "provisional", seen.started_at)
    pulse = true_before_it_resolved["vitals"]["pulse"]["latest"]
    assert datetime.fromisoformat(pulse["true_since"]) == seen.measured_at and pulse["known_since"] > seen.signed_recorded_at

    assert both["true_at"] == clinic.clock.now.isoformat()
    assert both["vitals"]["pulse"]["latest"]["value"] == 230 and [p["status"] for p in both["active_problems"]] == ["provisional"]
    [diagnosis] = now["timeline"]["items"][0]["diagnoses"]
    assert (diagnosis["status"], datetime.fromisoformat(diagnosis["true_since"])) == ("resolved", seen.resolved_on)


def test_before_the_consultation_began_it_is_not_in_the_chart_but_what_was_true_already_is(clinic: Clinic, seen: Seen) -> None:
    between = seen.chart(seen.auditor, true_at=(seen.started_at - timedelta(minutes=5)).isoformat())

    assert between["timeline"] == {"items": [], "total": 0, "page": 1, "page_size": 20}
    assert between["active_problems"] == [] and between["vitals"]["pulse"]["latest"]["value"] == 82
    registered = seen.clinic.read(seen.auditor, f"/audit/records/{seen.patient.profile_id}/history")["items"][0]["recorded_at"]
    too_early = (datetime.fromisoformat(registered) - timedelta(microseconds=1)).isoformat()
    expect(clinic.get(seen.auditor, f"/audit/patients/{seen.patient.profile_id}/chart", known_at=too_early), 404, "not_found")


def test_the_patient_reads_their_own_chart_as_of_and_the_reads_are_logged(clinic: Clinic, seen: Seen) -> None:
    own = seen.chart(seen.patient, known_at=seen.signed_recorded_at)

    assert own == seen.chart(seen.auditor, known_at=seen.signed_recorded_at)
    by_patient = [r for r in seen.reads_by(seen.patient) if r["action"] == "chart as of"]
    by_auditor = [r for r in seen.reads_by(seen.auditor) if r["action"] == "chart as of"]
    assert [(r["shown"], r["record_id"], r["basis"]) for r in by_patient] == [("chart", seen.patient.profile_id, "self")]
    assert {(r["shown"], r["record_id"], r["basis"]) for r in by_auditor} == {("chart", seen.patient.profile_id, "audit")}


def test_admins_get_the_administrative_chart_without_clinical_content(clinic: Clinic, seen: Seen) -> None:
    answer = clinic.get(seen.admin, f"/audit/patients/{seen.patient.profile_id}/chart")

    chart = expect(answer, 200)
    assert chart["view"] == "administrative" and chart["active_problems"] == [] and chart["vitals"] == {}
    assert chart["timeline"]["items"][0]["view"] == "administrative"
    for clinical in ("Chest pain", "Angina", "typed", '"pulse"'):
        assert clinical not in answer.text, clinical
    assert not re.search(r"[:\[,]230[,\]}]", answer.text), "the pulse of 230 is a JSON value of the answer"  # not in an id or a time
    assert [p["id"] for p in chart["active_prescriptions"]] == [seen.prescription]
    logged = [(r["shown"], r["record_id"], r["basis"]) for r in seen.reads_by(seen.admin) if r["action"] == "chart as of"]
    assert logged == [("prescription", seen.prescription, "admin")]


def test_no_one_else_learns_anything(clinic: Clinic, seen: Seen) -> None:
    path = f"/audit/patients/{seen.patient.profile_id}/chart"

    expect(clinic.get(seen.other_patient, path), 404, "not_found")
    expect(clinic.get(seen.doctor, path), 403, "forbidden")
    expect(clinic.get(seen.analyst, path), 403, "forbidden")
    expect(clinic.client.get(path), 401, "not_authenticated")
    expect(clinic.get(seen.auditor, f"/audit/patients/{uuid4()}/chart"), 404, "not_found")
    expect(clinic.get(seen.auditor, "/audit/patients/not-an-id/chart"), 404, "not_found")
    other = clinic.read(seen.auditor, f"/audit/patients/{seen.other_patient.profile_id}/chart")
    assert other["timeline"]["total"] == 0 and other["active_prescriptions"] == [] and other["appointments"] == []
    assert "Chest pain" not in json.dumps(other) and other["care"]["relationships"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({"known_at": "2026-03-03T10:15:00"}, "known_at"), ({"true_at": "0.5"}, "true_at"), ({"page": 0}, "page")],
)
def test_times_without_an_offset_or_not_times_are_refused(clinic: Clinic, params: dict[str, Any], field: str) -> None:
    admin = clinic.admin()
    auditor, patient = clinic.staff(admin, "auditor"), clinic.patient()

    expect(clinic.get(auditor, f"/audit/patients/{patient.profile_id}/chart", **params), 422, field=field)


def test_only_a_change_of_a_symptom_or_diagnosis_takes_an_effective_time(clinic: Clinic, seen: Seen) -> None:
    view = clinic.read(seen.doctor, f"/consultations/{seen.consultation}")
    path = f"/consultations/{seen.consultation}/amendments"

    def amended(entry_id: str, changes: dict[str, Any], effective_at: datetime) -> Any:
        amendment = {"entry_id": entry_id, "changes": changes, "reason": "on review", "effective_at": effective_at.isoformat()}
        return clinic.client.post(path, headers=seen.doctor.headers, json=amendment)

    expect(amended(view["chief_complaint"]["entry_id"], {"text": "Chest pain"}, clinic.clock.now), 422, "invalid_effective_time", "effective_at")
    diagnosis = view["diagnoses"][0]["entry_id"]
    expect(amended(diagnosis, {"status": "confirmed"}, clinic.clock.now + timedelta(minutes=1)), 422, "invalid_effective_time", "effective_at")
    expect(amended(diagnosis, {"status": "confirmed"}, seen.started_at - timedelta(minutes=1)), 422, "invalid_effective_time", "effective_at")
