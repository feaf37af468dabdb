"""Booking and rescheduling: the rules that span a doctor, their calendar day and the patient's agenda."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from domain.appointment import Appointment
from domain.doctor_calendar import DoctorCalendar
from domain.doctors import Doctor
from domain.patient_agenda import PatientAgenda
from domain.shared import Cause, InvalidInputError


class BookingInPastError(InvalidInputError):
    """Raised when a booking or a new time for one starts in the past."""

    code = "booking_in_past"


@dataclass(frozen=True)
class SlotRequest:
    """A checked slot: inside availability, on the grid, in the future."""

    start: datetime
    end: datetime
    day: date


def check_slot(doctor: Doctor, start: datetime, now: datetime) -> SlotRequest:
    """The slot at start; day is the doctor's local date, which names the calendar it lives in."""
    if start <= now:
        raise BookingInPastError(f"{start.isoformat()} is in the past.", field="start")
    return SlotRequest(*doctor.slot_at(start))


def book(
    *,
    appointment_id: UUID,
    doctor: Doctor,
    calendar: DoctorCalendar,
    agendas: list[PatientAgenda],
    patient_id: str,
    slot: SlotRequest,
    overbook_reason: str | None,
    cause: Cause,
) -> Appointment | None:
    """Books the slot; answers None when this patient already holds exactly this booking."""
    if calendar.booking_of(patient_id, slot.start) is not None:
        return None
    calendar.book(str(appointment_id), patient_id, slot.start, slot.end, overbook_reason, cause)
    for agenda in agendas:
        agenda.hold(str(appointment_id), slot.start, slot.end, cause)
    return Appointment(
        id=appointment_id,
        doctor_id=str(doctor.id),
        patient_id=patient_id,
        start=slot.start,
        end=slot.end,
        day=slot.day,
        overbooked=calendar.bookings[str(appointment_id)].overbooked,
        reason=overbook_reason,
        cause=cause.as_dict(),
    )


def reschedule(
    *,
    appointment: Appointment,
    old_calendar: DoctorCalendar,
    new_calendar: DoctorCalendar,
    old_agendas: list[PatientAgenda],
    new_agendas: list[PatientAgenda],
    slot: SlotRequest,
    reason: str,
    cause: Cause,
) -> None:
    """Moves the appointment; the caller saves all of it at once, so the old slot is freed only if the new one is taken."""
    appointment_id = str(appointment.id)
    old_calendar.release(appointment_id, cause)
    new_calendar.book(appointment_id, appointment.patient_id, slot.start, slot.end, None, cause)
    for agenda in old_agendas:
        agenda.release(appointment_id, cause)
    for agenda in new_agendas:
        agenda.hold(appointment_id, slot.start, slot.end, cause)
    appointment.reschedule(slot.start, slot.end, slot.day, reason, cause)


def cancel(
    *,
    appointment: Appointment,
    calendar: DoctorCalendar,
    agendas: list[PatientAgenda],
    reason: str,
    now: datetime,
    deadline: datetime | None,
    cause: Cause,
) -> None:
    appointment.cancel(reason, now, deadline, cause)
    calendar.release(str(appointment.id), cause)
    for agenda in agendas:
        agenda.release(str(appointment.id), cause)
