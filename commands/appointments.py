"""Appointment commands: book, confirm, reschedule, cancel, complete, no-show and status correction; and the
backfill of the access appointments give, for stores written before it was recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from uuid import uuid4

from commands.base import (
    Actor,
    Opening,
    Outcome,
    RecordNotFoundError,
    Services,
    Store,
    load,
    load_or_open_all,
    require,
    retrying,
)
from domain import scheduling
from domain.appointment import Appointment, Status, VisitAccess
from domain.care import PatientCare, care_id
from domain.doctor_calendar import DoctorCalendar, SlotTakenError
from domain.doctors import Doctor
from domain.patient_agenda import PatientAgenda
from domain.patients import Patient
from domain.shared import Cause, Role, require_aware, utc_days

READERS_OF_ALL = (Role.ADMIN, Role.AUDITOR, Role.ANALYST)


@dataclass(frozen=True)
class BookAppointment:
    doctor_id: str
    patient_id: str
    start: datetime
    overbook_reason: str | None = None


@dataclass(frozen=True)
class ConfirmAppointment:
    appointment_id: str


@dataclass(frozen=True)
class RescheduleAppointment:
    appointment_id: str
    start: datetime
    reason: str


@dataclass(frozen=True)
class CancelAppointment:
    appointment_id: str
    reason: str


@dataclass(frozen=True)
class CompleteAppointment:
    appointment_id: str


@dataclass(frozen=True)
class MarkNoShow:
    appointment_id: str


@dataclass(frozen=True)
class CorrectStatus:
    appointment_id: str
    status: Status
    reason: str


def may_see_appointment(actor: Actor, doctor_id: str, patient_id: str) -> bool:
    """Staff who read everything, the patient it is for and the doctor it is with."""
    return (
        actor.is_(*READERS_OF_ALL)
        or actor.owns(Role.PATIENT, patient_id)
        or actor.owns(Role.DOCTOR, doctor_id)
    )


def book_appointment(svc: Services, cmd: BookAppointment, actor: Actor) -> Outcome:
    if actor.is_(Role.PATIENT):
        require(actor.profile_id == cmd.patient_id, "Patients book appointments only for themselves.")
    else:
        require(actor.is_(Role.ADMIN), "Only patients (for themselves) and admins book appointments.")
    return book(svc, cmd, actor)


@contextmanager
def _holders_unnamed(actor: Actor, doctor_id: str) -> Iterator[None]:
    """A slot_taken refusal names the holder only to callers who may see that appointment: anyone else
    learns that the slot is taken, when, and the holding booking's opaque id, never who holds it."""
    try:
        yield
    except SlotTakenError as error:
        for booking in error.details["current"]["bookings"]:
            if not may_see_appointment(actor, doctor_id, booking["patient_id"]):
                del booking["patient_id"]
        raise


def book(svc: Services, cmd: BookAppointment, actor: Actor) -> Outcome:
    """Books for a caller already allowed to book for this patient (book_appointment, or a follow-up)."""
    require(cmd.overbook_reason is None or actor.is_(Role.ADMIN), "Only an admin may overbook a slot.")
    start = require_aware(cmd.start, "start")
    store, cause = svc.store, actor.cause

    def decide() -> Outcome:
        doctor, *patient = store.find_all((Doctor, cmd.doctor_id), *[] if actor.is_(Role.PATIENT) else [(Patient, cmd.patient_id)])
        if doctor is None:
            raise RecordNotFoundError(f"No doctor {cmd.doctor_id}.")
        if patient and patient[0] is None:
            raise RecordNotFoundError(f"No patient {cmd.patient_id}.")
        slot = scheduling.check_slot(doctor, start, svc.clock())
        days = utc_days(slot.start, slot.end)
        calendar, care, *agendas = load_or_open_all(
            store,
            _calendar_stream(cmd.doctor_id, slot.day, cause),
            _care_stream(cmd.patient_id, cause),
            *(_agenda_stream(cmd.patient_id, day, cause) for day in days),
        )
        with _holders_unnamed(actor, cmd.doctor_id):
            appointment = scheduling.book(
                appointment_id=uuid4(),
                doctor=doctor,
                calendar=calendar,
                agendas=agendas,
                patient_id=cmd.patient_id,
                slot=slot,
                overbook_reason=cmd.overbook_reason,
                cause=cause,
            )
        if appointment is None:
            existing = calendar.booking_of(cmd.patient_id, slot.start)
            return Outcome(existing.appointment_id if existing else "", None)
        return Outcome(str(appointment.id), store.save(appointment, calendar, *agendas, track(care, appointment, cause)), created=True)

    return retrying(store, decide)


