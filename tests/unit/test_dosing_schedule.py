"""The dosing schedule: local times per frequency, from the moment of issue, for the course's days, across clock changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from domain.dosing import LOCAL_TIMES, doses, schedule
from domain.medication_safety import InteractionTable, check
from domain.prescription import Frequency, Item, Prescription, Route
from domain.shared import Cause, Role

DOCTOR = Cause("doctor-account", Role.DOCTOR, "corr")
ADMIN = Cause("admin-account", Role.ADMIN, "corr")
TABLE = InteractionTable.from_dict(
    {
        "version": "v1",
        "sources": {"s": {"citation": "A source."}},
        "classes": {},
        "pairs": [{"a": "x", "b": "y", "severity": "minor", "effect": "e", "sources": ["s"]}],
        "allergy_groups": {},
    }
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def prescription(
    frequency: Frequency, duration_days: int, issued_at: datetime, tz: str = "UTC", **extra_items: Frequency
) -> Prescription:
    def item(item_id: str, freq: Frequency) -> Item:
        return Item(item_id, f"Drug {item_id}", "10 mg", "tablet", "1 tablet", Route.ORAL, freq, duration_days, 100, 0, "")

    items = [item("a", frequency), *(item(k, f) for k, f in extra_items.items())]
    p = Prescription.write(uuid4(), "c", "patient-1", "doctor-1", items, tz, issued_at - timedelta(minutes=5), DOCTOR)
    p.issue(check(TABLE, p.medications, []), None, issued_at, issued_at.date() + timedelta(days=30), DOCTOR)
    return p


def window(view: dict[str, Any], start: datetime, end: datetime) -> list[datetime]:
    return [dose.due_at for dose in doses(view, start, end)]


@pytest.mark.parametrize("frequency", list(Frequency))
def test_each_frequency_gives_its_local_times_every_day(frequency: Frequency) -> None:
    view = prescription(frequency, 14, utc(2026, 3, 2, 0, 0)).view()
    due = window(view, utc(2026, 3, 1), utc(2026, 3, 20))
    per_day = len(LOCAL_TIMES[frequency])
    expected_days = 2 if frequency == Frequency.WEEKLY else 14
    assert len(due) == per_day * expected_days
    assert {d.time() for d in due} == set(LOCAL_TIMES[frequency])


def test_doses_before_the_moment_of_issue_are_not_due_and_the_course_keeps_its_six_doses() -> None:
    view = prescription(Frequency.THREE_TIMES_DAILY, 2, utc(2026, 3, 2, 12, 0)).view()
    due = window(view, utc(2026, 3, 1), utc(2026, 3, 10))
    assert due == [
        utc(2026, 3, 2, 14), utc(2026, 3, 2, 20), utc(2026, 3, 3, 8), utc(2026, 3, 3, 14), utc(2026, 3, 3, 20), utc(2026, 3, 4, 8)
    ]


def test_the_course_ends_after_duration_days_from_the_day_of_issue() -> None:
    view = prescription(Frequency.ONCE_DAILY, 3, utc(2026, 3, 2, 6, 0)).view()
    assert window(view, utc(2026, 3, 1), utc(2026, 4, 1)) == [utc(2026, 3, 2, 8), utc(2026, 3, 3, 8), utc(2026, 3, 4, 8)]


def test_the_window_is_half_open() -> None:
    view = prescription(Frequency.ONCE_DAILY, 3, utc(2026, 3, 2, 6, 0)).view()
    assert window(view, utc(2026, 3, 3, 8), utc(2026, 3, 4, 8)) == [utc(2026, 3, 3, 8)]


def test_local_times_follow_the_prescriptions_time_zone_across_a_clock_change() -> None:
    # London moves from GMT to BST on 29 March 2026: 08:00 local is 08:00Z before and 07:00Z after.
    view = prescription(Frequency.ONCE_DAILY, 3, utc(2026, 3, 28, 6, 0), tz="Europe/London").view()
    assert window(view, utc(2026, 3, 27), utc(2026, 4, 2)) == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]
    assert {dose.local_time for dose in doses(view, utc(2026, 3, 27), utc(2026, 4, 2))} == {"08:00"}


def test_the_day_of_issue_is_the_local_day() -> None:
    # 23:30Z on 1 March is 08:30 on 2 March in Tokyo: day one's 08:00 dose (23:00Z) has passed, so a
    # two-day course is the 08:00 doses of 3 and 4 March (23:00Z on 2 and 3 March).
    view = prescription(Frequency.ONCE_DAILY, 2, utc(2026, 3, 1, 23, 30), tz="Asia/Tokyo").view()
    assert window(view, utc(2026, 3, 1), utc(2026, 3, 5)) == [utc(2026, 3, 2, 23), utc(2026, 3, 3, 23)]


def test_as_needed_items_have_no_reminders() -> None:
    view = prescription(Frequency.AS_NEEDED, 10, utc(2026, 3, 2)).view()
    assert window(view, utc(2026, 3, 1), utc(2026, 4, 1)) == []


def test_drafts_and_cancelled_prescriptions_have_no_reminders_but_dispensed_ones_do() -> None:
    draft = Prescription.write(
        uuid4(), "c", "p", "d", [Item("a", "X", "1", "tab", "1", Route.ORAL, Frequency.ONCE_DAILY, 3, 3, 0, "")], "UTC", utc(2026, 3, 2), DOCTOR
    )
    assert doses(draft.view(), utc(2026, 3, 1), utc(2026, 4, 1)) == []
    cancelled = prescription(Frequency.ONCE_DAILY, 3, utc(2026, 3, 2))
    cancelled.cancel("Stopped.", utc(2026, 3, 2, 1), ADMIN)
    assert doses(cancelled.view(), utc(2026, 3, 1), utc(2026, 4, 1)) == []
    dispensed = prescription(Frequency.ONCE_DAILY, 3, utc(2026, 3, 2))
    dispensed.dispense("a", 100, utc(2026, 3, 2, 1), ADMIN)
    assert len(doses(dispensed.view(), utc(2026, 3, 1), utc(2026, 4, 1))) == 3


def test_an_expired_prescription_keeps_reminding_only_if_something_was_dispensed() -> None:
    untouched = prescription(Frequency.ONCE_DAILY, 60, utc(2026, 3, 2))
    untouched.expire(utc(2026, 4, 10), ADMIN)
    assert doses(untouched.view(), utc(2026, 4, 10), utc(2026, 4, 12)) == []
    started = prescription(Frequency.ONCE_DAILY, 60, utc(2026, 3, 2))
    started.dispense("a", 10, utc(2026, 3, 2, 1), ADMIN)
    started.expire(utc(2026, 4, 10), ADMIN)
    assert len(doses(started.view(), utc(2026, 4, 10), utc(2026, 4, 12))) == 2


def test_a_schedule_merges_items_and_prescriptions_in_time_order_with_their_details() -> None:
    first = prescription(Frequency.TWICE_DAILY, 1, utc(2026, 3, 2), b=Frequency.AT_BEDTIME).view()
    second = prescription(Frequency.ONCE_DAILY, 1, utc(2026, 3, 2)).view()
    merged = schedule([first, second], utc(2026, 3, 2), utc(2026, 3, 3))
    assert [d.due_at.hour for d in merged] == [8, 8, 20, 22]
    dose = merged[-1].as_dict()
    assert dose["medication"] == "Drug b" and dose["item_id"] == "b" and dose["local_time"] == "22:00"
    assert merged[0].key != merged[1].key


def test_a_weekly_item_issued_after_its_dosing_time_still_gets_its_doses() -> None:
    # Issued at 09:00 on the weekday of issue, after the 08:00 dose: a one-week course is one dose, next week.
    view = prescription(Frequency.WEEKLY, 7, utc(2026, 3, 2, 9, 0)).view()
    assert window(view, utc(2026, 3, 1), utc(2026, 4, 1)) == [utc(2026, 3, 9, 8)]
    four_weeks = prescription(Frequency.WEEKLY, 28, utc(2026, 3, 2, 9, 0)).view()
    assert len(window(four_weeks, utc(2026, 3, 1), utc(2026, 5, 1))) == 4


@pytest.mark.parametrize("issued_hour", [0, 9, 15, 21, 23])
def test_a_course_has_its_full_number_of_doses_whenever_it_is_issued(issued_hour: int) -> None:
    # Seven days three times a day is 21 doses (the quantity a 7-day course is dispensed with), from the first after issue.
    view = prescription(Frequency.THREE_TIMES_DAILY, 7, utc(2026, 3, 2, issued_hour, 30), tz="Europe/London").view()
    due = window(view, utc(2026, 3, 1), utc(2026, 4, 1))
    assert len(due) == 21 and due[0] >= utc(2026, 3, 2, issued_hour, 30)


def test_a_one_day_course_issued_in_the_evening_is_not_empty() -> None:
    view = prescription(Frequency.TWICE_DAILY, 1, utc(2026, 3, 2, 21, 0)).view()
    assert window(view, utc(2026, 3, 1), utc(2026, 4, 1)) == [utc(2026, 3, 3, 8), utc(2026, 3, 3, 20)]
