"""The search scope (patients_in_care over the care read model) and the command-side decision (PatientCare.basis
from the store) name the same patients, over histories of relationships, emergency grants and appointments."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from commands import appointments, care, consultations
from commands.access import doctor_basis
from commands.base import Services
from domain.appointment import Status
from domain.care import Kind
from infrastructure.bootstrap import Medledger
from integration_helpers import ADMIN, Member, midnight_after, open_doctor, open_patient, running
from projections.queries import patients_in_care

EMERGENCY = "Collapsed in the waiting room, unresponsive"


def book(svc: Services, doctor: Member, patient: Member, start: datetime) -> str:
    return appointments.book_appointment(svc, appointments.BookAppointment(doctor.profile_id, patient.profile_id, start), ADMIN).id


def relate(svc: Services, doctor: Member, patient: Member, kind: Kind, expires_at: datetime | None = None, referrer: Member | None = None) -> str:
    command = care.StartRelationship(
        patient.profile_id, doctor.profile_id, kind, "Registered with the practice",
        referring_doctor_id=referrer.profile_id if referrer else None, expires_at=expires_at,
    )
    return care.start_relationship(svc, command, ADMIN).id


def scope(m: Medledger, doctor: Member) -> set[str]:
    m.projection.run_once()
    after_visit = m.services.post_visit_access
    with m.read_engine.connect() as conn:
        return set(conn.execute(patients_in_care(doctor.profile_id, m.services.clock(), after_visit)).scalars())


def decided(m: Medledger, doctor: Member, patients: dict[str, Member]) -> set[str]:
    return {p.profile_id for p in patients.values() if doctor_basis(m.services, doctor.profile_id, p.profile_id) is not None}


def names(patients: dict[str, Member], ids: set[str]) -> set[str]:
    return {name for name, p in patients.items() if p.profile_id in ids}


def test_the_search_scope_and_the_decision_agree_on_every_history(backend, make_settings, clock) -> None:
    with running(make_settings(backend), clock) as m:
        svc = m.services
        doctor, other, referrer = open_doctor(svc), open_doctor(svc), open_doctor(svc)
        people = [
            "primary", "ended", "temporary-expired", "temporary", "referral", "emergency", "emergency-expired",
            "booked", "confirmed", "rescheduled", "in-progress", "completed-recently", "completed-long-ago",
            "signed-recently", "cancelled", "no-show", "no-show-corrected-to-completed", "completed-corrected-to-booked",
            "other-doctors-appointment", "nothing",
        ]
        patients = {name: open_patient(svc, name) for name in people}
        day = midnight_after(clock.now)

        def at(days: int, hours: float) -> datetime:
            return day + timedelta(days=days, hours=hours)

        relate(svc, doctor, patients["primary"], Kind.PRIMARY)
        ended = relate(svc, doctor, patients["ended"], Kind.PRIMARY)
        care.end_relationship(svc, care.EndRelationship(patients["ended"].profile_id, ended, "Moved away"), ADMIN)
        relate(svc, doctor, patients["temporary-expired"], Kind.TEMPORARY, expires_at=at(1, 0))
        relate(svc, doctor, patients["temporary"], Kind.TEMPORARY, expires_at=at(20, 0))
        relate(svc, doctor, patients["referral"], Kind.REFERRAL, referrer=referrer)
        care.break_glass(svc, care.BreakGlass(patients["emergency-expired"].profile_id, EMERGENCY, 60), doctor.actor)
        booked = {
            name: book(svc, doctor, patients[name], at(9, 10 + n))
            for n, name in enumerate(("booked", "confirmed", "rescheduled", "cancelled"))
        }
        appointments.confirm_appointment(svc, appointments.ConfirmAppointment(booked["confirmed"]), doctor.actor)
        appointments.reschedule_appointment(svc, appointments.RescheduleAppointment(booked["rescheduled"], at(9, 15), "Clash"), ADMIN)
        appointments.cancel_appointment(svc, appointments.CancelAppointment(booked["cancelled"], "Feeling better"), ADMIN)
        long_ago = book(svc, doctor, patients["completed-long-ago"], at(0, 10))
        no_show = book(svc, doctor, patients["no-show"], at(1, 10))
        corrected_to_completed = book(svc, doctor, patients["no-show-corrected-to-completed"], at(2, 8))
        recently = book(svc, doctor, patients["completed-recently"], at(2, 9))
        signed = book(svc, doctor, patients["signed-recently"], at(2, 10))
        corrected_to_booked = book(svc, doctor, patients["completed-corrected-to-booked"], at(0, 11))
        in_progress = book(svc, doctor, patients["in-progress"], at(2, 11))
        book(svc, other, patients["other-doctors-appointment"], at(2, 11))

        clock.now = at(0, 11.5)
        appointments.complete_appointment(svc, appointments.CompleteAppointment(long_ago), doctor.actor)
        appointments.complete_appointment(svc, appointments.CompleteAppointment(corrected_to_booked), doctor.actor)
        appointments.correct_status(
            svc, appointments.CorrectStatus(corrected_to_booked, Status.BOOKED, "Completed the wrong one"), ADMIN
        )
        clock.now = at(1, 11.75)
        appointments.mark_no_show(svc, appointments.MarkNoShow(no_show), doctor.actor)
        clock.now = at(2, 9.25)
        appointments.complete_appointment(svc, appointments.CompleteAppointment(recently), doctor.actor)
        appointments.mark_no_show(svc, appointments.MarkNoShow(corrected_to_completed), doctor.actor)
        appointments.correct_status(
            svc, appointments.CorrectStatus(corrected_to_completed, Status.COMPLETED, "Arrived late, was seen"), ADMIN
        )
        clock.now = at(2, 10.25)
        started = consultations.start_consultation(svc, consultations.StartConsultation("in_person", appointment_id=signed), doctor.actor)
        consultations.record_complaint(svc, consultations.RecordComplaint(started.id, "Cough for a week"), doctor.actor)
        consultations.sign_consultation(svc, consultations.SignConsultation(started.id), doctor.actor)
        clock.now = at(2, 11.1)
        consultations.start_consultation(svc, consultations.StartConsultation("in_person", appointment_id=in_progress), doctor.actor)
        care.break_glass(svc, care.BreakGlass(patients["emergency"].profile_id, EMERGENCY, 120), doctor.actor)

        clock.now = at(2, 12)
        expected = {
            "primary", "temporary", "referral", "emergency", "booked", "confirmed", "rescheduled", "in-progress",
            "completed-recently", "signed-recently", "completed-corrected-to-booked", "no-show-corrected-to-completed",
        }
        assert names(patients, decided(m, doctor, patients)) == expected
        assert names(patients, scope(m, doctor)) == expected
        assert names(patients, scope(m, other)) == names(patients, decided(m, other, patients)) == {"other-doctors-appointment"}

        for moment in (at(2, 13.5), at(3, 8.4), at(3, 8.6), at(3, 9.4), at(3, 10.6), at(30, 0)):
            clock.now = moment
            for who in (doctor, other, referrer):
                assert scope(m, who) == decided(m, who, patients), (moment, who)
        assert names(patients, scope(m, doctor)) == {
            "primary", "referral", "booked", "confirmed", "rescheduled", "in-progress", "completed-corrected-to-booked"
        }
