"""DoctorCalendar: one doctor's bookings and leave for one local day; it forbids double booking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import Cause, ConflictError, overlaps, stable_id


class SlotTakenError(ConflictError):
    """Raised when the doctor already has a booking overlapping the requested time."""

    code = "slot_taken"


class DoctorOnLeaveError(ConflictError):
    """Raised when booking a doctor on a day of leave."""

    code = "doctor_on_leave"


class LeaveClashesWithBookingsError(ConflictError):
    """Raised when leave is requested for a day that still has active bookings."""

    code = "leave_clashes_with_bookings"


@dataclass(frozen=True)
class Booking:
    appointment_id: str
    patient_id: str
    start: datetime
    end: datetime
    overbooked: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "appointment_id": self.appointment_id,
            "patient_id": self.patient_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "overbooked": self.overbooked,
        }


class DoctorCalendar(Aggregate):
    TOPIC = "medledger:DoctorCalendar"

    class Created(Aggregate.Created):
        TOPIC = "medledger:DoctorCalendar.Created"

    @staticmethod
    def create_id(doctor_id: str, day: date) -> UUID:
        return stable_id("doctor-calendar", doctor_id, day.isoformat())

    @event("Opened", topic="medledger:DoctorCalendar.Opened.v1")
    def __init__(self, doctor_id: str, day: date, cause: dict[str, Any]) -> None:
        self.doctor_id = doctor_id
        self.day = day
        self.bookings: dict[str, Booking] = {}
        self.leave_reason: str | None = None

    def booking_of(self, patient_id: str, start: datetime) -> Booking | None:
        return next((b for b in self.bookings.values() if b.patient_id == patient_id and b.start == start), None)

    def book(
        self,
        appointment_id: str,
        patient_id: str,
        start: datetime,
        end: datetime,
        overbook_reason: str | None,
        cause: Cause,
    ) -> None:
        if self.leave_reason is not None:
            raise DoctorOnLeaveError(
                f"The doctor is on leave on {self.day.isoformat()}.",
                current={"day": self.day.isoformat(), "leave_reason": self.leave_reason},
            )
        clashes = [b for b in self.bookings.values() if overlaps(b.start, b.end, start, end)]
        if clashes and overbook_reason is None:
            raise SlotTakenError(
                f"The doctor already has a booking at {start.isoformat()}.",
                current={"bookings": [b.as_dict() for b in clashes]},
            )
        self._slot_booked(appointment_id, patient_id, start, end, bool(clashes), overbook_reason, cause.as_dict())

    def release(self, appointment_id: str, cause: Cause) -> None:
        if appointment_id in self.bookings:
            self._slot_released(appointment_id, cause.as_dict())

    def take_leave(self, reason: str, cause: Cause) -> None:
        if self.leave_reason is not None:
            return
        if self.bookings:
            raise LeaveClashesWithBookingsError(
                f"{len(self.bookings)} booking(s) on {self.day.isoformat()} must be cancelled or moved first.",
                current={"bookings": [b.as_dict() for b in self.bookings.values()]},
            )
        self._leave_taken(self.doctor_id, self.day, reason, cause.as_dict())

    def cancel_leave(self, reason: str, cause: Cause) -> None:
        if self.leave_reason is not None:
            self._leave_cancelled(self.doctor_id, self.day, reason, cause.as_dict())

    @event("SlotBooked", topic="medledger:DoctorCalendar.SlotBooked.v1")
    def _slot_booked(
        self,
        appointment_id: str,
        patient_id: str,
        start: datetime,
        end: datetime,
        overbooked: bool,
        overbook_reason: str | None,
        cause: dict[str, Any],
    ) -> None:
        self.bookings[appointment_id] = Booking(appointment_id, patient_id, start, end, overbooked)

    @event("SlotReleased", topic="medledger:DoctorCalendar.SlotReleased.v1")
    def _slot_released(self, appointment_id: str, cause: dict[str, Any]) -> None:
        del self.bookings[appointment_id]

    @event("LeaveTaken", topic="medledger:DoctorCalendar.LeaveTaken.v1")
    def _leave_taken(self, doctor_id: str, day: date, reason: str, cause: dict[str, Any]) -> None:
        self.leave_reason = reason

    @event("LeaveCancelled", topic="medledger:DoctorCalendar.LeaveCancelled.v1")
    def _leave_cancelled(self, doctor_id: str, day: date, reason: str, cause: dict[str, Any]) -> None:
        self.leave_reason = None
