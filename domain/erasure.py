"""PatientErasure: a patient's right to erasure (GDPR Art. 17) as a reviewed decision.

An admin requests it with its legal ground; a second admin approves it or any admin rejects it (medical records
must often be kept: Art. 17(3)(c) and (3)(b), with national retention laws). Approval is final: it destroys the
patient's data key, so every record of theirs reads as erased from then on. This stream names the patient but holds
no personal data of theirs, and it is kept after the erasure: it is the proof that the erasure was lawful.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import Cause, ConflictError, ForbiddenError, GoneError, InvalidInputError, stable_id

MIN_REASON_LENGTH = 10
MAX_TEXT_LENGTH = 2000


class LegalBasis(StrEnum):
    """The grounds of Art. 17(1) GDPR."""

    NO_LONGER_NECESSARY = "no_longer_necessary"  # (a)
    CONSENT_WITHDRAWN = "consent_withdrawn"  # (b)
    OBJECTION = "objection"  # (c)
    UNLAWFULLY_PROCESSED = "unlawfully_processed"  # (d)
    LEGAL_OBLIGATION = "legal_obligation"  # (e)
    CHILD_INFORMATION_SOCIETY_SERVICE = "child_information_society_service"  # (f)


@dataclass(frozen=True)
class ErasedEvent:
    """An event whose patient's data was erased: where it stands in its record's history, and nothing else."""

    originator_id: UUID
    originator_version: int
    topic: str
    patient_id: str


class RecordErasedError(GoneError):
    code = "erased"


class ErasureStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    REJECTED = "rejected"
    ERASED = "erased"


class SelfApprovalError(ForbiddenError):
    code = "second_admin_required"


class ErasureConflictError(ConflictError):
    code = "erasure_conflict"


@dataclass(frozen=True)
class ErasureRequest:
    request_id: str
    legal_basis: LegalBasis
    reason: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision: str | None = None  # "approved" or "rejected"
    decision_note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "legal_basis": self.legal_basis.value,
            "reason": self.reason,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at.isoformat(),
            "decision": self.decision,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decision_note": self.decision_note,
        }


def _text(value: str, field: str, minimum: int) -> str:
    text = value.strip()
    if len(text) < minimum:
        raise InvalidInputError(f"{field} needs at least {minimum} characters.", field=field)
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidInputError(f"{field} is at most {MAX_TEXT_LENGTH} characters.", field=field)
    return text


class PatientErasure(Aggregate):
    """One stream per patient: every request for their erasure and its decision, oldest first."""

    TOPIC = "medledger:PatientErasure"
    KEPT_AFTER_ERASURE = True

    class Created(Aggregate.Created):
        TOPIC = "medledger:PatientErasure.Created"

    @staticmethod
    def create_id(patient_id: str) -> UUID:
        return stable_id("erasure", patient_id)

    @event("Opened", topic="medledger:PatientErasure.Opened.v1")
    def __init__(self, patient_id: str, cause: dict[str, Any]) -> None:
        self.patient_id = patient_id
        self.requests: tuple[ErasureRequest, ...] = ()

    @property
    def pending(self) -> ErasureRequest | None:
        last = self.requests[-1] if self.requests else None
        return last if last is not None and last.decision is None else None

    @property
    def status(self) -> ErasureStatus:
        if not self.requests:
            return ErasureStatus.NONE
        decision = self.requests[-1].decision
        return {None: ErasureStatus.PENDING, "approved": ErasureStatus.ERASED}.get(decision, ErasureStatus.REJECTED)

    def view(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "status": self.status.value,
            "version": self.version,
            "requests": [request.as_dict() for request in reversed(self.requests)],
        }

    def _refuse_unless_open(self) -> None:
        if self.status == ErasureStatus.ERASED:
            raise ErasureConflictError("This patient's data was already erased.", current=self.view())

    def request(self, request_id: str, legal_basis: LegalBasis, reason: str, now: datetime, cause: Cause) -> None:
        self._refuse_unless_open()
        if self.pending is not None:
            raise ErasureConflictError("An erasure request for this patient is waiting for a decision.", current=self.view())
        self._requested(request_id, self.patient_id, legal_basis.value, _text(reason, "reason", MIN_REASON_LENGTH), now, cause.as_dict())

    def approve(self, note: str, now: datetime, cause: Cause) -> None:
        pending = self._pending_or_refuse()
        if cause.user_id == pending.requested_by:
            raise SelfApprovalError(
                "An erasure is approved by a second admin: the admin who requested it cannot approve it.",
                current=self.view(),
            )
        self._approved(pending.request_id, self.patient_id, _text(note, "note", MIN_REASON_LENGTH), now, cause.as_dict())

    def reject(self, reason: str, now: datetime, cause: Cause) -> None:
        pending = self._pending_or_refuse()
        self._rejected(pending.request_id, self.patient_id, _text(reason, "reason", MIN_REASON_LENGTH), now, cause.as_dict())

    def _pending_or_refuse(self) -> ErasureRequest:
        self._refuse_unless_open()
        pending = self.pending
        if pending is None:
            raise ErasureConflictError("No erasure request of this patient is waiting for a decision.", current=self.view())
        return pending

    @event("Requested", topic="medledger:PatientErasure.Requested.v1")
    def _requested(self, request_id: str, patient_id: str, legal_basis: str, reason: str, requested_at: datetime, cause: dict[str, Any]) -> None:
        request = ErasureRequest(request_id, LegalBasis(legal_basis), reason, cause["user_id"], requested_at)
        self.requests = (*self.requests, request)

    @event("Approved", topic="medledger:PatientErasure.Approved.v1")
    def _approved(self, request_id: str, patient_id: str, note: str, decided_at: datetime, cause: dict[str, Any]) -> None:
        self._decide("approved", note, decided_at, cause)

    @event("Rejected", topic="medledger:PatientErasure.Rejected.v1")
    def _rejected(self, request_id: str, patient_id: str, reason: str, decided_at: datetime, cause: dict[str, Any]) -> None:
        self._decide("rejected", reason, decided_at, cause)

    def _decide(self, decision: str, note: str, decided_at: datetime, cause: dict[str, Any]) -> None:
        last = self.requests[-1]
        decided = ErasureRequest(
            last.request_id, last.legal_basis, last.reason, last.requested_by, last.requested_at,
            cause["user_id"], decided_at, decision, note,
        )
        self.requests = (*self.requests[:-1], decided)
