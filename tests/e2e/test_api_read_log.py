"""The read log over HTTP: every answer that shows clinical data is recorded with who, role, what, when and
the basis of access before it is given; the patient and auditors read it back, and reading it is logged too."""

from __future__ import annotations

from typing import Any

import pytest

from e2e_helpers import AMLODIPINE, PNG, Clinic, User, expect, posted as post


class Cast:
    def __init__(self, clinic: Clinic) -> None:
        self.clinic = clinic
        self.admin = clinic.admin()
        self.doctor, self.stranger = clinic.doctor(self.admin), clinic.doctor(self.admin)
        self.patient, self.other_patient = clinic.patient(), clinic.patient()
        self.auditor, self.analyst = clinic.staff(self.admin, "auditor"), clinic.staff(self.admin, "analyst")
        relationship = {"doctor_id": self.doctor.profile_id, "kind": "primary_care", "reason": "registered with the practice"}
        post(clinic, self.admin, f"/patients/{self.patient.profile_id}/care-relationships", relationship, 201)
        started = post(clinic, self.doctor, "/consultations", {"patient_id": self.patient.profile_id, "kind": "in_person"}, 201)
        self.consultation = started["id"]
        post(clinic, self.doctor, f"/consultations/{self.consultation}/complaint", {"text": "Headaches"})
        expect(clinic.client.post(
            f"/consultations/{self.consultation}/attachments",
            headers=self.doctor.headers,
            data={"kind": "photo"},
            files={"file": ("rash.png", PNG, "image/png")},
        ), 201)
        self.prescription = post(clinic, self.doctor, "/prescriptions", {"consultation_id": self.consultation, "items": [AMLODIPINE]}, 201)["id"]
        post(clinic, self.doctor, f"/prescriptions/{self.prescription}/issue")

    def log_of(self, user: User, patient: User | None = None) -> list[dict[str, Any]]:
        patient = patient or self.patient
        page = self.clinic.read(user, f"/patients/{patient.profile_id}/reads", after=self.clinic.latest(), page_size=100)
        return page["items"]

    def reads_by(self, reader: User) -> list[dict[str, Any]]:
        page = self.clinic.read(self.auditor, "/audit/reads", after=self.clinic.latest(), reader_id=reader.account_id, page_size=100)
        return page["items"]


@pytest.fixture
def cast(clinic: Clinic) -> Cast:
    return Cast(clinic)


def entries(items: list[dict[str, Any]], **wanted: Any) -> list[dict[str, Any]]:
    return [item for item in items if all(item[key] == value for key, value in wanted.items())]


def test_a_doctors_chart_read_is_in_the_patients_read_log_with_who_when_and_why(clinic: Clinic, cast: Cast) -> None:
    before = clinic.clock.now

    clinic.read(cast.doctor, f"/patients/{cast.patient.profile_id}/chart", after=clinic.latest())

    (read,) = entries(cast.log_of(cast.patient), shown="chart")
    assert read["reader_id"] == cast.doctor.account_id and read["reader_role"] == "doctor"
    assert (read["patient_id"], read["record_id"], read["basis"], read["emergency"]) == (
        cast.patient.profile_id,
        cast.patient.profile_id,
        "primary_care",
        False,
    )
    assert read["read_at"].startswith(before.date().isoformat()) and read["correlation_id"]


def test_every_kind_of_clinical_read_is_logged(clinic: Clinic, cast: Cast) -> None:
    consultation = clinic.read(cast.doctor, f"/consultations/{cast.consultation}")
    attachment_id = consultation["attachments"][0]["attachment_id"]
    expect(clinic.get(cast.doctor, f"/consultations/{cast.consultation}/attachments/{attachment_id}"), 200)
    clinic.read(cast.doctor, f"/prescriptions/{cast.prescription}", after=clinic.latest())
    found = clinic.read(cast.doctor, "/consultations", after=clinic.latest(), patient_id=cast.patient.profile_id)
    clinic.read(cast.doctor, "/prescriptions", after=clinic.latest(), patient_id=cast.patient.profile_id)

    reads = cast.reads_by(cast.doctor)

    shown = {(item["action"], item["shown"], item["record_id"]) for item in reads}
    assert ("consultation", "consultation", cast.consultation) in shown
    assert ("attachment download", "attachment", attachment_id) in shown
    assert ("prescription", "prescription", cast.prescription) in shown
    assert len(entries(reads, action="consultation search")) == found["total"] == 1
    assert entries(reads, action="prescription search")[0]["record_id"] == cast.prescription
    assert {item["basis"] for item in reads} == {"primary_care"}


