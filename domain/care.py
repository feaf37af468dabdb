"""PatientCare: the doctors caring for one patient, the access each appointment gives its doctor, and every
emergency ("break-the-glass") opening of the record.

One stream per patient, so deciding who may see a record is one read, and every grant and end of access is
an event in the record's own audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.appointment import Appointment, VisitAccess
from domain.shared import Cause, ConflictError, InvalidInputError, stable_id

MIN_EMERGENCY_ACCESS = timedelta(minutes=1)
MAX_EMERGENCY_ACCESS = timedelta(hours=24)
MIN_REASON_LENGTH = 10


class Kind(StrEnum):
    PRIMARY = "primary_care"
    REFERRAL = "referral"
    TEMPORARY = "temporary"


class Basis(StrEnum):
    """Why a doctor may open a patient's record at a given moment."""

    PRIMARY = "primary_care"
    REFERRAL = "referral"
    TEMPORARY = "temporary"
    APPOINTMENT = "appointment"
    EMERGENCY = "emergency"


@dataclass(frozen=True)
class Relationship:
    relationship_id: str
    doctor_id: str
    kind: Kind
    reason: str
    started_at: datetime
    referring_doctor_id: str | None = None
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None

    def is_active(self, now: datetime) -> bool:
        return self.ended_at is None and (self.expires_at is None or now < self.expires_at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "relationship_id": self.relationship_id,
            "doctor_id": self.doctor_id,
            "kind": self.kind.value,
            "reason": self.reason,
            "started_at": self.started_at.isoformat(),
            "referring_doctor_id": self.referring_doctor_id,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "end_reason": self.end_reason,
        }


def post_visit_cutoff(now: datetime, after_visit: timedelta) -> datetime:
    """A completed visit still opens the record now if the appointment ended after this moment."""
    return now - after_visit


@dataclass(frozen=True)
class Visit:
    """The access one appointment gives its doctor, as of the appointment version that gave it."""

    appointment_id: str
    doctor_id: str
    access: VisitAccess
    appointment_version: int
    ends_at: datetime | None = None

    @classmethod
    def of(cls, appointment: Appointment) -> Visit:
        access = appointment.visit_access
        ends_at = appointment.end if access == VisitAccess.AFTER_VISIT else None
        return cls(str(appointment.id), appointment.doctor_id, access, appointment.visit_access_since, ends_at)

    def opens_record(self, now: datetime, after_visit: timedelta) -> bool:
        if self.access == VisitAccess.OPEN:
            return True
        return (
            self.access == VisitAccess.AFTER_VISIT
            and self.ends_at is not None
            and self.ends_at > post_visit_cutoff(now, after_visit)
        )


@dataclass(frozen=True)
class EmergencyAccess:
    grant_id: str
    doctor_id: str
    reason: str
    granted_at: datetime
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant_id,
            "doctor_id": self.doctor_id,
            "reason": self.reason,
            "granted_at": self.granted_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


class RelationshipExistsError(ConflictError):
    """Raised when the doctor already has an active relationship of that kind with the patient."""

    code = "relationship_exists"


class PrimaryCareTakenError(ConflictError):
    """Raised when another doctor is the patient's active primary care doctor."""

    code = "primary_care_taken"


class ForeignAppointmentError(InvalidInputError):
    """Raised when an appointment of another patient is tracked on this patient's care record."""

    code = "foreign_appointment"


class RelationshipNotFoundError(InvalidInputError):
    """Raised when a relationship id names no relationship of this patient."""

    code = "unknown_relationship"


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise InvalidInputError("Give a reason.", field="reason")


def care_id(patient_id: str) -> UUID:
    return stable_id("care", patient_id)


