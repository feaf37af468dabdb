"""Scheduling rules that span a doctor, their calendar day and the patient's agendas."""

from datetime import date, datetime, time
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from domain import scheduling
from domain.appointment import CancellationWindowClosedError, Status
from domain.doctor_calendar import DoctorCalendar, SlotTakenError
from domain.doctors import Doctor, NoAvailabilityError, OffGridError, WeeklyAvailability
from domain.patient_agenda import PatientAgenda, PatientDoubleBookedError
from domain.scheduling import BookingInPastError, SlotRequest
from domain.shared import InvalidTransitionError, utc_days
from domain_helpers import CAUSE, MONDAY, SUNDAY_BEFORE, emitted, given, minutes, paris_weekdays, refused, utc

NOW = SUNDAY_BEFORE
TUESDAY = date(2025, 6, 3)
APPT = UUID("00000000-0000-4000-8000-00000000000a")
OTHER_APPT = UUID("00000000-0000-4000-8000-00000000000b")
NINE_PARIS = utc(MONDAY, 7, 0)
MONDAY_SLOT = SlotRequest(NINE_PARIS, utc(MONDAY, 7, 30), MONDAY)
TUESDAY_SLOT = SlotRequest(utc(TUESDAY, 7, 0), utc(TUESDAY, 7, 30), TUESDAY)


def doctor(availability: WeeklyAvailability | None = None) -> Doctor:
    d = Doctor("account-1", {"name": "Dr Ada"}, CAUSE.as_dict())
    d.set_availability(availability or paris_weekdays(), CAUSE)
    return given(d)


def calendar(day: date = MONDAY) -> DoctorCalendar:
    return given(DoctorCalendar("doctor-1", day, CAUSE.as_dict()))


def agenda(day: date = MONDAY, patient_id: str = "patient-1") -> PatientAgenda:
    return given(PatientAgenda(patient_id, day, CAUSE.as_dict()))


def book(d, c, agendas, slot=MONDAY_SLOT, patient_id="patient-1", appointment_id=APPT, overbook_reason=None):
    return scheduling.book(
        appointment_id=appointment_id,
        doctor=d,
        calendar=c,
        agendas=agendas,
        patient_id=patient_id,
        slot=slot,
        overbook_reason=overbook_reason,
        cause=CAUSE,
    )


def reschedule(appointment, slot, old_calendar, new_calendar, old_agendas, new_agendas):
    scheduling.reschedule(
        appointment=appointment,
        old_calendar=old_calendar,
        new_calendar=new_calendar,
        old_agendas=old_agendas,
        new_agendas=new_agendas,
        slot=slot,
        reason="moved",
        cause=CAUSE,
    )


def cancel(appointment, c, a, now=NOW, deadline=None):
    scheduling.cancel(
        appointment=appointment, calendar=c, agendas=[a], reason="r", now=now, deadline=deadline, cause=CAUSE
    )


def booked_monday():
    d, c, a = doctor(), calendar(), agenda()
    appointment = given(book(d, c, [a]))
    given(c), given(a)
    return appointment, c, a


def test_a_slot_in_the_future_on_the_grid_is_checked_with_its_local_day():
    assert scheduling.check_slot(doctor(), NINE_PARIS, NOW) == MONDAY_SLOT


@pytest.mark.parametrize("now", [NINE_PARIS, NINE_PARIS + minutes(1)], ids=["starting-now", "started"])
def test_a_slot_that_is_not_in_the_future_is_refused(now):
    with pytest.raises(BookingInPastError) as error:
        scheduling.check_slot(doctor(), NINE_PARIS, now)

    assert error.value.details == {"field": "start"}


def test_checking_a_slot_off_the_grid_is_refused():
    with pytest.raises(OffGridError):
        scheduling.check_slot(doctor(), NINE_PARIS + minutes(10), NOW)


def test_checking_a_slot_of_a_doctor_without_availability_is_refused():
    with pytest.raises(NoAvailabilityError):
        scheduling.check_slot(given(Doctor("account-1", {}, CAUSE.as_dict())), NINE_PARIS, NOW)


def test_booking_creates_the_appointment_books_the_calendar_and_holds_the_agenda():
    d, c, a = doctor(), calendar(), agenda()

    appointment = book(d, c, [a])

    assert emitted(appointment) == ["Booked"]
    assert (emitted(c), emitted(a)) == (["SlotBooked"], ["Held"])
    assert (appointment.id, appointment.doctor_id, appointment.patient_id) == (APPT, str(d.id), "patient-1")
    assert (appointment.start, appointment.end, appointment.day, appointment.overbooked) == (
        NINE_PARIS,
        utc(MONDAY, 7, 30),
        MONDAY,
        False,
    )


def test_booking_the_same_slot_again_for_the_same_patient_answers_none_and_emits_nothing():
    _, c, a = booked_monday()

    assert book(doctor(), c, [a], appointment_id=OTHER_APPT) is None
    assert (emitted(c), emitted(a)) == ([], [])


def test_booking_a_slot_taken_by_another_patient_is_refused():
    _, c, _ = booked_monday()
    other = agenda(patient_id="patient-2")

    with refused(SlotTakenError, c, other):
        book(doctor(), c, [other], patient_id="patient-2", appointment_id=OTHER_APPT)


def test_overbooking_a_taken_slot_with_a_reason_makes_an_overbooked_appointment():
    _, c, _ = booked_monday()

    appointment = book(
        doctor(), c, [agenda(patient_id="patient-2")], patient_id="patient-2", appointment_id=OTHER_APPT,
        overbook_reason="emergency",
    )

    assert appointment.overbooked is True
    assert emitted(c) == ["SlotBooked"]


