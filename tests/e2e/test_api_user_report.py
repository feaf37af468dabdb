"""What one user did over HTTP: every change they caused and every read they were shown, in time order, paged and
as CSV; auditors see both, admins the changes without clinical content, no one else anything."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from uuid import uuid4

import pytest

from e2e_helpers import Clinic, User, expect, posted as post

EVERYTHING = {"from": "2000-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z", "page_size": 100}


class Week:
    """A doctor's week: a walk-in consultation recorded and signed, the chart and the consultation read; another
    doctor's work with another patient beside it."""

    def __init__(self, clinic: Clinic) -> None:
        self.clinic = clinic
        self.admin = clinic.admin()
        self.doctor, self.other_doctor = clinic.doctor(self.admin), clinic.doctor(self.admin)
        self.patient, self.other_patient = clinic.patient(), clinic.patient()
        self.auditor, self.analyst = clinic.staff(self.admin, "auditor"), clinic.staff(self.admin, "analyst")
        self.consultation = self.seen(self.doctor, self.patient, "Chest pain on exertion")
        clinic.read(self.doctor, f"/patients/{self.patient.profile_id}/chart", after=clinic.latest())
        clinic.read(self.doctor, f"/consultations/{self.consultation}")
        self.seen(self.other_doctor, self.other_patient, "Rash on both forearms")

    def seen(self, doctor: User, patient: User, complaint: str) -> str:
        relationship = {"doctor_id": doctor.profile_id, "kind": "primary_care", "reason": "registered with the practice"}
        post(self.clinic, self.admin, f"/patients/{patient.profile_id}/care-relationships", relationship, 201)
        consultation = post(self.clinic, doctor, "/consultations", {"patient_id": patient.profile_id}, 201)["id"]
        post(self.clinic, doctor, f"/consultations/{consultation}/complaint", {"text": complaint})
        post(self.clinic, doctor, f"/consultations/{consultation}/sign")
        return consultation

    def report(self, user: User, subject: User | str, **params: Any) -> dict[str, Any]:
        return self.clinic.read(user, self.path(subject), after=self.clinic.latest(), **{**EVERYTHING, **params})

    def path(self, subject: User | str) -> str:
        return f"/audit/users/{subject if isinstance(subject, str) else subject.account_id}/report"


@pytest.fixture
def week(clinic: Clinic) -> Week:
    return Week(clinic)


def test_an_auditor_reads_what_a_doctor_changed_and_opened_in_time_order(week: Week) -> None:
    found = week.report(week.auditor, week.doctor)

    rows = found["items"]
    assert found["total"] == len(rows)
    assert [r["recorded_at"] for r in rows] == sorted(r["recorded_at"] for r in rows)
    assert {r["actor_user_id"] for r in rows} == {week.doctor.account_id}
    changes = [(r["record_id"], r["event_type"]) for r in rows if r["kind"] == "change"]
    assert changes[:2] == [(rows[0]["record_id"], "Session.Started"), (week.doctor.profile_id, "Doctor.AvailabilitySet")]
    assert changes[2:] == [
        (week.consultation, "Consultation.Started"),
        (week.consultation, "Consultation.ComplaintRecorded"),
        (week.consultation, "Consultation.Signed"),
    ]
    complaint = next(r for r in rows if r["event_type"] == "Consultation.ComplaintRecorded")
    assert [c["after"] for c in complaint["changes"] if c["path"].endswith("current.text")] == ["Chest pain on exertion"]
    reads = [r for r in rows if r["kind"] == "read"]
    assert [(r["action"], [(s["shown"], s["record_id"], s["patient_id"]) for s in r["shown"]]) for r in reads] == [
        ("chart", [("chart", week.patient.profile_id, week.patient.profile_id)]),
        ("consultation", [("consultation", week.consultation, week.patient.profile_id)]),
    ]
    assert all(r["event_type"] == "ReadRecord.Recorded" and r["changes"] == [] for r in reads)
    assert "Rash" not in json.dumps(found) and week.other_patient.profile_id not in json.dumps(found)


