"""Appointment rules: confirm, cancel, attendance, status corrections and rescheduling."""

from datetime import date
from uuid import UUID

import pytest

from domain.appointment import (
    Appointment,
    CancellationWindowClosedError,
    InvalidCorrectionError,
    NotStartedError,
    Status,
)
from domain.shared import InvalidTransitionError
from domain_helpers import CAUSE, CAUSE_DICT, MONDAY, emitted, given, minutes, refused, replayed, state, utc

APPOINTMENT_ID = UUID("00000000-0000-4000-8000-000000000001")
START = utc(MONDAY, 7, 0)
END = utc(MONDAY, 7, 30)
BEFORE = START - minutes(60)
AFTER = START + minutes(10)
DEADLINE = START - minutes(24 * 60)


def booked() -> Appointment:
    return Appointment(
        id=APPOINTMENT_ID,
        doctor_id="doctor-1",
        patient_id="patient-1",
        start=START,
        end=END,
        day=MONDAY,
        overbooked=False,
        reason=None,
        cause=CAUSE.as_dict(),
    )


def appointment_in(status: Status) -> Appointment:
    a = booked()
    if status == Status.CONFIRMED:
        a.confirm(CAUSE)
    elif status == Status.CANCELLED:
        a.cancel("patient asked", BEFORE, None, CAUSE)
    elif status == Status.COMPLETED:
        a.complete(AFTER, CAUSE)
    elif status == Status.NO_SHOW:
        a.mark_no_show(AFTER, CAUSE)
    return given(a)


def test_booking_emits_booked_under_the_callers_id():
    a = booked()

    [event] = a.collect_events()
    assert type(event).__name__ == "Booked"
    assert a.id == APPOINTMENT_ID
    assert (event.start, event.end, event.day, event.overbooked, event.cause) == (START, END, MONDAY, False, CAUSE_DICT)
    assert (a.status, a.is_active) == (Status.BOOKED, True)


def test_confirming_a_booked_appointment_emits_confirmed():
    a = appointment_in(Status.BOOKED)

    a.confirm(CAUSE)

    assert emitted(a) == ["Confirmed"]
    assert a.status == Status.CONFIRMED


def test_confirming_a_confirmed_appointment_emits_nothing():
    a = appointment_in(Status.CONFIRMED)

    a.confirm(CAUSE)

    assert emitted(a) == []


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW])
def test_cannot_confirm_an_appointment_that_is_over(status):
    a = appointment_in(status)

    with refused(InvalidTransitionError, a) as error:
        a.confirm(CAUSE)

    assert error.value.details["current"] == {
        "appointment_id": str(APPOINTMENT_ID),
        "status": status.value,
        "start": START.isoformat(),
        "end": END.isoformat(),
    }
    assert a.status == status


@pytest.mark.parametrize("status", [Status.BOOKED, Status.CONFIRMED])
def test_cancelling_an_active_appointment_emits_cancelled(status):
    a = appointment_in(status)

    a.cancel("patient asked", BEFORE, DEADLINE + minutes(60 * 24), CAUSE)

    [event] = a.collect_events()
    assert type(event).__name__ == "Cancelled"
    assert event.reason == "patient asked"
    assert (a.status, a.is_active) == (Status.CANCELLED, False)


def test_cancelling_a_cancelled_appointment_emits_nothing():
    a = appointment_in(Status.CANCELLED)

    a.cancel("again", AFTER, DEADLINE, CAUSE)

    assert emitted(a) == []


def test_cannot_cancel_after_the_deadline():
    a = appointment_in(Status.BOOKED)

    with refused(CancellationWindowClosedError, a) as error:
        a.cancel("too late", DEADLINE + minutes(1), DEADLINE, CAUSE)

    assert error.value.details["current"]["status"] == "booked"
    assert a.status == Status.BOOKED


def test_cancelling_exactly_at_the_deadline_is_allowed():
    a = appointment_in(Status.BOOKED)

    a.cancel("just in time", DEADLINE, DEADLINE, CAUSE)

    assert emitted(a) == ["Cancelled"]


