"""Doctor rules: profile changes, publishing a weekly availability, and the slot grid it defines."""

from datetime import time

import pytest

from domain.doctors import Doctor, InvalidAvailabilityError, NoAvailabilityError, WeeklyAvailability
from domain_helpers import CAUSE, CAUSE_DICT, MONDAY, emitted, given, paris_weekdays, refused, replayed, state, utc

PROFILE = {"name": "Dr Ada Lovelace", "specialty": "cardiology"}


def doctor() -> Doctor:
    return Doctor("account-1", PROFILE, CAUSE.as_dict())


def doctor_with(availability: WeeklyAvailability) -> Doctor:
    d = doctor()
    d.set_availability(availability, CAUSE)
    return d


def test_registering_a_doctor_keeps_a_copy_of_the_profile():
    profile = dict(PROFILE)
    d = Doctor("account-1", profile, CAUSE.as_dict())
    profile["name"] = "changed by the caller"

    assert emitted(d) == ["Registered"]
    assert d.profile == PROFILE
    assert d.availability is None


def test_updating_the_profile_emits_only_the_changed_fields():
    d = given(doctor())

    d.update_profile({"name": "Dr Ada Lovelace", "specialty": "neurology", "phone": "+33 1 23"}, CAUSE)

    [event] = d.collect_events()
    assert type(event).__name__ == "ProfileUpdated"
    assert event.changes == {"specialty": "neurology", "phone": "+33 1 23"}
    assert event.cause == CAUSE_DICT
    assert d.profile == {"name": "Dr Ada Lovelace", "specialty": "neurology", "phone": "+33 1 23"}


def test_updating_the_profile_with_its_current_values_emits_nothing():
    d = given(doctor())

    d.update_profile({"specialty": "cardiology"}, CAUSE)

    assert emitted(d) == []


def test_setting_an_availability_emits_it_in_its_serialised_form():
    d = given(doctor())

    d.set_availability(paris_weekdays(), CAUSE)

    [event] = d.collect_events()
    assert type(event).__name__ == "AvailabilitySet"
    assert event.availability == paris_weekdays().to_dict()
    assert d.availability == paris_weekdays()


def test_setting_the_same_availability_again_emits_nothing():
    d = given(doctor_with(paris_weekdays()))

    d.set_availability(paris_weekdays(), CAUSE)

    assert emitted(d) == []


def test_setting_a_different_availability_emits_it():
    d = given(doctor_with(paris_weekdays(30)))

    d.set_availability(paris_weekdays(15), CAUSE)

    assert emitted(d) == ["AvailabilitySet"]
    assert d.availability.slot_minutes == 15


def test_setting_an_equal_availability_given_in_another_order_emits_nothing():
    morning, afternoon = (time(9), time(12)), (time(14), time(17))
    d = given(doctor_with(WeeklyAvailability("Europe/Paris", 30, {"mon": (afternoon, morning)})))

    d.set_availability(WeeklyAvailability("Europe/Paris", 30, {"mon": (afternoon, morning)}), CAUSE)

    assert emitted(d) == []


def test_a_malformed_availability_is_refused():
    d = given(doctor_with(paris_weekdays()))

    with refused(InvalidAvailabilityError, d):
        d.set_availability(WeeklyAvailability("Europe/Paris", 300, {}), CAUSE)

    assert d.availability == paris_weekdays()


def test_a_doctor_without_availability_has_no_slot():
    with pytest.raises(NoAvailabilityError) as error:
        doctor().slot_at(utc(MONDAY, 7))

    assert error.value.details == {"field": "doctor_id"}


def test_a_doctor_slot_is_on_the_grid_of_the_availability():
    assert doctor_with(paris_weekdays()).slot_at(utc(MONDAY, 7)) == (utc(MONDAY, 7), utc(MONDAY, 7, 30), MONDAY)


def test_a_doctor_replays_from_its_events():
    d = doctor_with(paris_weekdays())
    d.update_profile({"specialty": "neurology"}, CAUSE)

    copy = replayed(d)

    assert state(copy) == state(d)
    assert copy.availability == paris_weekdays()
    assert copy.profile == {"name": "Dr Ada Lovelace", "specialty": "neurology"}
