"""PatientAgenda: one patient's holds for one UTC day; it forbids overlapping bookings of a patient."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.doctor_calendar import Booking
from domain.shared import Cause, ConflictError, overlaps, stable_id


class PatientDoubleBookedError(ConflictError):
    """Raised when the patient already holds a booking overlapping the requested time."""

    code = "patient_double_booked"


class PatientAgenda(Aggregate):
    TOPIC = "medledger:PatientAgenda"

    class Created(Aggregate.Created):
        TOPIC = "medledger:PatientAgenda.Created"

    @staticmethod
    def create_id(patient_id: str, day: date) -> UUID:
        return stable_id("patient-agenda", patient_id, day.isoformat())

    @event("Opened", topic="medledger:PatientAgenda.Opened.v1")
    def __init__(self, patient_id: str, day: date, cause: dict[str, Any]) -> None:
        self.patient_id = patient_id
        self.day = day
        self.holds: dict[str, Booking] = {}

    def hold(self, appointment_id: str, start: datetime, end: datetime, cause: Cause) -> None:
        clashes = [
            h for h in self.holds.values() if h.appointment_id != appointment_id and overlaps(h.start, h.end, start, end)
        ]
        if clashes:
            raise PatientDoubleBookedError(
                "The patient already has an appointment at that time.",
                current={"bookings": [h.as_dict() for h in clashes]},
            )
        self._held(appointment_id, start, end, cause.as_dict())

    def release(self, appointment_id: str, cause: Cause) -> None:
        if appointment_id in self.holds:
            self._released(appointment_id, cause.as_dict())

    @event("Held", topic="medledger:PatientAgenda.Held.v1")
    def _held(self, appointment_id: str, start: datetime, end: datetime, cause: dict[str, Any]) -> None:
        self.holds[appointment_id] = Booking(appointment_id, self.patient_id, start, end, False)

    @event("Released", topic="medledger:PatientAgenda.Released.v1")
    def _released(self, appointment_id: str, cause: dict[str, Any]) -> None:
        del self.holds[appointment_id]
