"""Care commands: start and end a patient's care relationships, and break the glass in an emergency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import uuid4

from commands.access import record_access
from commands.base import Actor, Outcome, RecordNotFoundError, Services, load, load_or_open, require, retrying
from domain.care import Basis, Kind, PatientCare, RelationshipNotFoundError, care_id
from domain.doctors import Doctor
from domain.patients import Patient
from domain.shared import InvalidInputError, Role, require_aware


class UnknownDoctorError(InvalidInputError):
    """Raised when a relationship names a doctor who does not exist."""

    code = "unknown_doctor"


@dataclass(frozen=True)
class StartRelationship:
    patient_id: str
    doctor_id: str
    kind: Kind
    reason: str
    referring_doctor_id: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class EndRelationship:
    patient_id: str
    relationship_id: str
    reason: str


@dataclass(frozen=True)
class BreakGlass:
    patient_id: str
    reason: str
    minutes: int = 60


def _care(svc: Services, patient_id: str, actor: Actor) -> PatientCare:
    return load_or_open(
        svc.store, PatientCare, care_id(patient_id), patient_id=patient_id, cause=actor.cause.as_dict()
    )


def _require_doctor(svc: Services, doctor_id: str, field: str) -> None:
    if svc.store.find(Doctor, doctor_id) is None:
        raise UnknownDoctorError(f"No doctor {doctor_id}.", field=field)


def start_relationship(svc: Services, cmd: StartRelationship, actor: Actor) -> Outcome:
    """Admins start any relationship; a doctor caring for the patient refers them to another doctor."""
    access = record_access(svc, actor, cmd.patient_id)
    require(actor.is_(Role.ADMIN, Role.DOCTOR), "Only admins and doctors start care relationships.")
    referring_doctor_id = cmd.referring_doctor_id
    if actor.is_(Role.DOCTOR) and actor.profile_id is not None:
        require(cmd.kind == Kind.REFERRAL, "Doctors start referrals; admins start the other relationships.")
        require(referring_doctor_id in (None, actor.profile_id), "A doctor refers patients as themselves.")
        require(
            access.basis != Basis.EMERGENCY,
            "Only a doctor caring for the patient refers them; emergency access is not enough.",
        )
        referring_doctor_id = actor.profile_id
    expires_at = require_aware(cmd.expires_at, "expires_at") if cmd.expires_at is not None else None
    patient_id = access.patient_id
    _require_doctor(svc, cmd.doctor_id, "doctor_id")
    if referring_doctor_id:
        _require_doctor(svc, referring_doctor_id, "referring_doctor_id")
    relationship_id = str(uuid4())

    def decide() -> Outcome:
        care = _care(svc, patient_id, actor)
        care.start(
            relationship_id,
            cmd.doctor_id,
            cmd.kind,
            cmd.reason,
            svc.clock(),
            actor.cause,
            referring_doctor_id=referring_doctor_id,
            expires_at=expires_at,
        )
        return Outcome(relationship_id, svc.store.save(care), created=True)

    return retrying(svc.store, decide)


def end_relationship(svc: Services, cmd: EndRelationship, actor: Actor) -> Outcome:
    """Admins end any relationship; doctors end their own, and the referrals they made."""

    def decide() -> Outcome:
        patient_id = str(load(svc.store, Patient, cmd.patient_id, "patient").id)
        care = svc.store.find(PatientCare, care_id(patient_id))
        relationship = care.relationships.get(cmd.relationship_id) if care is not None else None
        party = relationship is not None and actor.is_(Role.DOCTOR) and actor.profile_id in (
            relationship.doctor_id,
            relationship.referring_doctor_id,
        )
        if not party:
            record_access(svc, actor, patient_id)
            require(actor.is_(Role.ADMIN), "Only an admin or the doctors of a relationship end it.")
        if care is None:
            raise RelationshipNotFoundError(
                f"This patient has no relationship {cmd.relationship_id}.", field="relationship_id"
            )
        care.end(cmd.relationship_id, cmd.reason, svc.clock(), actor.cause)
        return Outcome(cmd.relationship_id, svc.store.save(care))

    return retrying(svc.store, decide)


def break_glass(svc: Services, cmd: BreakGlass, actor: Actor) -> Outcome:
    """A doctor opens a patient's record in an emergency, for a limited time, giving the reason."""
    doctor_id = actor.profile_id
    require(actor.is_(Role.DOCTOR) and doctor_id is not None, "Only doctors break the glass.")
    patient = svc.store.find(Patient, cmd.patient_id)
    if patient is None:
        raise RecordNotFoundError(f"No patient {cmd.patient_id}.")
    patient_id = str(patient.id)
    try:
        lasts = timedelta(minutes=cmd.minutes)
    except OverflowError:
        raise InvalidInputError("Emergency access lasts at most 24 hours.", field="minutes") from None
    grant_id = str(uuid4())

    def decide() -> Outcome:
        care = _care(svc, patient_id, actor)
        care.break_glass(grant_id, str(doctor_id), cmd.reason, svc.clock(), lasts, actor.cause)
        return Outcome(grant_id, svc.store.save(care), created=True)

    return retrying(svc.store, decide)