def visit_tracked(store: Store, appointment: Appointment, cause: Cause) -> PatientCare | None:
    """The patient's care record with the access the appointment now gives its doctor, to save with the
    appointment; None when the record already says so."""
    (care,) = load_or_open_all(store, _care_stream(appointment.patient_id, cause))
    return track(care, appointment, cause)


def track(care: PatientCare, appointment: Appointment, cause: Cause) -> PatientCare | None:
    version = care.version
    care.track_visit(appointment, cause)
    return care if care.version != version else None


@dataclass(frozen=True)
class VisitsBackfilled:
    examined: int
    recorded: int


def backfill_visits(svc: Services, appointment_ids: Iterable[str], actor: Actor) -> VisitsBackfilled:
    """Records on each patient's care record the access their appointments give, for appointments booked
    before it was recorded with them. Appointments already recorded, and cancelled or missed ones the record
    never knew, change nothing, so running it again records nothing."""
    require(actor.is_(Role.ADMIN), "Only an admin backfills visits.")
    store = svc.store
    examined = recorded = 0

    def record(appointment_id: str) -> bool:
        appointment = store.find(Appointment, appointment_id)
        if appointment is None:
            return False
        care = store.find(PatientCare, care_id(appointment.patient_id))
        unknown = care is None or str(appointment.id) not in care.visits
        if unknown and appointment.visit_access == VisitAccess.NONE:
            return False
        return store.save(visit_tracked(store, appointment, actor.cause)) is not None

    for appointment_id in appointment_ids:
        examined += 1
        recorded += retrying(store, lambda: record(appointment_id))
    return VisitsBackfilled(examined, recorded)


def _by_staff(svc: Services, appointment_id: str, actor: Actor, act: Callable[[Appointment], None]) -> Outcome:
    """Changes an appointment as its doctor or an admin, with the access it gives recorded in the same save."""

    def decide() -> Outcome:
        appointment = _appointment_for_staff(svc.store, appointment_id, actor)
        act(appointment)
        care = visit_tracked(svc.store, appointment, actor.cause)
        return Outcome(str(appointment.id), svc.store.save(appointment, care))

    return retrying(svc.store, decide)


def confirm_appointment(svc: Services, cmd: ConfirmAppointment, actor: Actor) -> Outcome:
    return _by_staff(svc, cmd.appointment_id, actor, lambda a: a.confirm(actor.cause))


def complete_appointment(svc: Services, cmd: CompleteAppointment, actor: Actor) -> Outcome:
    return _by_staff(svc, cmd.appointment_id, actor, lambda a: a.complete(svc.clock(), actor.cause))


def mark_no_show(svc: Services, cmd: MarkNoShow, actor: Actor) -> Outcome:
    return _by_staff(svc, cmd.appointment_id, actor, lambda a: a.mark_no_show(svc.clock(), actor.cause))


def correct_status(svc: Services, cmd: CorrectStatus, actor: Actor) -> Outcome:
    return _by_staff(
        svc, cmd.appointment_id, actor, lambda a: a.correct_status(cmd.status, cmd.reason, svc.clock(), actor.cause)
    )


def cancel_appointment(svc: Services, cmd: CancelAppointment, actor: Actor) -> Outcome:
    store, cause = svc.store, actor.cause

    def decide() -> Outcome:
        appointment = _appointment_for_anyone_involved(store, cmd.appointment_id, actor)
        calendar = load(store, DoctorCalendar, DoctorCalendar.create_id(appointment.doctor_id, appointment.day), "calendar")
        agendas = _agendas(store, appointment.patient_id, utc_days(appointment.start, appointment.end), cause)
        scheduling.cancel(
            appointment=appointment,
            calendar=calendar,
            agendas=list(agendas.values()),
            reason=cmd.reason,
            now=svc.clock(),
            deadline=_patient_deadline(svc, appointment, actor),
            cause=cause,
        )
        care = visit_tracked(store, appointment, cause)
        return Outcome(str(appointment.id), store.save(appointment, calendar, *agendas.values(), care))

    return retrying(store, decide)


