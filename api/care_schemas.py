"""Request and response bodies of care relationships and emergency ("break-the-glass") access."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas import Moment, Reason, Strict, _bounded
from domain.care import MAX_EMERGENCY_ACCESS, MIN_REASON_LENGTH, Kind

MAX_EMERGENCY_MINUTES = int(MAX_EMERGENCY_ACCESS.total_seconds() // 60)


class RelationshipStart(Strict):
    doctor_id: UUID = Field(description="The doctor who will care for the patient.")
    kind: Kind
    reason: Reason
    referring_doctor_id: UUID | None = Field(
        default=None, description="Referrals only: admins name the referring doctor; a doctor refers as themselves."
    )
    expires_at: Moment | None = Field(default=None, description="Required for temporary care; never for primary care.")


class RelationshipEnd(Strict):
    reason: Reason


class EmergencyAccessRequest(Strict):
    reason: _bounded(500, minimum=MIN_REASON_LENGTH, multiline=True) = Field(description="Why the record must be opened.")  # type: ignore[valid-type]
    minutes: Annotated[int, Field(ge=1, le=MAX_EMERGENCY_MINUTES)] = 60


class RelationshipPublic(BaseModel):
    id: str
    patient_id: str
    doctor_id: str
    kind: Kind
    reason: str
    referring_doctor_id: str | None
    started_at: datetime
    expires_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    active: bool


class EmergencyAccessPublic(BaseModel):
    id: str
    patient_id: str
    doctor_id: str
    reason: str
    granted_at: datetime
    expires_at: datetime
    active: bool
