"""WeeklyAvailability rules: the slot grid in the doctor's zone, its validation and its serialised form."""

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.doctors import InvalidAvailabilityError, OffGridError, OutsideAvailabilityError, WeeklyAvailability
from domain_helpers import MONDAY, minutes, paris_weekdays, utc

PARIS = ZoneInfo("Europe/Paris")


def weekly(zone: str = "Europe/Paris", slot: int = 30, **periods) -> WeeklyAvailability:
    return WeeklyAvailability(zone, slot, periods)


def test_slots_in_paris_are_utc_intervals_and_only_whole_slots_fit_a_period():
    availability = weekly(mon=((time(9), time(10, 40)),))

    assert availability.slots_on(MONDAY) == [
        (utc(MONDAY, 7, 0), utc(MONDAY, 7, 30)),
        (utc(MONDAY, 7, 30), utc(MONDAY, 8, 0)),
        (utc(MONDAY, 8, 0), utc(MONDAY, 8, 30)),
    ]
    assert all(start.tzinfo is timezone.utc for start, _ in availability.slots_on(MONDAY))


def test_slots_in_new_york_winter_are_five_hours_behind_utc():
    winter_monday = date(2025, 1, 6)
    availability = weekly("America/New_York", 45, mon=((time(9), time(10, 30)),))

    assert availability.slots_on(winter_monday) == [
        (utc(winter_monday, 14, 0), utc(winter_monday, 14, 45)),
        (utc(winter_monday, 14, 45), utc(winter_monday, 15, 30)),
    ]


def test_slots_of_a_day_follow_its_periods_in_order():
    slots = paris_weekdays(60).slots_on(MONDAY)

    assert [s for s, _ in slots] == [utc(MONDAY, h) for h in (7, 8, 9, 12, 13, 14)]


def test_a_weekday_without_periods_has_no_slots():
    assert paris_weekdays().slots_on(date(2025, 6, 1)) == []


@pytest.mark.parametrize(
    ("zone", "day", "first_slot_utc"),
    [
        ("Europe/Paris", date(2025, 3, 30), 7),
        ("Europe/Paris", date(2025, 10, 26), 8),
        ("America/New_York", date(2025, 3, 9), 13),
        ("America/New_York", date(2025, 11, 2), 14),
    ],
    ids=["paris-spring-forward", "paris-fall-back", "new-york-spring-forward", "new-york-fall-back"],
)
def test_on_a_clock_change_day_slots_keep_their_local_times(zone, day, first_slot_utc):
    availability = weekly(zone, sun=((time(9), time(10)),))

    assert availability.slots_on(day) == [
        (utc(day, first_slot_utc, 0), utc(day, first_slot_utc, 30)),
        (utc(day, first_slot_utc, 30), utc(day, first_slot_utc + 1, 0)),
    ]
    assert [s.astimezone(ZoneInfo(zone)).time() for s, _ in availability.slots_on(day)] == [time(9), time(9, 30)]


@pytest.mark.parametrize("day", [date(2025, 3, 30), date(2025, 10, 26)], ids=["spring-forward", "fall-back"])
def test_a_night_period_across_the_clock_change_gives_distinct_slots_of_the_slot_length(day):
    slots = weekly(sun=((time(0), time(6)),)).slots_on(day)

    assert {end - start for start, end in slots} == {minutes(30)}
    assert len({start for start, _ in slots}) == len(slots)


def test_slot_at_a_boundary_answers_that_slot_and_its_local_day_whatever_the_zone_of_the_question():
    nine_thirty_paris = datetime(2025, 6, 2, 9, 30, tzinfo=PARIS)

    assert paris_weekdays().slot_at(nine_thirty_paris) == (utc(MONDAY, 7, 30), utc(MONDAY, 8, 0), MONDAY)