def test_a_window_and_pages_select_the_rows_in_order(week: Week) -> None:
    whole = week.report(week.auditor, week.doctor)["items"]
    second = whole[1]["recorded_at"]

    pages = [week.report(week.auditor, week.doctor, page=n, page_size=3) for n in (1, 2, 3, 4)]
    later = week.report(week.auditor, week.doctor, **{"from": second})["items"]
    earlier = week.report(week.auditor, week.doctor, to=second)["items"]

    assert len(whole) == 7 and [len(p["items"]) for p in pages] == [3, 3, 1, 0] and {p["total"] for p in pages} == {7}
    assert pages[0]["items"] + pages[1]["items"] + pages[2]["items"] == whole
    assert earlier + later == whole and earlier == [r for r in whole if r["recorded_at"] < second]


def test_the_csv_export_has_the_rows_of_the_json_page(week: Week) -> None:
    as_json = week.report(week.auditor, week.doctor, page_size=4)
    answer = week.clinic.get(week.auditor, week.path(week.doctor), **{**EVERYTHING, "page_size": 4}, format="csv")

    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["x-total-count"] == str(as_json["total"])
    lines = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(lines) == len(as_json["items"]) == 4
    for line, item in zip(lines, as_json["items"]):
        assert (json.loads(line.pop("changes")), json.loads(line.pop("shown"))) == (item["changes"], item["shown"])
        assert line == {k: "" if v is None else str(v) for k, v in item.items() if k not in ("changes", "shown")}


def test_reading_the_report_is_in_the_read_log(week: Week) -> None:
    week.report(week.auditor, week.doctor)

    logged = week.clinic.read(week.auditor, "/audit/reads", after=week.clinic.latest(), reader_id=week.auditor.account_id, page_size=100)
    entries = {(r["shown"], r["record_id"], r["patient_id"]) for r in logged["items"] if r["action"] == "user report"}
    assert entries == {
        ("history", week.consultation, week.patient.profile_id),
        ("read_log", week.doctor.account_id, week.patient.profile_id),
    }


def test_an_admin_reads_the_changes_only_without_clinical_content(week: Week) -> None:
    answer = week.clinic.get(week.admin, week.path(week.doctor), after=week.clinic.latest(), **EVERYTHING)

    found = expect(answer, 200)
    assert [r["event_type"] for r in found["items"]] == [
        "Session.Started", "Doctor.AvailabilitySet", "Consultation.Started", "Consultation.ComplaintRecorded", "Consultation.Signed"
    ]
    assert "Chest pain" not in answer.text and found["total"] == 5 and {r["kind"] for r in found["items"]} == {"change"}
    assert found["items"][3]["changes"] == [] and [c["path"] for c in found["items"][4]["changes"]] == ["signed_at", "status"]
    assert [r for r in week.report(week.auditor, week.admin)["items"] if r["action"] == "user report"] == []


def test_no_one_else_reads_it_and_unknown_users_are_not_found(week: Week) -> None:
    path = week.path(week.doctor)

    for user in (week.doctor, week.patient, week.analyst):
        expect(week.clinic.get(user, path, **EVERYTHING), 403, "forbidden")
    expect(week.clinic.client.get(path, params=EVERYTHING), 401, "not_authenticated")
    expect(week.clinic.get(week.auditor, week.path(str(uuid4())), **EVERYTHING), 404, "not_found")
    expect(week.clinic.get(week.auditor, week.path(week.patient.profile_id), **EVERYTHING), 404, "not_found")
    system = week.report(week.auditor, "system")
    assert all(r["actor_user_id"] == "system" for r in system["items"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ({"to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"}, "from"),
        ({**EVERYTHING, "format": "xml"}, "format"),
    ],
)
def test_invalid_windows_are_refused_naming_the_field(clinic: Clinic, params: dict[str, Any], field: str) -> None:
    admin = clinic.admin()
    auditor = clinic.staff(admin, "auditor")

    expect(clinic.get(auditor, f"/audit/users/{auditor.account_id}/report", **params), 422, field=field)
