"""The projectors: accounts, doctor directory (with leave), patient directory and the appointment book; and the list
of every projector."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, update

from domain.accounts import Account
from domain.appointment import Appointment, Status
from domain.doctor_calendar import DoctorCalendar
from domain.doctors import Doctor
from domain.patients import Patient
from projections.base import Projector
from projections.billing import InvoiceRecords, PriceListRecords
from projections.prescriptions import PrescriptionRecords
from projections.consultations import ConsultationRecords
from projections.care import CareDirectory
from projections.erasures import ErasureRequests
from projections.read_log import ReadLog
from projections.user_actions import UserActions
from projections.tables import accounts, appointments, doctor_leave, doctors, patients


def _update(table: Table, conn: Connection, event: Any, **values: Any) -> None:
    conn.execute(update(table).where(table.c.id == str(event.originator_id)).values(updated_at=event.timestamp, **values))


class AccountDirectory(Projector):
    name = "accounts"
    erased_by = {"accounts": "profile_id"}
    tables = (accounts,)

    def __init__(self) -> None:
        self.handlers = {
            Account.Registered.TOPIC: self.registered,
            Account.Disabled.TOPIC: lambda conn, e: _update(accounts, conn, e, disabled=True),
            Account.Enabled.TOPIC: lambda conn, e: _update(accounts, conn, e, disabled=False),
            Account.RoleChanged.TOPIC: lambda conn, e: _update(accounts, conn, e, role=e.role),
        }

    @staticmethod
    def registered(conn: Connection, e: Any) -> None:
        conn.execute(
            insert(accounts).values(
                id=str(e.originator_id),
                email=e.email,
                role=e.role,
                profile_id=e.profile_id,
                disabled=False,
                registered_at=e.timestamp,
                updated_at=e.timestamp,
            )
        )


DOCTOR_COLUMNS = ("name", "specialization", "licence_number", "consultation_fee", "bio")


def _doctor_values(profile: dict[str, Any]) -> dict[str, Any]:
    values = {k: profile[k] for k in DOCTOR_COLUMNS if k in profile}
    if "consultation_fee" in values:
        values["consultation_fee"] = Decimal(str(values["consultation_fee"]))
    return values


class DoctorDirectory(Projector):
    name = "doctors"
    tables = (doctors, doctor_leave)

    def __init__(self) -> None:
        self.handlers = {
            Doctor.Registered.TOPIC: self.registered,
            Doctor.ProfileUpdated.TOPIC: lambda conn, e: _update(doctors, conn, e, **_doctor_values(e.changes)),
            Doctor.AvailabilitySet.TOPIC: lambda conn, e: _update(doctors, conn, e, availability=e.availability),
            DoctorCalendar.LeaveTaken.TOPIC: self.leave_taken,
            DoctorCalendar.LeaveCancelled.TOPIC: self.leave_cancelled,
        }

    @staticmethod
    def registered(conn: Connection, e: Any) -> None:
        conn.execute(
            insert(doctors).values(
                id=str(e.originator_id),
                account_id=e.account_id,
                availability=None,
                updated_at=e.timestamp,
                **{"bio": "", **_doctor_values(e.profile)},
            )
        )

    @staticmethod
    def leave_taken(conn: Connection, e: Any) -> None:
        conn.execute(insert(doctor_leave).values(doctor_id=e.doctor_id, day=e.day, reason=e.reason))

    @staticmethod
    def leave_cancelled(conn: Connection, e: Any) -> None:
        conn.execute(delete(doctor_leave).where(doctor_leave.c.doctor_id == e.doctor_id, doctor_leave.c.day == e.day))


def _patient_values(profile: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "full_name" in profile:
        values["full_name"] = profile["full_name"]
    if "date_of_birth" in profile:
        values["date_of_birth"] = date.fromisoformat(profile["date_of_birth"]) if profile["date_of_birth"] else None
    if "phone" in profile:
        values["phone"] = profile["phone"]
    return values


class PatientDirectory(Projector):
    name = "patients"
    erased_by = {"patients": "id"}
    tables = (patients,)

    def __init__(self) -> None:
        self.handlers = {
            Patient.Registered.TOPIC: self.registered,
            Patient.ProfileUpdated.TOPIC: self.profile_updated,
        }

    @staticmethod
    def registered(conn: Connection, e: Any) -> None:
        conn.execute(
            insert(patients).values(
                id=str(e.originator_id),
                account_id=e.account_id,
                profile=e.profile,
                updated_at=e.timestamp,
                **{"full_name": "", **_patient_values(e.profile)},
            )
        )

    @staticmethod
    def profile_updated(conn: Connection, e: Any) -> None:
        row = conn.execute(patients.select().where(patients.c.id == str(e.originator_id))).one()
        _update(patients, conn, e, profile={**row.profile, **e.changes}, **_patient_values(e.changes))


class AppointmentBook(Projector):
    name = "appointments"
    tables = (appointments,)
    bulk = {Appointment.Booked.TOPIC: "booked_all"}

    def __init__(self) -> None:
        def status(value: Status) -> Any:
            return lambda conn, e: _update(appointments, conn, e, status=value.value, version=e.originator_version)

        self.handlers = {
            Appointment.Booked.TOPIC: self.booked,
            Appointment.Confirmed.TOPIC: status(Status.CONFIRMED),
            Appointment.ConsultationStarted.TOPIC: status(Status.IN_PROGRESS),
            Appointment.Cancelled.TOPIC: status(Status.CANCELLED),
            Appointment.Completed.TOPIC: status(Status.COMPLETED),
            Appointment.MarkedNoShow.TOPIC: status(Status.NO_SHOW),
            Appointment.Rescheduled.TOPIC: self.rescheduled,
            Appointment.StatusCorrected.TOPIC: lambda conn, e: _update(
                appointments, conn, e, status=e.status, version=e.originator_version
            ),
        }

    @classmethod
    def booked(cls, conn: Connection, e: Any) -> None:
        cls.booked_all(conn, [e])

    @staticmethod
    def booked_all(conn: Connection, events: list[Any]) -> None:
        conn.execute(
            insert(appointments),
            [
                {
                    "id": str(e.originator_id),
                    "doctor_id": e.doctor_id,
                    "patient_id": e.patient_id,
                    "start": e.start,
                    "end": e.end,
                    "day": e.day,
                    "status": Status.BOOKED.value,
                    "overbooked": e.overbooked,
                    "version": e.originator_version,
                    "booked_at": e.timestamp,
                    "updated_at": e.timestamp,
                }
                for e in events
            ],
        )

    @staticmethod
    def rescheduled(conn: Connection, e: Any) -> None:
        _update(
            appointments,
            conn,
            e,
            start=e.start,
            end=e.end,
            day=e.day,
            status=Status.BOOKED.value,
            overbooked=False,
            version=e.originator_version,
        )


def all_projectors() -> list[Projector]:
    projectors: list[Projector] = [
        AccountDirectory(), DoctorDirectory(), PatientDirectory(), AppointmentBook(), CareDirectory(),
        ConsultationRecords(), PrescriptionRecords(), ReadLog(), ErasureRequests(), UserActions(), InvoiceRecords(),
        PriceListRecords(),
    ]
    return [projector.erases_patients() for projector in projectors]
