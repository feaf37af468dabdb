"""Request bodies of the consultation routes: shapes and bounds; the clinical rules are the domain's."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from api.schemas import CalendarDay, Moment, Reason, Strict, Text, _bounded
from domain.attachments import AttachmentKind
from domain.consultation import DiagnosisStatus, Kind, Rank, Severity

ClinicalText = _bounded(20_000)
Number = Annotated[float, Field(allow_inf_nan=False, strict=True)]  # strict: true is not a weight of 1 kg
Measure = Number | None
ChangeValue = Number | _bounded(20_000, minimum=0) | None  # type: ignore[valid-type]


class ConsultationStart(Strict):
    appointment_id: UUID | None = Field(default=None, description="Start the consultation of this appointment.")
    patient_id: UUID | None = Field(default=None, description="A walk-in: the patient seen without an appointment.")
    kind: Kind = Kind.IN_PERSON

    @model_validator(mode="after")
    def one_origin(self) -> ConsultationStart:
        if (self.appointment_id is None) == (self.patient_id is None):
            raise ValueError("give either appointment_id or, for a walk-in, patient_id")
        return self


class ComplaintRecord(Strict):
    text: _bounded(2000)  # type: ignore[valid-type]


class SymptomRecord(Strict):
    name: Text
    onset: Moment | CalendarDay | None = Field(default=None, description="A date, or a date-time with its offset.")
    severity: Severity
    duration: _bounded(100) | None = Field(default=None, description="Free text, e.g. '3 days'.")  # type: ignore[valid-type]


class VitalSignsRecord(Strict):
    """Units are fixed: mmHg, bpm, °C, breaths/min, %, kg, cm."""

    systolic: Measure = None
    diastolic: Measure = None
    pulse: Measure = None
    temperature: Measure = None
    respiratory_rate: Measure = None
    spo2: Measure = None
    weight: Measure = None
    height: Measure = None
    measured_at: Moment | None = Field(default=None, description="Defaults to now.")

    def measures(self) -> dict[str, Any]:
        return self.model_dump(exclude={"measured_at"}, exclude_none=True)


class DiagnosisRecord(Strict):
    code: _bounded(12)  # type: ignore[valid-type]
    description: _bounded(500)  # type: ignore[valid-type]
    rank: Rank = Rank.SECONDARY
    status: DiagnosisStatus = DiagnosisStatus.PROVISIONAL


class NoteAdd(Strict):
    text: ClinicalText


class FollowUpRecommend(Strict):
    date: CalendarDay
    reason: Reason


class FollowUpBook(Strict):
    start: Moment


class AmendmentRecord(Strict):
    entry_id: _bounded(36)  # type: ignore[valid-type]
    changes: Annotated[dict[_bounded(40), ChangeValue], Field(min_length=1, max_length=12)]  # type: ignore[valid-type]
    reason: Reason


class AttachmentUpload(BaseModel):
    """What an upload's idempotency fingerprint covers: the form fields and the content's hash."""

    kind: AttachmentKind
    filename: str
    content_type: str | None
    sha256: str
