"""A prescription written, issued and dispensed through the real handlers, for the integration tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from commands import consultations as c
from commands import prescriptions as p
from commands.appointments import BookAppointment, book_appointment
from domain.prescription import Frequency, Route
from infrastructure.bootstrap import Medledger
from integration_helpers import ADMIN, Member, midnight_after, open_doctor, open_patient


@dataclass(frozen=True)
class Written:
    doctor: Member
    patient: Member
    consultation_id: str
    prescription_id: str


def item(name: str, frequency: Frequency = Frequency.TWICE_DAILY, quantity: int = 20, duration_days: int = 10) -> p.ItemSpec:
    return p.ItemSpec(name, "10 mg", "tablet", "1 tablet", Route.ORAL, frequency, duration_days, quantity, 0, "", name.lower())


def a_prescription(m: Medledger, clock, *items: p.ItemSpec) -> Written:
    """Booked, the consultation started five minutes in, and a draft written at it."""
    svc = m.services
    doctor, patient = open_doctor(svc), open_patient(svc)
    start = midnight_after(svc.clock(), days=1) + timedelta(hours=9)
    appointment_id = book_appointment(svc, BookAppointment(doctor.profile_id, patient.profile_id, start), patient.actor).id
    clock.advance(seconds=(start - clock.now).total_seconds() + 300)
    cid = c.start_consultation(svc, c.StartConsultation("in_person", appointment_id), doctor.actor).id
    m.projection.run_once()
    pid = p.write_prescription(svc, p.WritePrescription(cid, items or (item("Paracetamol"),)), doctor.actor).id
    return Written(doctor, patient, cid, pid)


def issued(m: Medledger, clock, *items: p.ItemSpec, override: str | None = None) -> Written:
    written = a_prescription(m, clock, *items)
    p.issue_prescription(m.services, p.IssuePrescription(written.prescription_id, override), written.doctor.actor)
    return written


def dispense(m: Medledger, written: Written, item_id: str, quantity: int) -> None:
    p.dispense_prescription(m.services, p.DispensePrescription(written.prescription_id, item_id, quantity), ADMIN)
