"""A patient's dosing schedule, derived from a prescription's items: local dosing times from the day of issue."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from domain.prescription import Frequency, Status

LOCAL_TIMES: dict[Frequency, tuple[time, ...]] = {
    Frequency.ONCE_DAILY: (time(8),),
    Frequency.TWICE_DAILY: (time(8), time(20)),
    Frequency.THREE_TIMES_DAILY: (time(8), time(14), time(20)),
    Frequency.FOUR_TIMES_DAILY: (time(8), time(12), time(16), time(20)),
    Frequency.EVERY_6_HOURS: (time(0), time(6), time(12), time(18)),
    Frequency.EVERY_8_HOURS: (time(6), time(14), time(22)),
    Frequency.AT_BEDTIME: (time(22),),
    Frequency.WEEKLY: (time(8),),
    Frequency.AS_NEEDED: (),
}
TAKING = frozenset({Status.ISSUED, Status.PARTIALLY_DISPENSED, Status.DISPENSED})


@dataclass(frozen=True)
class Dose:
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

    @property
    def key(self) -> str:
        """One dose of one item at one moment: what a reminder is sent once for."""
        return f"{self.prescription_id}:{self.item_id}:{self.due_at.strftime('%Y%m%dT%H%M%SZ')}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "prescription_id": self.prescription_id,
            "patient_id": self.patient_id,
            "item_id": self.item_id,
            "medication": self.medication,
            "strength": self.strength,
            "dose": self.dose,
            "route": self.route,
            "instructions": self.instructions,
            "due_at": self.due_at.isoformat(),
            "local_time": self.local_time,
        }


def is_taken(prescription: Mapping[str, Any]) -> bool:
    """Whether the patient is taking the medications: issued, or expired after something was dispensed."""
    status = Status(prescription["status"])
    if status in TAKING:
        return True
    return status == Status.EXPIRED and any(item["dispensed"] > 0 for item in prescription["items"])


def doses(prescription: Mapping[str, Any], start: datetime, end: datetime) -> list[Dose]:
    """The doses of one prescription (its view) due in [start, end), in time order.

    Each item is taken at its frequency's local times in the prescription's time zone, from the first of them
    at or after the moment of issue, for as many doses as duration_days holds (seven days three times a day:
    21 doses), so a course issued late in the day is not cut short. "As needed" has no schedule. A weekly
    item is taken on the weekday of issue, once per started week of the course.
    """
    if prescription.get("issued_at") is None or not is_taken(prescription):
        return []
    issued_at = datetime.fromisoformat(prescription["issued_at"])
    zone = ZoneInfo(prescription["timezone"])
    found: list[Dose] = []
    for item in prescription["items"]:
        for moment, local in _moments(item, zone, issued_at):
            if start <= moment < end:
                found.append(_dose(prescription, item, moment, local))
    return sorted(found, key=lambda d: (d.due_at, d.medication, d.item_id))


def schedule(prescriptions: Iterable[Mapping[str, Any]], start: datetime, end: datetime) -> list[Dose]:
    every = [dose for prescription in prescriptions for dose in doses(prescription, start, end)]
    return sorted(every, key=lambda d: (d.due_at, d.prescription_id, d.item_id))


def course_doses(frequency: Frequency, duration_days: int) -> int:
    """How many doses a course holds: every local time of every day, or one a week for a weekly item."""
    if frequency == Frequency.WEEKLY:
        return -(-duration_days // 7)
    return len(LOCAL_TIMES[frequency]) * duration_days


def _moments(item: Mapping[str, Any], zone: ZoneInfo, issued_at: datetime) -> Iterator[tuple[datetime, time]]:
    frequency = Frequency(item["frequency"])
    step = 7 if frequency == Frequency.WEEKLY else 1
    left = course_doses(frequency, int(item["duration_days"]))
    day = issued_at.astimezone(zone).date()
    while left > 0 and LOCAL_TIMES[frequency]:
        for local in LOCAL_TIMES[frequency]:
            moment = datetime.combine(day, local, tzinfo=zone).astimezone(timezone.utc)
            if moment >= issued_at and left > 0:
                left -= 1
                yield moment, local
        day += timedelta(days=step)


def _dose(prescription: Mapping[str, Any], item: Mapping[str, Any], moment: datetime, local: time) -> Dose:
    return Dose(
        prescription_id=prescription["id"],
        patient_id=prescription["patient_id"],
        item_id=item["item_id"],
        medication=item["medication"]["name"],
        strength=item["medication"]["strength"],
        dose=item["dose"],
        route=item["route"],
        instructions=item["instructions"],
        due_at=moment,
        local_time=local.isoformat("minutes"),
    )
