"""Request and response bodies: the shape checks that give 422 with the field and the reason."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from api.responses import Refusal
from domain.appointment import Status
from domain.shared import Role
from domain.text import human_text_pattern, text_problem

EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2999, 12, 31)
YEAR = r"(?:19[0-9]{2}|2[0-9]{3})"
DAY_PATTERN = rf"^{YEAR}-[0-9]{{2}}-[0-9]{{2}}$"
MOMENT_PATTERN = rf"^{YEAR}-[0-9]{{2}}-[0-9]{{2}}[Tt ][0-9]{{2}}:[0-9]{{2}}(?::[0-9]{{2}}(?:\.[0-9]+)?)?(?:[Zz]|[+-][0-9]{{2}}:?[0-9]{{2}})$"
TIME_PATTERN = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?$"
ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
SPECIAL_USE_DOMAINS = "arpa|invalid|local|localhost|onion|test"  # as email-validator refuses them
EMAIL_PATTERN = (
    rf"^(?=[^@]{{1,64}}@){ATEXT}+(?:\.{ATEXT}+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+"
    rf"(?!(?:{SPECIAL_USE_DOMAINS})$)[A-Za-z]{{2,63}}$"
)
_DAY = re.compile(DAY_PATTERN)
_TIME = re.compile(TIME_PATTERN)
_MOMENT = re.compile(MOMENT_PATTERN)


@dataclass(frozen=True)
class Pattern:
    """Shows a rule the validators check as a pattern in the JSON schema (built lazily: some are large)."""

    make: Callable[[], str]

    def __get_pydantic_json_schema__(self, core: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        schema = handler(core)
        schema["pattern"] = self.make()
        return schema


def _written_day(value: Any) -> Any:
    """A day is written YYYY-MM-DD, never as a number (which would read as seconds since 1970)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DAY.match(value):
        return value
    raise ValueError(f"must be a date written YYYY-MM-DD, between {EARLIEST_DAY} and {LATEST_DAY}")


def _written_moment(value: Any) -> Any:
    """A moment is written as an ISO 8601 date-time with its offset, never as a number."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _MOMENT.match(value):
        return value
    raise ValueError("must be a date-time written YYYY-MM-DDTHH:MM:SS with Z or a UTC offset, in years 1900 to 2999")


def _within_days(value: date) -> date:
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise ValueError(f"must fall between {EARLIEST_DAY} and {LATEST_DAY}")
    return value


def _within_calendar(value: datetime) -> datetime:
    if not EARLIEST_DAY <= value.date() <= LATEST_DAY:
        raise ValueError(f"must fall between {EARLIEST_DAY} and {LATEST_DAY}")
    return value


def _written_time(value: Any) -> Any:
    """A time of day is written HH:MM[:SS], local, without an offset, never as a number."""
    if isinstance(value, time) or (isinstance(value, str) and _TIME.match(value)):
        return value
    raise ValueError("must be a local time of day written HH:MM or HH:MM:SS, without a UTC offset")


def _local_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("working hours are local times, without a UTC offset")
    return value


def _human(multiline: bool) -> Callable[[str], str]:
    def check(value: str) -> str:
        problem = text_problem(value, multiline=multiline)
        if problem is not None:
            raise ValueError(problem)
        return unicodedata.normalize("NFC", value)

    return check


@dataclass(frozen=True)
class Choices:
    """Shows the values a validator accepts as an enum in the JSON schema (built lazily: the list is long)."""

    make: Callable[[], list[str]]

    def __get_pydantic_json_schema__(self, core: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        schema = handler(core)
        schema["enum"] = self.make()
        return schema


@cache
def time_zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _known_zone(value: str) -> str:
    if value not in time_zone_names():
        raise ValueError("must be an IANA time zone name, such as Europe/London or UTC")
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone), Choices(lambda: sorted(time_zone_names()))]


def _bounded(length: int, minimum: int = 1, pattern: str | None = None, *, multiline: bool = False) -> Any:
    """Human text (domain/text.py) of minimum to length characters once surrounding white space is stripped."""
    constraints = StringConstraints(strip_whitespace=True, min_length=minimum, max_length=length, pattern=pattern)
    shown = Pattern(lambda: pattern) if pattern else Pattern(lambda: human_text_pattern(minimum, multiline=multiline))
    return Annotated[str, constraints, AfterValidator(_human(multiline)), shown]


def search_text(length: int) -> Any:
    """A search term: human text of at most length characters once surrounding white space is stripped."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=length),
        AfterValidator(_human(False)),
        Pattern(lambda: human_text_pattern(0)),
    ]