class PatientCare(Aggregate):
    TOPIC = "medledger:PatientCare"

    class Created(Aggregate.Created):
        TOPIC = "medledger:PatientCare.Created"

    @staticmethod
    def create_id(patient_id: str) -> UUID:
        return care_id(patient_id)

    @event("Opened", topic="medledger:PatientCare.Opened.v1")
    def __init__(self, patient_id: str, cause: dict[str, Any]) -> None:
        self.patient_id = patient_id
        self.relationships: dict[str, Relationship] = {}
        self.emergency: list[EmergencyAccess] = []
        self.visits: dict[str, Visit] = {}

    def start(
        self,
        relationship_id: str,
        doctor_id: str,
        kind: Kind,
        reason: str,
        now: datetime,
        cause: Cause,
        referring_doctor_id: str | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        """Starts a care relationship; repeating the same relationship id is a no-op."""
        if relationship_id in self.relationships:
            return
        _require_reason(reason)
        self._check_new(doctor_id, kind, now, referring_doctor_id, expires_at)
        self._started(
            relationship_id, doctor_id, kind.value, reason, now, referring_doctor_id, expires_at, cause.as_dict()
        )

    def _check_new(
        self, doctor_id: str, kind: Kind, now: datetime, referring_doctor_id: str | None, expires_at: datetime | None
    ) -> None:
        if kind == Kind.TEMPORARY and expires_at is None:
            raise InvalidInputError("A temporary relationship needs an expiry.", field="expires_at")
        if kind == Kind.PRIMARY and expires_at is not None:
            raise InvalidInputError("Primary care does not expire; end it instead.", field="expires_at")
        if expires_at is not None and expires_at <= now:
            raise InvalidInputError("The expiry must be in the future.", field="expires_at")
        if kind == Kind.REFERRAL and not referring_doctor_id:
            raise InvalidInputError("A referral names the referring doctor.", field="referring_doctor_id")
        if kind != Kind.REFERRAL and referring_doctor_id:
            raise InvalidInputError("Only a referral has a referring doctor.", field="referring_doctor_id")
        if referring_doctor_id == doctor_id:
            raise InvalidInputError("A doctor cannot refer a patient to themselves.", field="doctor_id")
        for current in self.active(now):
            if current.doctor_id == doctor_id and current.kind == kind:
                raise RelationshipExistsError(
                    f"Doctor {doctor_id} already has an active {kind.value} relationship with this patient.",
                    current=current.as_dict(),
                )
            if kind == Kind.PRIMARY and current.kind == Kind.PRIMARY:
                raise PrimaryCareTakenError(
                    "The patient already has a primary care doctor; end that relationship first.",
                    current=current.as_dict(),
                )

    def end(self, relationship_id: str, reason: str, now: datetime, cause: Cause) -> None:
        """Ends a relationship; ending one that has ended already is a no-op."""
        relationship = self.relationships.get(relationship_id)
        if relationship is None:
            raise RelationshipNotFoundError(
                f"This patient has no relationship {relationship_id}.", field="relationship_id"
            )
        if relationship.ended_at is not None:
            return
        _require_reason(reason)
        self._ended(relationship_id, reason, now, cause.as_dict())

    def break_glass(self, grant_id: str, doctor_id: str, reason: str, now: datetime, lasts: timedelta, cause: Cause) -> None:
        """Opens the record to a doctor for a limited time, on the reason they give."""
        if any(grant.grant_id == grant_id for grant in self.emergency):
            return
        if len(reason.strip()) < MIN_REASON_LENGTH:
            raise InvalidInputError(
                f"Give the reason for emergency access in at least {MIN_REASON_LENGTH} characters.", field="reason"
            )
        if not MIN_EMERGENCY_ACCESS <= lasts <= MAX_EMERGENCY_ACCESS:
            raise InvalidInputError("Emergency access lasts between 1 minute and 24 hours.", field="minutes")
        self._glass_broken(grant_id, doctor_id, reason, now, now + lasts, cause.as_dict())

    def track_visit(self, appointment: Appointment, cause: Cause) -> None:
        """Records the access the appointment now gives its doctor; nothing when that, or what a later version
        of the appointment gave, is recorded already.

        The access is recorded with the appointment version that gave it, so a copy of this record that is
        behind never mistakes an older, equal-looking access for the current one.
        """
        if appointment.patient_id != self.patient_id:
            raise ForeignAppointmentError(
                f"Appointment {appointment.id} is not of patient {self.patient_id}.", field="appointment_id"
            )
        visit = Visit.of(appointment)
        known = self.visits.get(visit.appointment_id)
        if known is not None and (known == visit or known.appointment_version > visit.appointment_version):
            return
        fields = (visit.appointment_id, visit.doctor_id, self.patient_id, visit.appointment_version)
        if visit.access == VisitAccess.OPEN:
            self._visit_opened(*fields, cause.as_dict())
        elif visit.access == VisitAccess.AFTER_VISIT:
            self._visit_completed(*fields, visit.ends_at, cause.as_dict())
        else:
            self._visit_closed(*fields, cause.as_dict())

    def active(self, now: datetime) -> list[Relationship]:
        return [r for r in self.relationships.values() if r.is_active(now)]

    def basis(self, doctor_id: str, now: datetime, after_visit: timedelta) -> Basis | None:
        """The strongest reason this doctor may open the record now, if any: a relationship, then an
        appointment (current, or completed within after_visit of its end), then emergency access."""
        kinds = {r.kind for r in self.active(now) if r.doctor_id == doctor_id}
        for kind in Kind:
            if kind in kinds:
                return Basis(kind.value)
        if any(v.doctor_id == doctor_id and v.opens_record(now, after_visit) for v in self.visits.values()):
            return Basis.APPOINTMENT
        if any(g.doctor_id == doctor_id and g.granted_at <= now < g.expires_at for g in self.emergency):
            return Basis.EMERGENCY
        return None

    def doctors(self, now: datetime) -> set[str]:
        return {r.doctor_id for r in self.active(now)}

    @event("RelationshipStarted", topic="medledger:PatientCare.RelationshipStarted.v1")
    def _started(
        self,
        relationship_id: str,
        doctor_id: str,
        kind: str,
        reason: str,
        started_at: datetime,
        referring_doctor_id: str | None,
        expires_at: datetime | None,
        cause: dict[str, Any],
    ) -> None:
        self.relationships[relationship_id] = Relationship(
            relationship_id, doctor_id, Kind(kind), reason, started_at, referring_doctor_id, expires_at
        )

    @event("RelationshipEnded", topic="medledger:PatientCare.RelationshipEnded.v1")
    def _ended(self, relationship_id: str, reason: str, ended_at: datetime, cause: dict[str, Any]) -> None:
        current = self.relationships[relationship_id]
        self.relationships[relationship_id] = replace(current, ended_at=ended_at, end_reason=reason)

    @event("EmergencyAccessGranted", topic="medledger:PatientCare.EmergencyAccessGranted.v1")
    def _glass_broken(
        self, grant_id: str, doctor_id: str, reason: str, granted_at: datetime, expires_at: datetime, cause: dict[str, Any]
    ) -> None:
        self.emergency.append(EmergencyAccess(grant_id, doctor_id, reason, granted_at, expires_at))

    @event("VisitOpened", topic="medledger:PatientCare.VisitOpened.v1")
    def _visit_opened(
        self, appointment_id: str, doctor_id: str, patient_id: str, appointment_version: int, cause: dict[str, Any]
    ) -> None:
        self.visits[appointment_id] = Visit(appointment_id, doctor_id, VisitAccess.OPEN, appointment_version)

    @event("VisitCompleted", topic="medledger:PatientCare.VisitCompleted.v1")
    def _visit_completed(
        self,
        appointment_id: str,
        doctor_id: str,
        patient_id: str,
        appointment_version: int,
        ends_at: datetime,
        cause: dict[str, Any],
    ) -> None:
        self.visits[appointment_id] = Visit(
            appointment_id, doctor_id, VisitAccess.AFTER_VISIT, appointment_version, ends_at
        )

    @event("VisitClosed", topic="medledger:PatientCare.VisitClosed.v1")
    def _visit_closed(
        self, appointment_id: str, doctor_id: str, patient_id: str, appointment_version: int, cause: dict[str, Any]
    ) -> None:
        self.visits[appointment_id] = Visit(appointment_id, doctor_id, VisitAccess.NONE, appointment_version)
