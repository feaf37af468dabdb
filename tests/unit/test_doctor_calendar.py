"""DoctorCalendar rules: no double booking unless overbooked with a reason, leave only on a free day."""

from datetime import date

import pytest

from domain.doctor_calendar import (
    DoctorCalendar,
    DoctorOnLeaveError,
    LeaveClashesWithBookingsError,
    SlotTakenError,
)
from domain_helpers import CAUSE, CAUSE_DICT, MONDAY, emitted, given, refused, replayed, state, utc

NINE = utc(MONDAY, 7, 0)
NINE_THIRTY = utc(MONDAY, 7, 30)
TEN = utc(MONDAY, 8, 0)


def calendar() -> DoctorCalendar:
    return DoctorCalendar("doctor-1", MONDAY, CAUSE.as_dict())


def calendar_with_booking() -> DoctorCalendar:
    c = calendar()
    c.book("appt-1", "patient-1", NINE, NINE_THIRTY, None, CAUSE)
    return given(c)


def calendar_on_leave() -> DoctorCalendar:
    c = calendar()
    c.take_leave("conference", CAUSE)
    return given(c)


def test_a_calendar_id_is_the_same_for_the_same_doctor_and_day():
    assert DoctorCalendar.create_id("doctor-1", MONDAY) == DoctorCalendar.create_id("doctor-1", date(2025, 6, 2))
    assert DoctorCalendar.create_id("doctor-1", MONDAY) != DoctorCalendar.create_id("doctor-1", date(2025, 6, 3))
    assert DoctorCalendar.create_id("doctor-1", MONDAY) != DoctorCalendar.create_id("doctor-2", MONDAY)


def test_opening_a_calendar_uses_the_doctor_and_day_id():
    c = calendar()

    assert emitted(c) == ["Opened"]
    assert c.id == DoctorCalendar.create_id("doctor-1", MONDAY)


def test_booking_a_free_slot_emits_slot_booked():
    c = given(calendar())

    c.book("appt-1", "patient-1", NINE, NINE_THIRTY, None, CAUSE)

    [event] = c.collect_events()
    assert type(event).__name__ == "SlotBooked"
    assert (event.appointment_id, event.patient_id, event.start, event.end) == ("appt-1", "patient-1", NINE, NINE_THIRTY)
    assert (event.overbooked, event.overbook_reason, event.cause) == (False, None, CAUSE_DICT)
    assert c.bookings["appt-1"].overbooked is False


@pytest.mark.parametrize(
    ("start", "end"),
    [(NINE, NINE_THIRTY), (utc(MONDAY, 6, 45), utc(MONDAY, 7, 15)), (utc(MONDAY, 7, 15), TEN)],
    ids=["same-slot", "overlapping-its-start", "overlapping-its-end"],
)
def test_booking_over_an_existing_booking_is_refused_showing_it(start, end):
    c = calendar_with_booking()

    with refused(SlotTakenError, c) as error:
        c.book("appt-2", "patient-2", start, end, None, CAUSE)

    assert error.value.details == {
        "current": {
            "bookings": [
                {
                    "appointment_id": "appt-1",
                    "patient_id": "patient-1",
                    "start": NINE.isoformat(),
                    "end": NINE_THIRTY.isoformat(),
                    "overbooked": False,
                }
            ]
        }
    }
    assert list(c.bookings) == ["appt-1"]


def test_booking_right_after_an_existing_booking_is_allowed():
    c = calendar_with_booking()

    c.book("appt-2", "patient-2", NINE_THIRTY, TEN, None, CAUSE)

    assert emitted(c) == ["SlotBooked"]


def test_overbooking_with_a_reason_succeeds_and_is_marked_overbooked():
    c = calendar_with_booking()

    c.book("appt-2", "patient-2", NINE, NINE_THIRTY, "emergency", CAUSE)

    [event] = c.collect_events()
    assert (type(event).__name__, event.overbooked, event.overbook_reason) == ("SlotBooked", True, "emergency")
    assert c.bookings["appt-2"].overbooked is True


