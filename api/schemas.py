"""Request and response bodies: the shape checks that give 422 with the field and the reason."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from domain.appointment import Status
from domain.shared import Role

EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2999, 12, 31)


def _printable(value: str) -> str:
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise ValueError("must not contain control characters")
    return value


def _within_calendar(value: datetime) -> datetime:
    try:
        day = value.astimezone(timezone.utc).date()
    except OverflowError:
        day = date.min
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(f"must fall between {EARLIEST_DAY} and {LATEST_DAY}")
    return value


def _local_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("working hours are local times, without a UTC offset")
    return value


def _bounded(length: int, minimum: int = 1, pattern: str | None = None) -> Any:
    constraints = StringConstraints(strip_whitespace=True, min_length=minimum, max_length=length, pattern=pattern)
    return Annotated[str, constraints, AfterValidator(_printable)]


Text = _bounded(200)
LongText = _bounded(4000, minimum=0)
Reason = _bounded(500, minimum=3)
Phone = _bounded(20, minimum=6, pattern=r"^\+?[0-9 ()-]{6,20}$")
Password = Annotated[str, StringConstraints(min_length=10, max_length=128)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CalendarDay = Annotated[date, Field(ge=EARLIEST_DAY, le=LATEST_DAY)]
Moment = Annotated[AwareDatetime, AfterValidator(_within_calendar)]
LocalTime = Annotated[time, AfterValidator(_local_time)]
_PLAIN_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_CALENDAR_DAY: TypeAdapter[date] = TypeAdapter(CalendarDay)
_MOMENT: TypeAdapter[datetime] = TypeAdapter(Moment)


def _day_or_moment(value: Any) -> Any:
    """A plain date (YYYY-MM-DD) stays a date; anything else must be a date-time with its UTC offset."""
    try:
        if isinstance(value, str) and _PLAIN_DAY.fullmatch(value):
            return _CALENDAR_DAY.validate_python(value)
        return _MOMENT.validate_python(value)
    except ValidationError as error:
        raise PydanticCustomError("day_or_moment", "{reason}", {"reason": error.errors()[0]["msg"]}) from None


DayOrMoment = Annotated[date | datetime, BeforeValidator(_day_or_moment)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_future(value: date | None) -> date | None:
    if value is not None and value < EARLIEST_DAY:
        raise ValueError(f"must not be before {EARLIEST_DAY}")
    if value is not None and value > date.today():
        raise ValueError("must not be in the future")
    return value


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    INTERSEX = "intersex"
    UNKNOWN = "unknown"


class BloodGroup(StrEnum):
    A_POS = "A+"
    A_NEG = "A-"
    B_POS = "B+"
    B_NEG = "B-"
    AB_POS = "AB+"
    AB_NEG = "AB-"
    O_POS = "O+"
    O_NEG = "O-"
    UNKNOWN = "unknown"


class EmergencyContact(Strict):
    name: Text
    relationship: Text
    phone: Phone


class Insurance(Strict):
    provider: Text
    policy_number: _bounded(64)  # type: ignore[valid-type]
    valid_until: CalendarDay | None = None


class Address(Strict):
    line1: Text
    line2: _bounded(200, minimum=0) | None = None  # type: ignore[valid-type]
    city: Text
    postal_code: _bounded(20)  # type: ignore[valid-type]
    country: Text


Allergy = _bounded(100)


class PatientProfileUpdate(Strict):
    """Fields left out stay as they are; required fields cannot be cleared, optional ones can (null)."""

    full_name: Text = None  # type: ignore[assignment]
    date_of_birth: Annotated[date, AfterValidator(_not_future)] = None  # type: ignore[assignment]
    sex: Sex = None  # type: ignore[assignment]
    phone: Phone = None  # type: ignore[assignment]
    address: Address | None = None
    emergency_contact: EmergencyContact | None = None
    insurance: Insurance | None = None
    blood_group: BloodGroup | None = None
    allergies: Annotated[list[Allergy], Field(max_length=100)] | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class PatientProfile(PatientProfileUpdate):
    full_name: Text
    date_of_birth: Annotated[date, AfterValidator(_not_future)]
    sex: Sex
    phone: Phone


class PatientRegister(Strict):
    email: EmailStr
    password: Password
    profile: PatientProfile


Specialization = _bounded(100, minimum=2)
Licence = _bounded(64, minimum=3)
Fee = Annotated[Decimal, Field(ge=0, le=100_000, max_digits=8, decimal_places=2)]


class DoctorProfileUpdate(Strict):
    """Fields left out stay as they are; none of them can be cleared (null)."""

    name: Text = None  # type: ignore[assignment]
    specialization: Specialization = None  # type: ignore[assignment]
    licence_number: Licence = None  # type: ignore[assignment]
    consultation_fee: Fee = None  # type: ignore[assignment]
    bio: LongText = None  # type: ignore[assignment]

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class DoctorProfile(DoctorProfileUpdate):
    name: Text
    specialization: Specialization
    licence_number: Licence
    consultation_fee: Fee
    bio: LongText = ""


class AccountCreate(Strict):
    email: EmailStr
    password: Password
    role: Role
    doctor_profile: DoctorProfile | None = None
    patient_profile: PatientProfile | None = None


class AccountReason(Strict):
    reason: Reason


class RoleChange(Strict):
    role: Role
    reason: Reason


class LoginRequest(Strict):
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class RefreshRequest(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class TokenPairPublic(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    position: int | None


class CommandResult(BaseModel):
    id: str
    position: int = Field(
        description="Pass as ?after= to queries to read this write (or, when the command had already taken effect, the state it found)."
    )


class SweepResult(CommandResult):
    examined: int = Field(description="How many records the sweep looked at.")
    changed: list[str] = Field(description="The ids of the records it changed.")
    could_not_check: list[str] = Field(
        default=[], description="Re-check only: prescriptions whose patient's allergies could not be read, left as they were."
    )


class Availability(Strict):
    timezone: _bounded(64)  # type: ignore[valid-type]
    slot_minutes: Annotated[int, Field(ge=5, le=240)]
    periods: dict[Weekday, Annotated[list[tuple[LocalTime, LocalTime]], Field(max_length=12)]]


class LeaveRequest(Strict):
    day: CalendarDay
    reason: Reason


class LeaveCancel(Strict):
    reason: Reason


class AppointmentBook(Strict):
    doctor_id: UUID
    patient_id: UUID | None = Field(default=None, description="Defaults to the calling patient.")
    start: Moment
    overbook_reason: Reason | None = Field(default=None, description="Admins only: book over an existing booking.")


class AppointmentReschedule(Strict):
    start: Moment
    reason: Reason


class AppointmentCancel(Strict):
    reason: Reason


class StatusCorrection(Strict):
    status: Status
    reason: Reason


class AccountPublic(BaseModel):
    id: str
    email: str
    role: Role
    profile_id: str | None
    disabled: bool
    registered_at: datetime


class DoctorPublic(BaseModel):
    id: str
    name: str
    specialization: str
    licence_number: str
    consultation_fee: Decimal
    bio: str
    availability: dict[str, Any] | None


class PatientPublic(BaseModel):
    id: str
    full_name: str
    date_of_birth: date | None
    phone: str | None
    profile: dict[str, Any]


class AppointmentPublic(BaseModel):
    id: str
    doctor_id: str
    patient_id: str
    start: datetime
    end: datetime
    day: date
    status: Status
    overbooked: bool
    booked_at: datetime
    updated_at: datetime


class Slot(BaseModel):
    start: datetime
    end: datetime


class DoctorDay(BaseModel):
    doctor_id: str
    day: date
    leave: str | None
    appointments: list[dict[str, Any]]
    free_slots: list[Slot]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int
