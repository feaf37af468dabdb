"""The consultation read model equals the aggregate's own view, child rows included, and a rebuild reproduces it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from commands import consultations as c
from commands.appointments import BookAppointment, book_appointment
from commands.base import Actor
from domain.attachments import AttachmentKind
from domain.consultation import Consultation
from domain.shared import Role
from infrastructure.bootstrap import Medledger
from integration_helpers import midnight_after, open_doctor, open_patient, projector_positions, read_model_rows, running
from projections.clinical_tables import consultation_diagnoses, consultations, vital_signs

TABLES = ("consultations", "consultation_diagnoses", "vital_signs")


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings(backend), clock) as system:
        yield system


def a_consultation(m: Medledger, clock) -> str:
    """Started from an appointment, recorded, signed and amended through the handlers."""
    svc = m.services
    doctor, patient = open_doctor(svc), open_patient(svc)
    start = midnight_after(svc.clock(), days=1) + timedelta(hours=9)
    appointment_id = book_appointment(svc, BookAppointment(doctor.profile_id, patient.profile_id, start), patient.actor).id
    clock.advance(seconds=(start - clock.now).total_seconds() + 300)
    cid = c.start_consultation(svc, c.StartConsultation("video", appointment_id), doctor.actor).id
    m.projection.run_once()
    act = doctor.actor
    c.record_complaint(svc, c.RecordComplaint(cid, "Palpitations"), act)
    c.record_vital_signs(svc, c.RecordVitalSigns(cid, {"systolic": 150, "diastolic": 95, "pulse": 228}), act)
    c.record_vital_signs(svc, c.RecordVitalSigns(cid, {"weight": 81.5}, clock.now - timedelta(minutes=3)), act)
    c.record_diagnosis(svc, c.RecordDiagnosis(cid, "i47.1", "SVT", "primary", "provisional"), act)
    c.record_diagnosis(svc, c.RecordDiagnosis(cid, "I10", "Hypertension", "secondary", "confirmed"), act)
    c.add_note(svc, c.AddNote(cid, "Vagal manoeuvres taught."), act)
    c.add_attachment(svc, c.AddAttachment(cid, AttachmentKind.LAB_REPORT, "ecg.txt", "text/plain", b"ECG: SVT 228/min\n"), act)
    c.sign_consultation(svc, c.SignConsultation(cid), act)
    view = svc.store.find(Consultation, cid).view()
    svt = view["diagnoses"][0]["entry_id"]
    c.amend_entry(svc, c.AmendEntry(cid, svt, {"status": "confirmed"}, "ECG reviewed"), act)
    return cid


def stored(m: Medledger, cid: str) -> tuple[dict, list[dict], list[dict]]:
    with m.write_engine.connect() as conn:
        row = conn.execute(select(consultations).where(consultations.c.id == cid)).mappings().one()
        diagnoses = conn.execute(select(consultation_diagnoses).where(consultation_diagnoses.c.consultation_id == cid)).mappings().all()
        vitals = conn.execute(select(vital_signs).where(vital_signs.c.consultation_id == cid)).mappings().all()
    return dict(row), [dict(d) for d in diagnoses], [dict(v) for v in vitals]


def test_the_read_model_is_the_aggregates_view(system: Medledger, clock) -> None:
    cid = a_consultation(system, clock)

    system.projection.run_once()

    aggregate = system.store.find(Consultation, cid)
    row, diagnoses, vitals = stored(system, cid)
    assert row["document"] == aggregate.view()
    assert (row["status"], row["kind"], row["chief_complaint"], row["version"]) == ("signed", "video", "Palpitations", aggregate.version)
    assert sorted((d["code"], d["rank"], d["status"]) for d in diagnoses) == [
        ("I10", "secondary", "confirmed"),
        ("I47.1", "primary", "confirmed"),
    ]
    by_pulse = sorted(vitals, key=lambda v: v["pulse"] or 0)
    assert [(v["weight"], v["pulse"], v["flags"]) for v in by_pulse] == [
        (81.5, None, {}),
        (None, 228.0, {"pulse": "implausible"}),
    ]


def test_each_event_writes_the_view_as_of_that_event(system: Medledger, clock) -> None:
    svc = system.services
    cid = a_consultation(system, clock)
    system.projection.run_once()
    before = stored(system, cid)[0]["document"]

    amendment = c.AmendEntry(cid, before["notes"][0]["entry_id"], {"text": "Vagal manoeuvres taught; ECG given."}, "added")
    c.amend_entry(svc, amendment, its_doctor(system, cid))
    system.projection.run_once()

    after = stored(system, cid)[0]["document"]
    assert before["notes"][0]["text"] == "Vagal manoeuvres taught."
    assert after["notes"][0]["text"] == "Vagal manoeuvres taught; ECG given."
    assert len(after["amendments"]) == len(before["amendments"]) + 1


def its_doctor(m: Medledger, cid: str) -> Actor:
    consultation = m.store.find(Consultation, cid)
    return Actor("doctor-account", Role.DOCTOR, consultation.doctor_id, "corr-amend")


def test_a_rebuild_reproduces_the_incremental_tables(system: Medledger, clock) -> None:
    a_consultation(system, clock)
    system.projection.run_once()
    incremental = {name: rows for name, rows in read_model_rows(system.write_engine).items() if name in TABLES}

    system.projection.rebuild(["consultations"])

    rebuilt = {name: rows for name, rows in read_model_rows(system.write_engine).items() if name in TABLES}
    assert rebuilt == incremental
    assert all(incremental[name] for name in TABLES)
    assert projector_positions(system.write_engine)["consultations"] == system.store.max_position()
