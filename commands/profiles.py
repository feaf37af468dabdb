"""Profile commands: doctor and patient profiles, weekly availability and leave days."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timezone
from typing import Any

from commands.base import Actor, Outcome, RecordNotFoundError, Services, change, load, load_or_open, require
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


def _doctor(svc: Services, doctor_id: str) -> Callable[[], Doctor]:
    return lambda: load(svc.store, Doctor, doctor_id, "doctor")


def update_doctor_profile(svc: Services, cmd: UpdateDoctorProfile, actor: Actor) -> Outcome:
    _require_doctor_or_admin(actor, cmd.doctor_id)
    return change(svc.store, _doctor(svc, cmd.doctor_id), lambda d: d.update_profile(cmd.changes, actor.cause))


def set_availability(svc: Services, cmd: SetAvailability, actor: Actor) -> Outcome:
    _require_doctor_or_admin(actor, cmd.doctor_id)
    return change(svc.store, _doctor(svc, cmd.doctor_id), lambda d: d.set_availability(cmd.availability, actor.cause))


def _leave_calendar(svc: Services, doctor_id: str, day: date, actor: Actor) -> Callable[[], DoctorCalendar]:
    def load_day() -> DoctorCalendar:
        doctor = load(svc.store, Doctor, doctor_id, "doctor")
        zone = doctor.availability.zone if doctor.availability else timezone.utc
        if day < svc.clock().astimezone(zone).date():
            raise LeaveInPastError(f"{day.isoformat()} is already over.", field="day")
        calendar_id = DoctorCalendar.create_id(doctor_id, day)
        return load_or_open(
            svc.store, DoctorCalendar, calendar_id, doctor_id=doctor_id, day=day, cause=actor.cause.as_dict()
        )

    return load_day


def take_leave(svc: Services, cmd: TakeLeave, actor: Actor) -> Outcome:
    _require_doctor_or_admin(actor, cmd.doctor_id)
    calendar = _leave_calendar(svc, cmd.doctor_id, cmd.day, actor)
    return change(svc.store, calendar, lambda c: c.take_leave(cmd.reason, actor.cause), answer_id=cmd.doctor_id)


def cancel_leave(svc: Services, cmd: CancelLeave, actor: Actor) -> Outcome:
    _require_doctor_or_admin(actor, cmd.doctor_id)
    calendar = _leave_calendar(svc, cmd.doctor_id, cmd.day, actor)
    return change(svc.store, calendar, lambda c: c.cancel_leave(cmd.reason, actor.cause), answer_id=cmd.doctor_id)


def update_patient_profile(svc: Services, cmd: UpdatePatientProfile, actor: Actor) -> Outcome:
    if actor.is_(Role.PATIENT) and not actor.owns(Role.PATIENT, cmd.patient_id):
        raise RecordNotFoundError(f"No patient {cmd.patient_id}.")
    require(actor.is_(Role.ADMIN, Role.PATIENT), "Only the patient or an admin may change a patient's profile.")

    patient = lambda: load(svc.store, Patient, cmd.patient_id, "patient")  # noqa: E731
    return change(svc.store, patient, lambda p: p.update_profile(cmd.changes, actor.cause))
