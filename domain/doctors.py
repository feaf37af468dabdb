"""Doctor: professional profile and weekly availability, which defines the slot grid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate, event

from domain.shared import Cause, InvalidInputError, changed_fields

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REQUIRED_PROFILE_FIELDS = frozenset({"name", "specialization", "licence_number", "consultation_fee"})
MIN_SLOT_MINUTES = 5
MAX_SLOT_MINUTES = 240


class InvalidAvailabilityError(InvalidInputError):
    """Raised when a weekly availability is malformed: bad zone, slot length or periods."""

    code = "invalid_availability"


class OutsideAvailabilityError(InvalidInputError):
    """Raised when a time is not within the doctor's working periods."""

    code = "outside_availability"


class OffGridError(InvalidInputError):
    """Raised when a time is within working hours but not on a slot boundary."""

    code = "off_grid"


class NoAvailabilityError(InvalidInputError):
    """Raised when booking a doctor who has not published any availability."""

    code = "no_availability"


@dataclass(frozen=True)
class WeeklyAvailability:
    """Working periods per weekday in the doctor's time zone, cut into slots of equal length."""

    timezone: str
    slot_minutes: int
    periods: dict[str, tuple[tuple[time, time], ...]]

    def __post_init__(self) -> None:
        normalised = {day: tuple(sorted(spans, key=_naive_span)) for day, spans in self.periods.items() if spans}
        object.__setattr__(self, "periods", normalised)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WeeklyAvailability:
        periods = {
            day: tuple((time.fromisoformat(start), time.fromisoformat(end)) for start, end in spans)
            for day, spans in data["periods"].items()
        }
        return cls(timezone=data["timezone"], slot_minutes=int(data["slot_minutes"]), periods=periods)

    def to_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "slot_minutes": self.slot_minutes,
            "periods": {
                day: [[start.isoformat("minutes"), end.isoformat("minutes")] for start, end in self.periods[day]]
                for day in WEEKDAYS
                if self.periods.get(day)
            },
        }

    def validate(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidAvailabilityError(f"Unknown time zone {self.timezone!r}.", field="timezone") from None
        if not MIN_SLOT_MINUTES <= self.slot_minutes <= MAX_SLOT_MINUTES:
            raise InvalidAvailabilityError(
                f"Slot length must be between {MIN_SLOT_MINUTES} and {MAX_SLOT_MINUTES} minutes.",
                field="slot_minutes",
            )
        for day, spans in self.periods.items():
            if day not in WEEKDAYS:
                raise InvalidAvailabilityError(f"Unknown weekday {day!r}; use {', '.join(WEEKDAYS)}.", field=f"periods.{day}")
            previous_end: time | None = None
            for index, (start, end) in enumerate(spans):
                field = f"periods.{day}[{index}]"
                if start.tzinfo is not None or end.tzinfo is not None:
                    raise InvalidAvailabilityError("Working hours are local times, without a UTC offset.", field=field)
                if start >= end:
                    raise InvalidAvailabilityError("A working period must end after it starts, on the same day.", field=field)
                if previous_end is not None and start < previous_end:
                    raise InvalidAvailabilityError("Working periods of one day must not overlap.", field=field)
                if _minutes(end) - _minutes(start) < self.slot_minutes:
                    raise InvalidAvailabilityError("A working period must hold at least one slot.", field=field)
                previous_end = end

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def slots_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The slots of one local day, as UTC intervals (none on the first and last days of the calendar)."""
        if not date.min < day < date.max:
            return []
        length = timedelta(minutes=self.slot_minutes)
        slots = []
        for start, end in self.periods.get(WEEKDAYS[day.weekday()], ()):
            # Step in UTC so that a period spanning a clock change yields real, equal, distinct slots.
            cursor = datetime.combine(day, start, tzinfo=self.zone).astimezone(timezone.utc)
            period_end = datetime.combine(day, end, tzinfo=self.zone).astimezone(timezone.utc)
            while cursor + length <= period_end:
                slots.append((cursor, cursor + length))
                cursor += length
        return slots

    def slot_at(self, start: datetime) -> tuple[datetime, datetime, date]:
        """The slot beginning exactly at start and its local day, or an error saying why there is none."""
        day = self.local_day(start)
        slots = self.slots_on(day)
        for slot_start, slot_end in slots:
            if slot_start == start:
                return slot_start, slot_end, day
        if any(slot_start < start < slot_end for slot_start, slot_end in slots):
            raise OffGridError(
                f"{start.isoformat()} is not on the {self.slot_minutes}-minute slot grid.", field="start"
            )
        raise OutsideAvailabilityError(f"{start.isoformat()} is outside the doctor's working hours.", field="start")


def _naive_span(span: tuple[time, time]) -> tuple[time, time]:
    return span[0].replace(tzinfo=None), span[1].replace(tzinfo=None)


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


class Doctor(Aggregate):
    TOPIC = "medledger:Doctor"

    class Created(Aggregate.Created):
        TOPIC = "medledger:Doctor.Created"

    @event("Registered", topic="medledger:Doctor.Registered.v1")
    def __init__(self, account_id: str, profile: dict[str, Any], cause: dict[str, Any]) -> None:
        self.account_id = account_id
        self.profile = dict(profile)
        self.availability: WeeklyAvailability | None = None

    def update_profile(self, changes: dict[str, Any], cause: Cause) -> None:
        changed = changed_fields(self.profile, changes, REQUIRED_PROFILE_FIELDS)
        if changed:
            self._profile_updated(changed, cause.as_dict())

    def set_availability(self, availability: WeeklyAvailability, cause: Cause) -> None:
        availability.validate()
        if availability != self.availability:
            self._availability_set(availability.to_dict(), cause.as_dict())

    def slot_at(self, start: datetime) -> tuple[datetime, datetime, date]:
        if self.availability is None:
            raise NoAvailabilityError("This doctor has not published any availability.", field="doctor_id")
        return self.availability.slot_at(start)

    @event("ProfileUpdated", topic="medledger:Doctor.ProfileUpdated.v1")
    def _profile_updated(self, changes: dict[str, Any], cause: dict[str, Any]) -> None:
        self.profile.update(changes)

    @event("AvailabilitySet", topic="medledger:Doctor.AvailabilitySet.v1")
    def _availability_set(self, availability: dict[str, Any], cause: dict[str, Any]) -> None:
        self.availability = WeeklyAvailability.from_dict(availability)