Text = _bounded(200)
LongText = _bounded(4000, minimum=0, multiline=True)
Reason = _bounded(500, minimum=3, multiline=True)
Phone = _bounded(20, minimum=6, pattern=r"^\s*\+?[0-9 ()-]{6,20}\s*$")
Password = Annotated[str, StringConstraints(min_length=10, max_length=128)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CalendarDay = Annotated[date, BeforeValidator(_written_day), AfterValidator(_within_days), Pattern(lambda: DAY_PATTERN)]
Moment = Annotated[
    AwareDatetime, BeforeValidator(_written_moment), AfterValidator(_within_calendar), Pattern(lambda: MOMENT_PATTERN)
]
LocalTime = Annotated[
    time,
    BeforeValidator(_written_time),
    AfterValidator(_local_time),
    WithJsonSchema({"type": "string", "pattern": TIME_PATTERN, "description": "Local time of day, HH:MM[:SS]"}),
]
Email = Annotated[EmailStr, Field(json_schema_extra={"maxLength": 254}), Pattern(lambda: EMAIL_PATTERN)]
_PLAIN_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_A_CALENDAR_DAY: TypeAdapter[date] = TypeAdapter(CalendarDay)
_A_MOMENT: TypeAdapter[datetime] = TypeAdapter(Moment)


def _day_or_moment(value: Any) -> Any:
    """A plain date (YYYY-MM-DD) stays a date; anything else must be a date-time with its UTC offset."""
    try:
        if isinstance(value, str) and _PLAIN_DAY.fullmatch(value):
            return _A_CALENDAR_DAY.validate_python(value)
        return _A_MOMENT.validate_python(value)
    except ValidationError as error:
        raise PydanticCustomError("day_or_moment", "{reason}", {"reason": error.errors()[0]["msg"]}) from None


DayOrMoment = Annotated[
    date | datetime,
    BeforeValidator(_day_or_moment),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", "pattern": DAY_PATTERN},
                {"type": "string", "format": "date-time", "pattern": MOMENT_PATTERN},
            ],
            "description": "A date (YYYY-MM-DD, the whole day) or a date-time with Z or its UTC offset",
        }
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_future(value: date) -> date:
    if value > date.today():
        raise ValueError("must not be in the future")
    return value


BirthDate = Annotated[CalendarDay, AfterValidator(_not_future)]
BIRTH_DATE_RULE = Refusal("date_of_birth", "a date of birth in the future", "invalid_request")


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
    date_of_birth: BirthDate = None  # type: ignore[assignment]
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
    date_of_birth: BirthDate
    sex: Sex
    phone: Phone


class PatientRegister(Strict):
    email: Email
    password: Password
    profile: PatientProfile


Specialization = _bounded(100, minimum=2)
Licence = _bounded(64, minimum=3)
FEE_PATTERN = r"^(?:(?:0|[1-9][0-9]{0,4})(?:\.[0-9]{1,2})?|100000(?:\.00?)?)$"
Fee = Annotated[
    Decimal,
    Field(ge=0, le=100_000, max_digits=8, decimal_places=2),
    WithJsonSchema({"type": "string", "pattern": FEE_PATTERN, "description": "0 to 100000 with at most two decimals, e.g. \"120.00\""}),
]


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
    email: Email
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
    email: Email
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
    timezone: TimeZoneName
    slot_minutes: Annotated[int, Field(ge=5, le=240)]
    periods: dict[Weekday, Annotated[list[tuple[LocalTime, LocalTime]], Field(max_length=12)]]


class LeaveRequest(Strict):
    day: CalendarDay
    reason: Reason


class LeaveCancel(Strict):
    reason: Reason


SLOT_RULES = (  # a start the schema allows, refused by the doctor's calendar
    Refusal("start", "the start is in the past", "booking_in_past"),
    Refusal("start", "the start is not on the doctor's slot grid", "off_grid"),
    Refusal("start", "the start is outside the doctor's working hours", "outside_availability"),
    Refusal("doctor_id", "the doctor has published no availability", "no_availability"),
)


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