def test_booking_a_patient_who_holds_another_appointment_at_that_time_is_refused():
    busy = agenda()
    busy.hold("appt-with-another-doctor", NINE_PARIS, utc(MONDAY, 8, 0), CAUSE)

    with pytest.raises(PatientDoubleBookedError):
        book(doctor(), calendar(), [given(busy)])


def test_a_slot_crossing_utc_midnight_is_held_in_both_utc_days():
    new_york_evening = WeeklyAvailability("America/New_York", 60, {"mon": ((time(19, 30), time(20, 30)),)})
    d = doctor(new_york_evening)
    slot = scheduling.check_slot(d, utc(MONDAY, 23, 30), NOW)
    agendas = [agenda(day) for day in utc_days(slot.start, slot.end)]

    book(d, calendar(slot.day), agendas, slot=slot)

    assert [a.day for a in agendas] == [MONDAY, TUESDAY]
    assert [emitted(a) for a in agendas] == [["Held"], ["Held"]]


def test_rescheduling_within_the_day_moves_the_booking_and_the_hold():
    appointment, c, a = booked_monday()
    later = SlotRequest(utc(MONDAY, 8, 0), utc(MONDAY, 8, 30), MONDAY)

    reschedule(appointment, later, c, c, [a], [a])

    assert (emitted(c), emitted(a), emitted(appointment)) == (
        ["SlotReleased", "SlotBooked"],
        ["Released", "Held"],
        ["Rescheduled"],
    )
    assert c.bookings[str(APPT)].start == a.holds[str(APPT)].start == appointment.start == utc(MONDAY, 8, 0)


def test_rescheduling_to_another_day_releases_the_old_day_and_books_the_new_one():
    appointment, old_c, old_a = booked_monday()
    new_c, new_a = calendar(TUESDAY), agenda(TUESDAY)

    reschedule(appointment, TUESDAY_SLOT, old_c, new_c, [old_a], [new_a])

    assert (emitted(old_c), emitted(new_c)) == (["SlotReleased"], ["SlotBooked"])
    assert (emitted(old_a), emitted(new_a)) == (["Released"], ["Held"])
    [event] = appointment.collect_events()
    assert (event.previous_start, event.start, event.day) == (NINE_PARIS, utc(TUESDAY, 7, 0), TUESDAY)
    assert (old_c.bookings, old_a.holds, appointment.day) == ({}, {}, TUESDAY)


def test_rescheduling_into_a_taken_slot_is_refused():
    appointment, old_c, old_a = booked_monday()
    new_c = calendar(TUESDAY)
    new_c.book("someone-else", "patient-2", TUESDAY_SLOT.start, TUESDAY_SLOT.end, None, CAUSE)

    with pytest.raises(SlotTakenError):
        reschedule(appointment, TUESDAY_SLOT, old_c, given(new_c), [old_a], [agenda(TUESDAY)])


def test_cancelling_releases_the_calendar_and_the_agenda():
    appointment, c, a = booked_monday()

    cancel(appointment, c, a)

    assert (emitted(appointment), emitted(c), emitted(a)) == (["Cancelled"], ["SlotReleased"], ["Released"])
    assert (appointment.status, c.bookings, a.holds) == (Status.CANCELLED, {}, {})


def test_cancelling_a_cancelled_appointment_emits_nothing_anywhere():
    appointment, c, a = booked_monday()
    cancel(appointment, c, a)
    given(appointment), given(c), given(a)

    cancel(appointment, c, a)

    assert (emitted(appointment), emitted(c), emitted(a)) == ([], [], [])


def test_cancelling_a_completed_appointment_is_refused_and_keeps_the_booking():
    appointment, c, a = booked_monday()
    appointment.complete(NINE_PARIS, CAUSE)
    given(appointment)

    with refused(InvalidTransitionError, appointment, c, a):
        cancel(appointment, c, a, now=NINE_PARIS)

    assert list(c.bookings) == list(a.holds) == [str(APPT)]


def test_cancelling_after_the_deadline_is_refused_and_keeps_the_booking():
    appointment, c, a = booked_monday()

    with refused(CancellationWindowClosedError, appointment, c, a):
        cancel(appointment, c, a, now=NOW, deadline=NOW - minutes(1))


def test_a_slot_on_the_spring_forward_night_cannot_be_booked_twice():
    night_shift = WeeklyAvailability("Europe/Paris", 30, {"sun": ((time(0), time(6)),)})
    spring_forward = date(2025, 3, 30)
    d = doctor(night_shift)
    slot = scheduling.check_slot(d, utc(spring_forward, 1, 30), utc(spring_forward, 0, 0))
    c = calendar(slot.day)
    book(d, c, [agenda(spring_forward)], slot=slot)

    with pytest.raises(SlotTakenError):
        book(d, c, [agenda(spring_forward, "patient-2")], slot, patient_id="patient-2", appointment_id=OTHER_APPT)


def test_an_interval_crossing_utc_midnight_touches_two_utc_days():
    assert utc_days(utc(MONDAY, 23, 30), utc(TUESDAY, 0, 30)) == [MONDAY, TUESDAY]


def test_an_interval_ending_at_utc_midnight_touches_one_utc_day():
    assert utc_days(utc(MONDAY, 23, 30), utc(TUESDAY, 0, 0)) == [MONDAY]


def test_utc_days_are_counted_in_utc_whatever_the_zone_of_the_interval():
    tokyo = ZoneInfo("Asia/Tokyo")
    start, end = datetime(2025, 6, 3, 8, 0, tzinfo=tokyo), datetime(2025, 6, 3, 9, 30, tzinfo=tokyo)

    assert utc_days(start, end) == [MONDAY, TUESDAY]