def test_without_a_deadline_cancelling_is_allowed_even_after_the_start():
    a = appointment_in(Status.CONFIRMED)

    a.cancel("clinic closed", AFTER, None, CAUSE)

    assert emitted(a) == ["Cancelled"]


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.NO_SHOW])
def test_cannot_cancel_an_attended_or_missed_appointment(status):
    a = appointment_in(status)

    with refused(InvalidTransitionError, a) as error:
        a.cancel("oops", AFTER, None, CAUSE)

    assert error.value.details["current"]["status"] == status.value


@pytest.mark.parametrize(
    ("record", "event_name", "status"),
    [
        (Appointment.complete, "Completed", Status.COMPLETED),
        (Appointment.mark_no_show, "MarkedNoShow", Status.NO_SHOW),
    ],
    ids=["complete", "no-show"],
)
class TestAttendance:
    def test_recording_attendance_of_an_active_appointment_after_its_start_emits_it(self, record, event_name, status):
        a = appointment_in(Status.CONFIRMED)

        record(a, AFTER, CAUSE)

        assert emitted(a) == [event_name]
        assert a.status == status

    def test_recording_attendance_at_the_start_is_allowed(self, record, event_name, status):
        a = appointment_in(Status.BOOKED)

        record(a, START, CAUSE)

        assert emitted(a) == [event_name]

    def test_cannot_record_attendance_before_the_start(self, record, event_name, status):
        a = appointment_in(Status.CONFIRMED)

        with refused(NotStartedError, a) as error:
            record(a, START - minutes(1), CAUSE)

        assert error.value.details["current"]["status"] == "confirmed"

    def test_recording_the_same_attendance_again_emits_nothing(self, record, event_name, status):
        a = appointment_in(status)

        record(a, AFTER, CAUSE)

        assert emitted(a) == []

    def test_cannot_record_attendance_of_a_cancelled_appointment(self, record, event_name, status):
        a = appointment_in(Status.CANCELLED)

        with refused(InvalidTransitionError, a):
            record(a, AFTER, CAUSE)

        assert a.status == Status.CANCELLED


def test_cannot_complete_an_appointment_marked_as_no_show():
    a = appointment_in(Status.NO_SHOW)

    with refused(InvalidTransitionError, a):
        a.complete(AFTER, CAUSE)


def test_correcting_to_the_current_status_emits_nothing():
    a = appointment_in(Status.COMPLETED)

    a.correct_status(Status.COMPLETED, "same", AFTER, CAUSE)

    assert emitted(a) == []


def test_correcting_completed_to_no_show_after_the_start_emits_status_corrected():
    a = appointment_in(Status.COMPLETED)

    a.correct_status(Status.NO_SHOW, "patient never came", AFTER, CAUSE)

    [event] = a.collect_events()
    assert type(event).__name__ == "StatusCorrected"
    assert (event.previous_status, event.status, event.reason) == ("completed", "no_show", "patient never came")
    assert a.status == Status.NO_SHOW


def test_correcting_an_attendance_back_to_booked_is_allowed_before_the_start():
    a = appointment_in(Status.NO_SHOW)

    a.correct_status(Status.BOOKED, "marked by mistake", BEFORE, CAUSE)

    assert emitted(a) == ["StatusCorrected"]
    assert a.status == Status.BOOKED


def test_cannot_correct_a_status_to_cancelled():
    a = appointment_in(Status.CONFIRMED)

    with refused(InvalidCorrectionError, a) as error:
        a.correct_status(Status.CANCELLED, "use cancel", AFTER, CAUSE)

    assert error.value.details == {"field": "status"}
    assert a.status == Status.CONFIRMED


@pytest.mark.parametrize("target", [Status.COMPLETED, Status.NO_SHOW])
def test_cannot_correct_to_an_attendance_before_the_start(target):
    a = appointment_in(Status.CONFIRMED)

    with refused(NotStartedError, a):
        a.correct_status(target, "early", BEFORE, CAUSE)


@pytest.mark.parametrize("target", [Status.BOOKED, Status.CONFIRMED, Status.COMPLETED, Status.NO_SHOW])
def test_cannot_correct_a_cancelled_appointment(target):
    a = appointment_in(Status.CANCELLED)

    with refused(InvalidTransitionError, a) as error:
        a.correct_status(target, "revive", AFTER, CAUSE)

    assert error.value.details["current"]["status"] == "cancelled"


