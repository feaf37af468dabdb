"""Request bodies of the consultation routes: shapes and bounds; the clinical rules are the domain's."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas import CalendarDay, Moment, Reason, Strict, Text, _bounded
from domain import vitals
from domain.attachments import AttachmentKind
from domain.consultation import ICD10_AS_WRITTEN, DiagnosisStatus, Kind, Rank, Severity

ClinicalText = _bounded(20_000, multiline=True)
Number = Annotated[float, Field(allow_inf_nan=False, strict=True)]  # strict: true is not a weight of 1 kg


def measure(name: str) -> Any:
    """A vital sign in its unit; the schema shows the possible range, and the domain refuses a value outside it
    with impossible_vital_sign."""
    low, high = vitals.LIMITS[name].possible
    unit = vitals.LIMITS[name].unit
    return Annotated[Number | None, Field(description=unit, json_schema_extra={"minimum": low, "maximum": high})]


class ConsultationStart(Strict):
    """Either appointment_id or, for a walk-in, patient_id."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["appointment_id"]}, {"required": ["patient_id"]}]})

    appointment_id: UUID = Field(default=None, description="Start the consultation of this appointment.")  # type: ignore[assignment]
    patient_id: UUID = Field(default=None, description="A walk-in: the patient seen without an appointment.")  # type: ignore[assignment]
    kind: Kind = Kind.IN_PERSON

    @model_validator(mode="after")
    def one_origin(self) -> ConsultationStart:
        if (self.appointment_id is None) == (self.patient_id is None):
            raise ValueError("give either appointment_id or, for a walk-in, patient_id")
        return self


class ComplaintRecord(Strict):
    text: _bounded(2000, multiline=True)  # type: ignore[valid-type]


class SymptomRecord(Strict):
    name: Text
    onset: Moment | CalendarDay | None = Field(default=None, description="A date, or a date-time with its offset.")
    severity: Severity
    duration: _bounded(100) | None = Field(default=None, description="Free text, e.g. '3 days'.")  # type: ignore[valid-type]


class VitalSignsRecord(Strict):
    """Units are fixed: mmHg, bpm, °C, breaths/min, %, kg, cm."""

    systolic: measure("systolic") = None  # type: ignore[valid-type]
    diastolic: measure("diastolic") = None  # type: ignore[valid-type]
    pulse: measure("pulse") = None  # type: ignore[valid-type]
    temperature: measure("temperature") = None  # type: ignore[valid-type]
    respiratory_rate: measure("respiratory_rate") = None  # type: ignore[valid-type]
    spo2: measure("spo2") = None  # type: ignore[valid-type]
    weight: measure("weight") = None  # type: ignore[valid-type]
    height: measure("height") = None  # type: ignore[valid-type]
    measured_at: Moment | None = Field(default=None, description="Defaults to now.")

    def measures(self) -> dict[str, Any]:
        return self.model_dump(exclude={"measured_at"}, exclude_none=True)


class DiagnosisRecord(Strict):
    code: _bounded(12, pattern=ICD10_AS_WRITTEN) = Field(description="ICD-10, e.g. J06.9 (or j069).")  # type: ignore[valid-type]
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


class AmendmentChanges(Strict):
    """The fields to correct, with their new values: an entry's own fields only (a complaint or note: text; a
    symptom: name, onset, severity, duration; vital signs: measured_at and the measures; a diagnosis: code,
    description, rank, status). A null clears an optional value."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    text: ClinicalText = None  # type: ignore[assignment]
    name: Text = None  # type: ignore[assignment]
    onset: Moment | CalendarDay | None = None
    severity: Severity = None  # type: ignore[assignment]
    duration: _bounded(100) | None = None  # type: ignore[valid-type]
    code: _bounded(12, pattern=ICD10_AS_WRITTEN) = None  # type: ignore[valid-type]
    description: _bounded(500) = None  # type: ignore[valid-type]
    rank: Rank = None  # type: ignore[assignment]
    status: DiagnosisStatus = None  # type: ignore[assignment]
    measured_at: Moment = None  # type: ignore[assignment]
    systolic: measure("systolic") = None  # type: ignore[valid-type]
    diastolic: measure("diastolic") = None  # type: ignore[valid-type]
    pulse: measure("pulse") = None  # type: ignore[valid-type]
    temperature: measure("temperature") = None  # type: ignore[valid-type]
    respiratory_rate: measure("respiratory_rate") = None  # type: ignore[valid-type]
    spo2: measure("spo2") = None  # type: ignore[valid-type]
    weight: measure("weight") = None  # type: ignore[valid-type]
    height: measure("height") = None  # type: ignore[valid-type]

    def given(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class AmendmentRecord(Strict):
    entry_id: _bounded(36)  # type: ignore[valid-type]
    changes: AmendmentChanges
    reason: Reason
    effective_at: Moment | None = Field(
        default=None,
        description="A symptom or diagnosis only: when the change happened clinically (a diagnosis resolved on 3 March); "
        "before it the previous values stay what was true. Without it the amendment corrects the entry: the new values "
        "were true whenever the entry was.",
    )


class AttachmentUpload(BaseModel):
    """What an upload's idempotency fingerprint covers: the form fields and the content's hash."""

    kind: AttachmentKind
    filename: str
    content_type: str | None
    sha256: str
