"""Profile commands: doctor and patient profiles, weekly availability and leave days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timezone
from typing import Any

from commands.base import Actor, Clock, Outcome, RecordNotFoundError, Services, Store, load, load_or_open, require, retrying
from domain.doctor_calendar import DoctorCalendar
from domain.doctors import Doctor, WeeklyAvailability
from domain.patients import Patient
from domain.shared import InvalidInputError, Role


class LeaveInPastError(InvalidInputError):
    """Raised when leave is taken or cancelled for a day that is already over."""

    code = "leave_in_past"


@dataclass(frozen=True)
class UpdateDoctorProfile:
    doctor_id: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class SetAvailability:
    doctor_id: str
    availability: WeeklyAvailability


@dataclass(frozen=True)
class TakeLeave:
    doctor_id: str
    day: date
    reason: str


@dataclass(frozen=True)
class CancelLeave:
    doctor_id: str
    day: date
    reason: str


@dataclass(frozen=True)
class UpdatePatientProfile:
    patient_id: str
    changes: dict[str, Any]


def _require_doctor_or_admin(actor: Actor, doctor_id: str) -> None:
    require(actor.is_(Role.ADMIN) or actor.owns(Role.DOCTOR, doctor_id), "Only this doctor or an admin may change this.")


def update_doctor_profile(svc: Services, cmd: UpdateDoctorProfile, actor: Actor) -> Outcome:
    store = svc.store
    _require_doctor_or_admin(actor, cmd.doctor_id)

    def decide() -> Outcome:
        doctor = load(store, Doctor, cmd.doctor_id, "doctor")
        doctor.update_profile(cmd.changes, actor.cause)
        return Outcome(str(doctor.id), store.save(doctor))

    return retrying(decide)


def set_availability(svc: Services, cmd: SetAvailability, actor: Actor) -> Outcome:
    store = svc.store
    _require_doctor_or_admin(actor, cmd.doctor_id)

    def decide() -> Outcome:
        doctor = load(store, Doctor, cmd.doctor_id, "doctor")
        doctor.set_availability(cmd.availability, actor.cause)
        return Outcome(str(doctor.id), store.save(doctor))

    return retrying(decide)


def _leave_calendar(store: Store, clock: Clock, doctor_id: str, day: date, actor: Actor) -> DoctorCalendar:
    doctor = load(store, Doctor, doctor_id, "doctor")
    zone = doctor.availability.zone if doctor.availability else timezone.utc
    if day < clock().astimezone(zone).date():
        raise LeaveInPastError(f"{day.isoformat()} is already over.", field="day")
    return load_or_open(
        store,
        DoctorCalendar,
        DoctorCalendar.create_id(doctor_id, day),
        doctor_id=doctor_id,
        day=day,
        cause=actor.cause.as_dict(),
    )


def take_leave(svc: Services, cmd: TakeLeave, actor: Actor) -> Outcome:
    store, clock = svc.store, svc.clock
    _require_doctor_or_admin(actor, cmd.doctor_id)

    def decide() -> Outcome:
        calendar = _leave_calendar(store, clock, cmd.doctor_id, cmd.day, actor)
        calendar.take_leave(cmd.reason, actor.cause)
        return Outcome(cmd.doctor_id, store.save(calendar))

    return retrying(decide)


def cancel_leave(svc: Services, cmd: CancelLeave, actor: Actor) -> Outcome:
    store, clock = svc.store, svc.clock
    _require_doctor_or_admin(actor, cmd.doctor_id)

    def decide() -> Outcome:
        calendar = _leave_calendar(store, clock, cmd.doctor_id, cmd.day, actor)
        calendar.cancel_leave(cmd.reason, actor.cause)
        return Outcome(cmd.doctor_id, store.save(calendar))

    return retrying(decide)


def update_patient_profile(svc: Services, cmd: UpdatePatientProfile, actor: Actor) -> Outcome:
    store = svc.store
    if actor.is_(Role.PATIENT) and not actor.owns(Role.PATIENT, cmd.patient_id):
        raise RecordNotFoundError(f"No patient {cmd.patient_id}.")
    require(actor.is_(Role.ADMIN, Role.PATIENT), "Only the patient or an admin may change a patient's profile.")

    def decide() -> Outcome:
        patient = load(store, Patient, cmd.patient_id, "patient")
        patient.update_profile(cmd.changes, actor.cause)
        return Outcome(str(patient.id), store.save(patient))

    return retrying(decide)