@pytest.mark.parametrize("status", [Status.BOOKED, Status.CONFIRMED])
def test_an_active_appointment_is_reschedulable_before_the_deadline(status):
    appointment_in(status).check_reschedulable(DEADLINE, DEADLINE)


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW])
def test_an_appointment_that_is_over_is_not_reschedulable(status):
    with pytest.raises(InvalidTransitionError):
        appointment_in(status).check_reschedulable(BEFORE, None)


def test_an_appointment_is_not_reschedulable_after_the_deadline():
    with pytest.raises(CancellationWindowClosedError):
        appointment_in(Status.BOOKED).check_reschedulable(DEADLINE + minutes(1), DEADLINE)


def test_rescheduling_records_the_previous_times_and_books_again():
    a = appointment_in(Status.CONFIRMED)
    tuesday = date(2025, 6, 3)

    a.reschedule(utc(tuesday, 8), utc(tuesday, 8, 30), tuesday, "doctor away", CAUSE)

    [event] = a.collect_events()
    assert type(event).__name__ == "Rescheduled"
    assert (event.previous_start, event.previous_end) == (START, END)
    new_times = (utc(tuesday, 8), utc(tuesday, 8, 30), tuesday)
    assert (event.start, event.end, event.day, event.reason) == (*new_times, "doctor away")
    assert (a.start, a.end, a.day, a.status, a.overbooked) == (*new_times, Status.BOOKED, False)


def test_an_appointment_replays_from_its_events():
    tuesday = date(2025, 6, 3)
    a = Appointment(
        id=APPOINTMENT_ID,
        doctor_id="doctor-1",
        patient_id="patient-1",
        start=START,
        end=END,
        day=MONDAY,
        overbooked=True,
        reason="urgent",
        cause=CAUSE.as_dict(),
    )
    a.confirm(CAUSE)
    a.reschedule(utc(tuesday, 8), utc(tuesday, 8, 30), tuesday, "moved", CAUSE)
    a.complete(utc(tuesday, 8, 5), CAUSE)
    a.correct_status(Status.NO_SHOW, "mistake", utc(tuesday, 9), CAUSE)

    copy = replayed(a)

    assert state(copy) == state(a)
    assert (copy.id, copy.version, copy.status, copy.day) == (APPOINTMENT_ID, 5, Status.NO_SHOW, tuesday)
    assert copy.start.utcoffset() is not None


@pytest.mark.parametrize("status", [Status.BOOKED, Status.CONFIRMED])
def test_starting_a_consultation_puts_an_active_appointment_in_progress(status):
    a = appointment_in(status)

    a.start_consultation("consultation-1", AFTER, CAUSE)

    assert emitted(a) == ["ConsultationStarted"]
    assert (a.status, a.consultation_id) == (Status.IN_PROGRESS, "consultation-1")


def test_starting_the_same_consultation_again_emits_nothing():
    a = appointment_in(Status.BOOKED)
    a.start_consultation("consultation-1", AFTER, CAUSE)
    a = given(a)

    a.start_consultation("consultation-1", AFTER, CAUSE)

    assert emitted(a) == []


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW])
def test_cannot_start_a_consultation_for_an_appointment_that_is_over(status):
    a = appointment_in(status)

    with refused(InvalidTransitionError, a) as error:
        a.start_consultation("consultation-1", AFTER, CAUSE)

    assert error.value.details["current"]["status"] == status.value


def in_progress() -> Appointment:
    a = appointment_in(Status.BOOKED)
    a.start_consultation("consultation-1", AFTER, CAUSE)
    return given(a)


def test_an_appointment_in_progress_can_be_completed_but_not_cancelled_rescheduled_or_missed():
    a = in_progress()

    with refused(InvalidTransitionError, a):
        a.cancel("changed my mind", AFTER, None, CAUSE)
    with refused(InvalidTransitionError, a):
        a.check_reschedulable(AFTER, None)
    with refused(InvalidTransitionError, a):
        a.mark_no_show(AFTER, CAUSE)
    with refused(InvalidTransitionError, a):
        a.start_consultation("consultation-2", AFTER, CAUSE)
    a.complete(AFTER, CAUSE)

    assert emitted(a) == ["Completed"]


def test_an_appointment_in_progress_replays_with_its_consultation():
    a = booked()
    a.start_consultation("consultation-1", AFTER, CAUSE)

    copy = replayed(a)

    assert (copy.status, copy.consultation_id) == (Status.IN_PROGRESS, "consultation-1")