def reschedule_appointment(svc: Services, cmd: RescheduleAppointment, actor: Actor) -> Outcome:
    start = require_aware(cmd.start, "start")
    store, cause = svc.store, actor.cause

    def decide() -> Outcome:
        appointment = _appointment_for_anyone_involved(store, cmd.appointment_id, actor)
        if appointment.start == start and appointment.is_active:
            return Outcome(str(appointment.id), None)
        now = svc.clock()
        appointment.check_reschedulable(now, _patient_deadline(svc, appointment, actor))
        doctor = load(store, Doctor, appointment.doctor_id, "doctor")
        slot = scheduling.check_slot(doctor, start, now)
        old_calendar = load(store, DoctorCalendar, DoctorCalendar.create_id(appointment.doctor_id, appointment.day), "calendar")
        new_calendar = (
            old_calendar if slot.day == appointment.day else _calendar(store, appointment.doctor_id, slot.day, cause)
        )
        old_days = utc_days(appointment.start, appointment.end)
        new_days = utc_days(slot.start, slot.end)
        agendas = _agendas(store, appointment.patient_id, [*old_days, *new_days], cause)
        with _holders_unnamed(actor, appointment.doctor_id):
            scheduling.reschedule(
                appointment=appointment,
                old_calendar=old_calendar,
                new_calendar=new_calendar,
                old_agendas=[agendas[day] for day in old_days],
                new_agendas=[agendas[day] for day in new_days],
                slot=slot,
                reason=cmd.reason,
                cause=cause,
            )
        calendars = {id(old_calendar): old_calendar, id(new_calendar): new_calendar}.values()
        care = visit_tracked(store, appointment, cause)
        return Outcome(str(appointment.id), store.save(appointment, *calendars, *agendas.values(), care))

    return retrying(store, decide)


def _calendar_stream(doctor_id: str, day: date, cause: Cause) -> Opening:
    return DoctorCalendar, DoctorCalendar.create_id(doctor_id, day), {"doctor_id": doctor_id, "day": day, "cause": cause.as_dict()}


def _agenda_stream(patient_id: str, day: date, cause: Cause) -> Opening:
    return PatientAgenda, PatientAgenda.create_id(patient_id, day), {"patient_id": patient_id, "day": day, "cause": cause.as_dict()}


def _care_stream(patient_id: str, cause: Cause) -> Opening:
    return PatientCare, care_id(patient_id), {"patient_id": patient_id, "cause": cause.as_dict()}


def _calendar(store: Store, doctor_id: str, day: date, cause: Cause) -> DoctorCalendar:
    (calendar,) = load_or_open_all(store, _calendar_stream(doctor_id, day, cause))
    return calendar


def _agendas(store: Store, patient_id: str, days: Iterable[date], cause: Cause) -> dict[date, PatientAgenda]:
    unique = list(dict.fromkeys(days))
    return dict(zip(unique, load_or_open_all(store, *(_agenda_stream(patient_id, day, cause) for day in unique))))


def _visible_appointment(store: Store, appointment_id: str, actor: Actor) -> Appointment:
    appointment = store.find(Appointment, appointment_id)
    if appointment is None or not may_see_appointment(actor, appointment.doctor_id, appointment.patient_id):
        raise RecordNotFoundError(f"No appointment {appointment_id}.")
    return appointment


def _appointment_for_staff(store: Store, appointment_id: str, actor: Actor) -> Appointment:
    appointment = _visible_appointment(store, appointment_id, actor)
    require(
        actor.is_(Role.ADMIN) or actor.owns(Role.DOCTOR, appointment.doctor_id),
        "Only the appointment's doctor or an admin may do this.",
    )
    return appointment


def _appointment_for_anyone_involved(store: Store, appointment_id: str, actor: Actor) -> Appointment:
    appointment = _visible_appointment(store, appointment_id, actor)
    require(
        actor.is_(Role.ADMIN)
        or actor.owns(Role.DOCTOR, appointment.doctor_id)
        or actor.owns(Role.PATIENT, appointment.patient_id),
        "Only the patient, the doctor or an admin may do this.",
    )
    return appointment


def _patient_deadline(svc: Services, appointment: Appointment, actor: Actor) -> datetime | None:
    """Patients must act a cut-off before the start; doctors and admins may act any time."""
    return appointment.start - svc.patient_cutoff if actor.is_(Role.PATIENT) else None

