"""Request and response bodies of prescriptions and medication reminders."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas import CommandResult, LongText, Reason, Strict, Text, TimeZoneName, _bounded
from commands.prescriptions import ItemSpec
from domain.medication_safety import FindingKind, Severity
from domain.prescription import (
    MAX_DURATION_DAYS,
    MAX_ITEMS,
    MAX_QUANTITY,
    MAX_REFILLS,
    MIN_OVERRIDE_LENGTH,
    Frequency,
    Route,
    Status,
)

ItemId = _bounded(64, pattern=r"^[A-Za-z0-9_.:-]+$")
Strength = _bounded(100)
Form = _bounded(50)
Dose = _bounded(100)


class Medication(Strict):
    name: Text = Field(description="Generic name; brand names are not mapped by the interaction checker.")
    strength: Strength  # type: ignore[valid-type]
    form: Form  # type: ignore[valid-type]


class PrescriptionItem(Strict):
    item_id: ItemId | None = Field(default=None, description="Made up when left out.")  # type: ignore[valid-type]
    medication: Medication
    dose: Dose  # type: ignore[valid-type]
    route: Route
    frequency: Frequency
    duration_days: Annotated[int, Field(ge=1, le=MAX_DURATION_DAYS)]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
    refills: Annotated[int, Field(ge=0, le=MAX_REFILLS)] = 0
    instructions: LongText = ""

    def spec(self) -> ItemSpec:
        return ItemSpec(
            name=self.medication.name,
            strength=self.medication.strength,
            form=self.medication.form,
            dose=self.dose,
            route=self.route,
            frequency=self.frequency,
            duration_days=self.duration_days,
            quantity=self.quantity,
            refills=self.refills,
            instructions=self.instructions,
            item_id=self.item_id,
        )


Items = Annotated[list[PrescriptionItem], Field(min_length=1, max_length=MAX_ITEMS)]


class PrescriptionWrite(Strict):
    consultation_id: UUID
    items: Items
    timezone: TimeZoneName | None = Field(
        default=None, description="IANA zone of the dosing times; defaults to the doctor's availability zone, else UTC."
    )

    def specs(self) -> tuple[ItemSpec, ...]:
        return tuple(item.spec() for item in self.items)


class PrescriptionItemsUpdate(Strict):
    items: Items

    def specs(self) -> tuple[ItemSpec, ...]:
        return tuple(item.spec() for item in self.items)


class PrescriptionIssue(Strict):
    override_reason: _bounded(500, minimum=MIN_OVERRIDE_LENGTH, multiline=True) | None = Field(  # type: ignore[valid-type]
        default=None, description="Required to issue despite severe interactions or allergies."
    )


class PrescriptionDispense(Strict):
    item_id: ItemId  # type: ignore[valid-type]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY * (1 + MAX_REFILLS))]


class PrescriptionCancel(Strict):
    reason: Reason


class PrescriptionRenew(Strict):
    consultation_id: UUID | None = Field(
        default=None, description="Your consultation with the patient; defaults to the original one for its own doctor."
    )


class PrescriptionItemPublic(BaseModel):
    item_id: str
    medication: dict[str, str]
    dose: str
    route: Route
    frequency: Frequency
    duration_days: int
    quantity: int
    refills: int
    instructions: str
    dispensed: int
    remaining: int


class PrescriptionPublic(BaseModel):
    id: str
    patient_id: str
    doctor_id: str
    consultation_id: str
    status: Status
    timezone: str
    written_at: datetime
    issued_at: datetime | None
    valid_until: date | None
    override_reason: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    expired_at: datetime | None
    renewed_from: str | None
    renewed_by: str | None
    items: list[PrescriptionItemPublic]
    dispensings: list[dict[str, Any]]
    checks: list[dict[str, Any]] = Field(description="Every safety check as the doctor was shown it: table version, findings, override.")
    hazard_flagged: bool
    new_hazards: list[dict[str, Any]]
    version: int


class FindingPublic(BaseModel):
    kind: FindingKind
    severity: Severity
    severe: bool = Field(description="Contraindicated or major: issue needs an override reason.")
    drugs: list[str] = Field(description="The medications involved, as the checker matched them.")
    effect: str
    sources: list[str]
    rule: str = Field(description="The table entry that matched.")
    allergy: str | None = Field(description="For an allergy finding, the recorded allergy it matched.")


class SafetyCheckResult(CommandResult):
    table_version: str = Field(description="The interaction table the check ran against.")
    medications: list[str] = Field(description="The medications checked.")
    allergies_checked: list[str] = Field(description="The patient's recorded allergies, as the checker read them.")
    findings: list[FindingPublic] = Field(description="Every interaction and allergy found; empty when none.")
    checked_at: datetime = Field(description="When the check was recorded (a repeat on the same inputs answers that check).")


class ReminderPublic(BaseModel):
    prescription_id: str
    patient_id: str
    item_id: str
    medication: str
    strength: str
    dose: str
    route: str
    instructions: str
    due_at: datetime
    local_time: str
