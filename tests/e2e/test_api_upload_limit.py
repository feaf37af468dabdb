"""An attachment upload declared larger than the limit is refused before its body is read."""

from __future__ import annotations

from e2e_helpers import expect

LIMIT = 1000


def open_consultation(clinic):
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()
    relationship = {"doctor_id": doctor.profile_id, "kind": "primary_care", "reason": "registered with the practice"}
    expect(clinic.client.post(f"/patients/{patient.profile_id}/care-relationships", headers=admin.headers, json=relationship), 201)
    started = clinic.client.post("/consultations", headers=doctor.headers, json={"patient_id": patient.profile_id, "kind": "chat"})
    return doctor, expect(started, 201)["id"]


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_parsed(clinic_with):
    clinic = clinic_with(attachment_max_bytes=LIMIT)
    doctor, consultation_id = open_consultation(clinic)
    not_multipart = b"x" * (LIMIT + 17 * 1024)
    headers = {**doctor.headers, "Content-Type": "multipart/form-data; boundary=nothing-here"}

    refused = clinic.client.post(f"/consultations/{consultation_id}/attachments", headers=headers, content=not_multipart)

    expect(refused, 422, "attachment_too_large", field="file")
    view = clinic.read(doctor, f"/consultations/{consultation_id}", after=clinic.latest())
    assert view["attachments"] == []


def test_a_file_over_the_limit_within_the_allowance_is_refused_by_the_route(clinic_with):
    clinic = clinic_with(attachment_max_bytes=LIMIT)
    doctor, consultation_id = open_consultation(clinic)
    files = {"file": ("notes.txt", b"a" * (LIMIT + 1), "text/plain")}

    refused = clinic.client.post(f"/consultations/{consultation_id}/attachments", headers=doctor.headers, data={"kind": "document"}, files=files)

    expect(refused, 422, "attachment_too_large", field="file")


def test_a_file_at_the_limit_is_accepted(clinic_with):
    clinic = clinic_with(attachment_max_bytes=LIMIT)
    doctor, consultation_id = open_consultation(clinic)
    files = {"file": ("notes.txt", b"a" * LIMIT, "text/plain")}

    expect(clinic.client.post(f"/consultations/{consultation_id}/attachments", headers=doctor.headers, data={"kind": "document"}, files=files), 201)