def test_the_day_of_a_slot_is_the_doctors_local_date_not_the_utc_date():
    tokyo_monday_morning = weekly("Asia/Tokyo", mon=((time(8), time(9)),))

    assert tokyo_monday_morning.slot_at(utc(date(2025, 6, 1), 23, 0)) == (
        utc(date(2025, 6, 1), 23, 0),
        utc(date(2025, 6, 1), 23, 30),
        MONDAY,
    )


def test_a_time_inside_working_hours_but_between_boundaries_is_off_grid():
    with pytest.raises(OffGridError) as error:
        paris_weekdays().slot_at(utc(MONDAY, 7, 10))

    assert error.value.details == {"field": "start"}


@pytest.mark.parametrize(
    "start",
    [utc(MONDAY, 6, 30), utc(MONDAY, 10, 0), utc(MONDAY, 11, 0), utc(MONDAY, 15, 0), utc(date(2025, 6, 1), 8, 0)],
    ids=["before-opening", "at-lunch-start", "during-lunch", "at-closing", "sunday"],
)
def test_a_time_outside_the_working_periods_is_outside_availability(start):
    with pytest.raises(OutsideAvailabilityError) as error:
        paris_weekdays().slot_at(start)

    assert error.value.details == {"field": "start"}


@pytest.mark.parametrize(
    ("availability", "field"),
    [
        (weekly("Mars/Olympus_Mons"), "timezone"),
        (weekly(slot=4), "slot_minutes"),
        (weekly(slot=241), "slot_minutes"),
        (weekly(monday=((time(9), time(12)),)), "periods.monday"),
        (weekly(mon=((time(9), time(9)),)), "periods.mon[0]"),
        (weekly(mon=((time(12), time(9)),)), "periods.mon[0]"),
        (weekly(mon=((time(14), time(16)), (time(9), time(12)), (time(11), time(13)))), "periods.mon[1]"),
        (weekly(mon=((time(9), time(9, 20)),)), "periods.mon[0]"),
    ],
    ids=[
        "unknown-zone",
        "slot-too-short",
        "slot-too-long",
        "unknown-weekday",
        "empty-period",
        "period-ending-before-start",
        "overlapping-periods",
        "period-shorter-than-a-slot",
    ],
)
def test_a_malformed_availability_is_rejected_naming_the_field(availability, field):
    with pytest.raises(InvalidAvailabilityError) as error:
        availability.validate()

    assert error.value.details == {"field": field}


@pytest.mark.parametrize(
    "availability",
    [
        weekly(slot=5, mon=((time(9), time(9, 5)),)),
        weekly(slot=240, mon=((time(8), time(12)),)),
        weekly(mon=((time(9), time(12)), (time(12), time(13)))),
        weekly("America/New_York"),
    ],
    ids=["shortest-slot", "longest-slot", "adjacent-periods", "no-periods"],
)
def test_a_well_formed_availability_validates(availability):
    availability.validate()


def test_the_serialised_form_lists_days_in_week_order_with_minute_times():
    availability = weekly(tue=((time(14), time(17)),), mon=((time(9), time(12)),), sat=())

    assert availability.to_dict() == {
        "timezone": "Europe/Paris",
        "slot_minutes": 30,
        "periods": {"mon": [["09:00", "12:00"]], "tue": [["14:00", "17:00"]]},
    }


def test_an_availability_round_trips_through_its_serialised_form():
    availability = paris_weekdays()

    assert WeeklyAvailability.from_dict(availability.to_dict()) == availability


def test_availabilities_read_from_periods_in_any_order_are_equal():
    zone = {"timezone": "Europe/Paris", "slot_minutes": 30}
    one = {**zone, "periods": {"mon": [["14:00", "17:00"], ["09:00", "12:00"]], "sun": []}}
    other = {**zone, "periods": {"mon": [["09:00", "12:00"], ["14:00", "17:00"]]}}

    assert WeeklyAvailability.from_dict(one) == WeeklyAvailability.from_dict(other)
    assert WeeklyAvailability.from_dict(one) != WeeklyAvailability.from_dict({**other, "slot_minutes": 15})