def test_a_break_the_glass_read_is_flagged_as_an_emergency(clinic: Clinic, cast: Cast) -> None:
    post(clinic, cast.stranger, f"/patients/{cast.patient.profile_id}/emergency-access", {"reason": "Collapsed in the waiting room"}, 201)

    clinic.read(cast.stranger, f"/patients/{cast.patient.profile_id}/chart", after=clinic.latest())

    (read,) = entries(cast.log_of(cast.auditor), reader_id=cast.stranger.account_id)
    assert (read["basis"], read["emergency"]) == ("emergency", True)


def test_reads_of_the_own_record_and_by_auditors_say_so(clinic: Clinic, cast: Cast) -> None:
    clinic.read(cast.patient, f"/patients/{cast.patient.profile_id}/chart", after=clinic.latest())
    clinic.read(cast.auditor, f"/consultations/{cast.consultation}")

    log = cast.log_of(cast.patient)

    assert entries(log, reader_id=cast.patient.account_id, shown="chart")[0]["basis"] == "self"
    assert entries(log, reader_id=cast.auditor.account_id, shown="consultation")[0]["basis"] == "audit"


def test_reading_the_read_log_and_a_records_history_is_logged_too(clinic: Clinic, cast: Cast) -> None:
    cast.log_of(cast.patient)
    clinic.read(cast.auditor, f"/audit/records/{cast.consultation}/history")
    cast.reads_by(cast.patient)

    by_patient = cast.reads_by(cast.patient)
    by_auditor = cast.reads_by(cast.auditor)

    assert entries(by_patient, shown="read_log", record_id=cast.patient.profile_id, basis="self")
    assert entries(by_auditor, shown="history", record_id=cast.consultation, basis="audit")
    assert entries(by_auditor, shown="read_log", record_id=cast.patient.account_id)


def test_the_administrative_view_of_a_consultation_is_no_clinical_read(clinic: Clinic, cast: Cast) -> None:
    clinic.read(cast.admin, f"/consultations/{cast.consultation}")
    clinic.read(cast.admin, "/consultations", after=clinic.latest())

    assert cast.reads_by(cast.admin) == []


def test_a_patient_never_sees_another_patients_read_log(clinic: Clinic, cast: Cast) -> None:
    expect(clinic.get(cast.other_patient, f"/patients/{cast.patient.profile_id}/reads"), 404, "not_found")
    expect(clinic.get(cast.patient, "/audit/reads", reader_id=cast.doctor.account_id), 403)


@pytest.mark.parametrize("role", ["doctor", "admin", "analyst"])
def test_staff_other_than_auditors_may_not_read_the_read_log(clinic: Clinic, cast: Cast, role: str) -> None:
    user = {"doctor": cast.doctor, "admin": cast.admin, "analyst": cast.analyst}[role]

    expect(clinic.get(user, f"/patients/{cast.patient.profile_id}/reads"), 403)
    expect(clinic.get(user, "/audit/reads", reader_id=cast.doctor.account_id), 403)


def test_the_read_log_needs_a_token(clinic: Clinic, cast: Cast) -> None:
    assert clinic.client.get(f"/patients/{cast.patient.profile_id}/reads").status_code == 401
    assert clinic.client.get("/audit/reads", params={"reader_id": cast.doctor.account_id}).status_code == 401


def test_a_window_that_ends_before_it_starts_is_refused(clinic: Clinic, cast: Cast) -> None:
    window = {"from": "2030-01-02T00:00:00+00:00", "to": "2030-01-01T00:00:00+00:00"}

    expect(clinic.get(cast.patient, f"/patients/{cast.patient.profile_id}/reads", **window), 422, field="to")
    expect(clinic.get(cast.auditor, "/audit/reads", reader_id=cast.doctor.account_id, **window), 422, field="to")
    expect(clinic.get(cast.auditor, "/audit/reads"), 422, field="reader_id")


def test_a_window_selects_reads_by_their_time(clinic: Clinic, cast: Cast) -> None:
    clinic.read(cast.doctor, f"/patients/{cast.patient.profile_id}/chart", after=clinic.latest())
    clinic.clock.advance(days=2)
    clinic.read(cast.doctor, f"/consultations/{cast.consultation}")
    cut = (clinic.clock.now.replace(microsecond=0)).isoformat()

    page = clinic.read(cast.auditor, "/audit/reads", after=clinic.latest(), reader_id=cast.doctor.account_id, to=cut)

    assert [item["shown"] for item in page["items"]] == ["chart"]