def test_a_reason_on_a_free_slot_is_not_an_overbooking():
    c = given(calendar())

    c.book("appt-1", "patient-1", NINE, NINE_THIRTY, "emergency", CAUSE)

    assert c.bookings["appt-1"].overbooked is False


@pytest.mark.parametrize("overbook_reason", [None, "emergency"])
def test_booking_a_doctor_on_leave_is_refused(overbook_reason):
    c = calendar_on_leave()

    with refused(DoctorOnLeaveError, c) as error:
        c.book("appt-1", "patient-1", NINE, NINE_THIRTY, overbook_reason, CAUSE)

    assert error.value.details == {"current": {"day": "2025-06-02", "leave_reason": "conference"}}
    assert c.bookings == {}


def test_taking_leave_on_a_free_day_emits_leave_taken():
    c = given(calendar())

    c.take_leave("conference", CAUSE)

    [event] = c.collect_events()
    assert (type(event).__name__, event.reason) == ("LeaveTaken", "conference")
    assert c.leave_reason == "conference"


def test_taking_leave_on_a_day_with_bookings_is_refused_showing_them():
    c = calendar_with_booking()

    with refused(LeaveClashesWithBookingsError, c) as error:
        c.take_leave("conference", CAUSE)

    assert [b["appointment_id"] for b in error.value.details["current"]["bookings"]] == ["appt-1"]
    assert c.leave_reason is None


def test_taking_leave_again_emits_nothing_and_keeps_the_first_reason():
    c = calendar_on_leave()

    c.take_leave("holiday", CAUSE)

    assert emitted(c) == []
    assert c.leave_reason == "conference"


def test_cancelling_leave_emits_leave_cancelled_and_reopens_booking():
    c = calendar_on_leave()

    c.cancel_leave("conference cancelled", CAUSE)
    c.book("appt-1", "patient-1", NINE, NINE_THIRTY, None, CAUSE)

    assert emitted(c) == ["LeaveCancelled", "SlotBooked"]
    assert c.leave_reason is None


def test_cancelling_leave_when_not_on_leave_emits_nothing():
    c = given(calendar())

    c.cancel_leave("nothing to cancel", CAUSE)

    assert emitted(c) == []


def test_releasing_a_booking_emits_slot_released_and_frees_the_slot():
    c = calendar_with_booking()

    c.release("appt-1", CAUSE)
    c.book("appt-2", "patient-2", NINE, NINE_THIRTY, None, CAUSE)

    assert emitted(c) == ["SlotReleased", "SlotBooked"]
    assert list(c.bookings) == ["appt-2"]


def test_releasing_a_released_or_unknown_booking_emits_nothing():
    c = calendar_with_booking()
    c.release("appt-1", CAUSE)
    given(c)

    c.release("appt-1", CAUSE)
    c.release("appt-unknown", CAUSE)

    assert emitted(c) == []


def test_the_booking_of_a_patient_is_found_by_its_start():
    c = calendar_with_booking()

    assert c.booking_of("patient-1", NINE).appointment_id == "appt-1"
    assert c.booking_of("patient-1", NINE_THIRTY) is None
    assert c.booking_of("patient-2", NINE) is None


def test_a_calendar_replays_from_its_events():
    c = calendar()
    c.book("appt-1", "patient-1", NINE, NINE_THIRTY, None, CAUSE)
    c.book("appt-2", "patient-2", NINE, NINE_THIRTY, "emergency", CAUSE)
    c.book("appt-3", "patient-3", NINE_THIRTY, TEN, None, CAUSE)
    c.release("appt-3", CAUSE)

    copy = replayed(c)

    assert state(copy) == state(c)
    assert copy.day == MONDAY
    assert copy.booking_of("patient-2", NINE).overbooked is True
