"""Appointment: one booking's lifecycle, from booked to completed, cancelled or no-show."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import Cause, ConflictError, InvalidInputError, InvalidTransitionError


class Status(StrEnum):
    BOOKED = "booked"
    CONFIRMED = "confirmed"
    IN_PROGRESS = "in_progress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


ACTIVE = frozenset({Status.BOOKED, Status.CONFIRMED})
ATTENDANCE = frozenset({Status.COMPLETED, Status.NO_SHOW})
CORRECTABLE = frozenset({Status.BOOKED, Status.CONFIRMED, Status.COMPLETED, Status.NO_SHOW})
HOLDING_SLOT = ACTIVE | {Status.IN_PROGRESS}


class CancellationWindowClosedError(ConflictError):
    """Raised when a patient cancels or reschedules after the cut-off before the start."""

    code = "cancellation_window_closed"


class NotStartedError(ConflictError):
    """Raised when attendance is recorded for an appointment that has not started yet."""

    code = "appointment_not_started"


class InvalidCorrectionError(InvalidInputError):
    """Raised when a status correction names a status that cannot be corrected to."""

    code = "invalid_correction"


class Appointment(Aggregate):
    TOPIC = "medledger:Appointment"

    class Created(Aggregate.Created):
        TOPIC = "medledger:Appointment.Created"

    @event("Booked", topic="medledger:Appointment.Booked.v1")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - chosen by the caller so the calendar can refer to it first
        doctor_id: str,
        patient_id: str,
        start: datetime,
        end: datetime,
        day: date,
        overbooked: bool,
        reason: str | None,
        cause: dict[str, Any],
    ) -> None:
        self.doctor_id = doctor_id
        self.patient_id = patient_id
        self.start = start
        self.end = end
        self.day = day
        self.overbooked = overbooked
        self.status = Status.BOOKED
        self.consultation_id: str | None = None

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    def confirm(self, cause: Cause) -> None:
        if self.status == Status.CONFIRMED:
            return
        self._require(Status.BOOKED, action="confirm")
        self._confirmed(cause.as_dict())

    def cancel(self, reason: str, now: datetime, deadline: datetime | None, cause: Cause) -> None:
        """Cancels; deadline is the last moment this caller may still cancel, if any."""
        if self.status == Status.CANCELLED:
            return
        self._require(*ACTIVE, action="cancel")
        self._check_deadline(now, deadline, action="cancelled")
        self._cancelled(reason, cause.as_dict())

    def check_reschedulable(self, now: datetime, deadline: datetime | None) -> None:
        self._require(*ACTIVE, action="reschedule")
        self._check_deadline(now, deadline, action="rescheduled")

    def reschedule(self, start: datetime, end: datetime, day: date, reason: str, cause: Cause) -> None:
        self._require(*ACTIVE, action="reschedule")
        self._rescheduled(self.start, self.end, start, end, day, reason, cause.as_dict())

    def start_consultation(self, consultation_id: str, now: datetime, cause: Cause) -> None:
        """The doctor begins the encounter; from then on it can only be completed."""
        if self.status == Status.IN_PROGRESS and self.consultation_id == consultation_id:
            return
        self._require(*ACTIVE, action="start a consultation for")
        self._consultation_started(consultation_id, now, cause.as_dict())

    def complete(self, now: datetime, cause: Cause) -> None:
        if self.status == Status.COMPLETED:
            return
        self._require(*HOLDING_SLOT, action="complete")
        self._check_started(now)
        self._completed(cause.as_dict())

    def mark_no_show(self, now: datetime, cause: Cause) -> None:
        if self.status == Status.NO_SHOW:
            return
        self._require(*ACTIVE, action="mark as no-show")
        self._check_started(now)
        self._marked_no_show(cause.as_dict())

    def correct_status(self, status: Status, reason: str, now: datetime, cause: Cause) -> None:
        if status == self.status:
            return
        if status not in CORRECTABLE:
            raise InvalidCorrectionError(
                f"A status can be corrected only to one of {sorted(CORRECTABLE)}; cancel or book instead.",
                field="status",
            )
        self._require(*CORRECTABLE, Status.IN_PROGRESS, action="correct")
        if status in ATTENDANCE:
            self._check_started(now)
        self._status_corrected(self.status.value, status.value, reason, cause.as_dict())

    def summary(self) -> dict[str, Any]:
        return {
            "appointment_id": str(self.id),
            "status": self.status.value,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }

    def _require(self, *allowed: Status, action: str) -> None:
        if self.status not in allowed:
            raise InvalidTransitionError(
                f"Cannot {action} an appointment that is {self.status.value}.", current=self.summary()
            )

    def _check_deadline(self, now: datetime, deadline: datetime | None, action: str) -> None:
        if deadline is not None and now > deadline:
            raise CancellationWindowClosedError(
                f"This appointment can no longer be {action} by you; the cut-off was {deadline.isoformat()}.",
                current=self.summary(),
            )

    def _check_started(self, now: datetime) -> None:
        if now < self.start:
            raise NotStartedError("The appointment has not started yet.", current=self.summary())

    @event("Confirmed", topic="medledger:Appointment.Confirmed.v1")
    def _confirmed(self, cause: dict[str, Any]) -> None:
        self.status = Status.CONFIRMED

    @event("Cancelled", topic="medledger:Appointment.Cancelled.v1")
    def _cancelled(self, reason: str, cause: dict[str, Any]) -> None:
        self.status = Status.CANCELLED

    @event("Rescheduled", topic="medledger:Appointment.Rescheduled.v1")
    def _rescheduled(
        self,
        previous_start: datetime,
        previous_end: datetime,
        start: datetime,
        end: datetime,
        day: date,
        reason: str,
        cause: dict[str, Any],
    ) -> None:
        self.start = start
        self.end = end
        self.day = day
        self.overbooked = False
        self.status = Status.BOOKED

    @event("ConsultationStarted", topic="medledger:Appointment.ConsultationStarted.v1")
    def _consultation_started(self, consultation_id: str, started_at: datetime, cause: dict[str, Any]) -> None:
        self.consultation_id = consultation_id
        self.status = Status.IN_PROGRESS

    @event("Completed", topic="medledger:Appointment.Completed.v1")
    def _completed(self, cause: dict[str, Any]) -> None:
        self.status = Status.COMPLETED

    @event("MarkedNoShow", topic="medledger:Appointment.MarkedNoShow.v1")
    def _marked_no_show(self, cause: dict[str, Any]) -> None:
        self.status = Status.NO_SHOW

    @event("StatusCorrected", topic="medledger:Appointment.StatusCorrected.v1")
    def _status_corrected(self, previous_status: str, status: str, reason: str, cause: dict[str, Any]) -> None:
        self.status = Status(status)
