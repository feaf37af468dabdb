"""Audit over HTTP: histories, as-of states and patient reports; who may read them, CSV, pages and redaction."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from typing import Any
from uuid import uuid4

import jwt
import pytest
from test_api_consultations import Visit, consultation, open_visit, recorded

from domain.doctor_calendar import DoctorCalendar
from domain.care import care_id
from e2e_helpers import Clinic, User, expect

EVERYTHING = {"from": "2000-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z", "page_size": 100}


def history(clinic: Clinic, user: User, record_id: str, **params: Any) -> dict[str, Any]:
    return clinic.read(user, f"/audit/records/{record_id}/history", page_size=100, **params)


def as_of(clinic: Clinic, user: User, record_id: str, **params: Any) -> dict[str, Any]:
    return clinic.read(user, f"/audit/records/{record_id}/as-of", **params)


def report(clinic: Clinic, user: User, patient_id: str, **params: Any) -> dict[str, Any]:
    return clinic.read(user, f"/audit/patients/{patient_id}/report", **{**EVERYTHING, **params})


def amended_visit(clinic: Clinic) -> tuple[Visit, str]:
    """A signed consultation whose complaint was then amended under a known correlation id."""
    visit = open_visit(clinic)
    recorded(clinic, visit.doctor, visit.consultation_id, "complaint", {"text": "Chest pain on exertion"})
    recorded(clinic, visit.doctor, visit.consultation_id, "sign")
    entry = consultation(clinic, visit.doctor, visit.consultation_id)["chief_complaint"]["entry_id"]
    correlation = f"amend-{uuid4().hex[:8]}"
    amendment = {"entry_id": entry, "changes": {"text": "Chest pain at rest"}, "reason": "patient corrected the history"}
    headers = {**visit.doctor.headers, "X-Correlation-ID": correlation}
    expect(clinic.client.post(f"/consultations/{visit.consultation_id}/amendments", headers=headers, json=amendment), 200)
    return visit, correlation


def changes(row: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {c["path"]: (c["before"], c["after"]) for c in row["changes"]}


def rows_of_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_an_auditor_reads_every_event_of_a_record_with_who_when_why_and_what_changed(clinic: Clinic) -> None:
    visit, correlation = amended_visit(clinic)

    found = history(clinic, visit.auditor, visit.consultation_id)

    rows = found["items"]
    assert found["total"] == len(rows) == 4
    assert [r["version"] for r in rows] == [1, 2, 3, 4]
    assert [r["event_type"] for r in rows] == [
        "Consultation.Started", "Consultation.ComplaintRecorded", "Consultation.Signed", "Consultation.EntryAmended"
    ]
    assert [r["recorded_at"] for r in rows] == sorted(r["recorded_at"] for r in rows)
    amended = rows[3]
    assert (amended["actor_user_id"], amended["actor_role"], amended["correlation_id"]) == (visit.doctor.account_id, "doctor", correlation)
    assert amended["reason"] == "patient corrected the history"
    text_changes = {path: change for path, change in changes(amended).items() if path.endswith(".current.text")}
    assert list(text_changes.values()) == [("Chest pain on exertion", "Chest pain at rest")]
    assert changes(rows[2])["status"] == ("open", "signed")
    booked = history(clinic, visit.auditor, visit.appointment_id)["items"]
    assert booked[0]["event_type"] == "Appointment.Booked" and booked[0]["actor_user_id"] == visit.patient.account_id


def test_as_of_a_moment_before_an_amendment_the_record_does_not_show_it(clinic: Clinic) -> None:
    visit, _ = amended_visit(clinic)
    rows = history(clinic, visit.auditor, visit.consultation_id)["items"]
    signed_at, amended_at = datetime.fromisoformat(rows[2]["recorded_at"]), datetime.fromisoformat(rows[3]["recorded_at"])
    assert signed_at < amended_at

    before = as_of(clinic, visit.auditor, visit.consultation_id, as_of=(amended_at - timedelta(microseconds=1)).isoformat())
    at = as_of(clinic, visit.patient, visit.consultation_id, as_of=amended_at.isoformat())
    first = as_of(clinic, visit.auditor, visit.consultation_id, version=1)
    latest = as_of(clinic, visit.auditor, visit.consultation_id)

    def complaint(answer: dict[str, Any]) -> str:
        [entry] = answer["state"]["entries"].values()
        return entry["current"]["text"]

    assert (before["version"], before["recorded_at"], complaint(before)) == (3, rows[2]["recorded_at"], "Chest pain on exertion")
    assert before["state"]["status"] == "signed" and before["state"]["amendments"] == []
    assert (at["version"], at["recorded_at"], complaint(at)) == (4, rows[3]["recorded_at"], "Chest pain at rest")
    assert (first["version"], first["state"]["status"], first["state"]["entries"]) == (1, "open", {})
    assert latest["version"] == 4 and latest["as_of"] is None
    too_early = datetime.fromisoformat(rows[0]["recorded_at"]) - timedelta(microseconds=1)
    expect(clinic.get(visit.auditor, f"/audit/records/{visit.consultation_id}/as-of", as_of=too_early.isoformat()), 404, "not_found")
    expect(clinic.get(visit.auditor, f"/audit/records/{visit.consultation_id}/as-of", version=5), 404, "not_found")


def test_a_patient_reads_their_own_records_and_never_another_patients(clinic: Clinic) -> None:
    visit, _ = amended_visit(clinic)
    own = [visit.consultation_id, visit.appointment_id, visit.patient.profile_id, str(care_id(visit.patient.profile_id)), visit.patient.account_id]
    day = date.fromisoformat(as_of(clinic, visit.auditor, visit.appointment_id)["state"]["day"])
    calendar = str(DoctorCalendar.create_id(visit.doctor.profile_id, day))

    for record_id in own:
        assert history(clinic, visit.patient, record_id)["total"] >= 1, record_id
        assert as_of(clinic, visit.patient, record_id)["version"] >= 1, record_id
        for stranger in (visit.other_patient,):
            expect(clinic.get(stranger, f"/audit/records/{record_id}/history"), 404, "not_found")
            expect(clinic.get(stranger, f"/audit/records/{record_id}/as-of"), 404, "not_found")
    for record_id in (calendar, visit.doctor.account_id, str(uuid4()), "not-an-id"):
        expect(clinic.get(visit.patient, f"/audit/records/{record_id}/history"), 404, "not_found")
    assert history(clinic, visit.auditor, calendar)["items"][0]["record_type"] == "DoctorCalendar"
    assert history(clinic, visit.admin, visit.doctor.account_id)["items"][0]["record_type"] == "Account"
    expect(clinic.get(visit.auditor, f"/audit/records/{uuid4()}/history"), 404, "not_found")


def test_doctors_and_analysts_are_refused_and_anonymous_callers_must_authenticate(clinic: Clinic) -> None:
    visit, _ = amended_visit(clinic)
    paths = [
        (f"/audit/records/{visit.consultation_id}/history", {}),
        (f"/audit/records/{visit.consultation_id}/as-of", {}),
        (f"/audit/patients/{visit.patient.profile_id}/report", EVERYTHING),
    ]
    for path, params in paths:
        expect(clinic.get(visit.doctor, path, **params), 403, "forbidden")
        expect(clinic.get(visit.analyst, path, **params), 403, "forbidden")
        expect(clinic.client.get(path, params=params), 401, "not_authenticated")


def test_the_csv_export_has_the_rows_of_the_json_page(clinic: Clinic) -> None:
    visit, _ = amended_visit(clinic)
    for path, params in [
        (f"/audit/records/{visit.consultation_id}/history", {"page_size": 3, "page": 1}),
        (f"/audit/patients/{visit.patient.profile_id}/report", {**EVERYTHING, "page_size": 7, "page": 2}),
    ]:
        as_json = clinic.read(visit.auditor, path, **params)
        answer = clinic.get(visit.auditor, path, **params, format="csv")

        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        assert answer.headers["x-total-count"] == str(as_json["total"])
        lines = rows_of_csv(answer.text)
        assert len(lines) == len(as_json["items"]) > 0
        for line, item in zip(lines, as_json["items"]):
            assert json.loads(line.pop("changes")) == item["changes"]
            assert line == {k: "" if v is None else str(v) for k, v in item.items() if k != "changes"}


def test_pages_split_the_history_in_order(clinic: Clinic) -> None:
    visit, _ = amended_visit(clinic)
    whole = history(clinic, visit.auditor, visit.consultation_id)["items"]

    pages = [clinic.read(visit.auditor, f"/audit/records/{visit.consultation_id}/history", page=n, page_size=3) for n in (1, 2, 3)]

    assert [p["total"] for p in pages] == [4, 4, 4]
    assert [len(p["items"]) for p in pages] == [3, 1, 0]
    assert pages[0]["items"] + pages[1]["items"] == whole


def test_secrets_and_clinical_content_are_kept_from_those_who_may_not_see_them(clinic: Clinic) -> None:
    visit, _ = amended_visit(clinic)
    refreshed = expect(clinic.client.post("/auth/refresh", json={"refresh_token": visit.patient.refresh_token}), 200)
    session_id = jwt.decode(refreshed["access_token"], options={"verify_signature": False})["sid"]

    account = clinic.get(visit.auditor, f"/audit/records/{visit.patient.account_id}/history")
    account_now = as_of(clinic, visit.patient, visit.patient.account_id)
    session = history(clinic, visit.auditor, session_id)

    assert changes(account.json()["items"][0])["password_hash"] == (None, "[redacted]")
    assert "argon2" not in account.text and "$" not in json.dumps(account_now)
    assert account_now["state"]["password_hash"] == "[redacted]"
    rotated = session["items"][-1]
    assert rotated["event_type"] == "Session.Rotated"
    assert changes(rotated)["token_id"] == ("[redacted]", "[redacted]")
    assert history(clinic, visit.auditor, session_id)["items"][0]["record_type"] == "Session"
    for token in (visit.patient.refresh_token, refreshed["refresh_token"]):
        for part in token.split("."):
            assert part not in json.dumps(session)

    administrative = clinic.get(visit.admin, f"/audit/records/{visit.consultation_id}/history", page_size=100)
    admin_state = as_of(clinic, visit.admin, visit.consultation_id)
    assert administrative.status_code == 200 and "Chest pain" not in administrative.text
    assert "Chest pain" not in json.dumps(admin_state) and admin_state["state"]["status"] == "signed"
    assert "Chest pain" not in json.dumps(report(clinic, visit.admin, visit.patient.profile_id))
    assert "Chest pain" in json.dumps(report(clinic, visit.auditor, visit.patient.profile_id))


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("history", {"page": 0}, "page"),
        ("history", {"format": "xml"}, "format"),
        ("as-of", {"as_of": "2026-01-01T10:00:00"}, "as_of"),
        ("as-of", {"as_of": "2026-01-01T10:00:00Z", "version": 1}, "version"),
        ("as-of", {"version": 0}, "version"),
        ("report", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ("report", {"to": "2026-01-01T00:00:00Z"}, "from"),
    ],
)
def test_invalid_requests_are_refused_naming_the_field(clinic: Clinic, path: str, params: dict[str, Any], field: str) -> None:
    admin = clinic.admin()
    auditor, patient = clinic.staff(admin, "auditor"), clinic.patient()
    url = f"/audit/patients/{patient.profile_id}/report" if path == "report" else f"/audit/records/{patient.profile_id}/{path}"

    expect(clinic.get(auditor, url, **params), 422, field=field)


def test_a_patient_report_lists_every_change_to_their_records_in_time_order(clinic: Clinic) -> None:
    visit, _ = amended_visit(clinic)
    other_booking = clinic.booked(visit.other_patient, visit.doctor, clinic.at(3, 11))["id"]

    everything = report(clinic, visit.auditor, visit.patient.profile_id)
    own = report(clinic, visit.patient, visit.patient.profile_id)

    rows = everything["items"]
    assert own == everything and everything["total"] == len(rows)
    assert [r["recorded_at"] for r in rows] == sorted(r["recorded_at"] for r in rows)
    kinds = {r["record_type"] for r in rows}
    assert {"Patient", "Account", "PatientCare", "Appointment", "Consultation"} <= kinds
    assert "DoctorCalendar" not in kinds
    record_ids = {r["record_id"] for r in rows}
    assert {visit.consultation_id, visit.appointment_id} <= record_ids
    assert other_booking not in record_ids and visit.other_patient.profile_id not in record_ids
    assert rows[-1]["event_type"] == "Consultation.EntryAmended"

    amended_at = rows[-1]["recorded_at"]
    later = report(clinic, visit.auditor, visit.patient.profile_id, **{"from": amended_at})["items"]
    earlier = report(clinic, visit.auditor, visit.patient.profile_id, to=amended_at)["items"]
    assert later == [rows[-1]] and earlier == rows[:-1]
    expect(clinic.get(visit.other_patient, f"/audit/patients/{visit.patient.profile_id}/report", **EVERYTHING), 404, "not_found")
    expect(clinic.get(visit.auditor, f"/audit/patients/{uuid4()}/report", **EVERYTHING), 404, "not_found")
