"""PatientAgenda rules: a patient cannot hold two overlapping appointments."""

from domain.patient_agenda import PatientAgenda, PatientDoubleBookedError
from domain_helpers import CAUSE, MONDAY, emitted, given, refused, replayed, state, utc

NINE = utc(MONDAY, 9, 0)
NINE_THIRTY = utc(MONDAY, 9, 30)
TEN = utc(MONDAY, 10, 0)


def agenda() -> PatientAgenda:
    return PatientAgenda("patient-1", MONDAY, CAUSE.as_dict())


def agenda_holding_nine() -> PatientAgenda:
    a = agenda()
    a.hold("appt-1", NINE, NINE_THIRTY, CAUSE)
    return given(a)


def test_an_agenda_id_is_the_same_for_the_same_patient_and_day():
    assert agenda().id == PatientAgenda.create_id("patient-1", MONDAY)
    assert PatientAgenda.create_id("patient-1", MONDAY) != PatientAgenda.create_id("patient-2", MONDAY)


def test_holding_a_free_time_emits_held():
    a = given(agenda())

    a.hold("appt-1", NINE, NINE_THIRTY, CAUSE)

    [event] = a.collect_events()
    assert (type(event).__name__, event.appointment_id, event.start, event.end) == ("Held", "appt-1", NINE, NINE_THIRTY)
    assert a.holds["appt-1"].patient_id == "patient-1"


def test_holding_an_overlapping_time_is_refused_showing_the_clash():
    a = agenda_holding_nine()

    with refused(PatientDoubleBookedError, a) as error:
        a.hold("appt-2", utc(MONDAY, 9, 15), utc(MONDAY, 9, 45), CAUSE)

    assert [b["appointment_id"] for b in error.value.details["current"]["bookings"]] == ["appt-1"]
    assert list(a.holds) == ["appt-1"]


def test_holding_a_time_that_ends_when_another_starts_is_allowed():
    a = agenda_holding_nine()

    a.hold("appt-0", utc(MONDAY, 8, 30), NINE, CAUSE)
    a.hold("appt-2", NINE_THIRTY, TEN, CAUSE)

    assert emitted(a) == ["Held", "Held"]


def test_an_appointment_does_not_clash_with_its_own_hold():
    a = agenda_holding_nine()

    a.hold("appt-1", utc(MONDAY, 9, 15), utc(MONDAY, 9, 45), CAUSE)

    assert emitted(a) == ["Held"]
    assert a.holds["appt-1"].start == utc(MONDAY, 9, 15)


def test_releasing_a_hold_emits_released_and_frees_the_time():
    a = agenda_holding_nine()

    a.release("appt-1", CAUSE)
    a.hold("appt-2", NINE, NINE_THIRTY, CAUSE)

    assert emitted(a) == ["Released", "Held"]


def test_releasing_a_released_or_unknown_hold_emits_nothing():
    a = agenda_holding_nine()
    a.release("appt-1", CAUSE)
    given(a)

    a.release("appt-1", CAUSE)
    a.release("appt-unknown", CAUSE)

    assert emitted(a) == []


def test_an_agenda_replays_from_its_events():
    a = agenda()
    a.hold("appt-1", NINE, NINE_THIRTY, CAUSE)
    a.hold("appt-2", NINE_THIRTY, TEN, CAUSE)
    a.release("appt-1", CAUSE)

    copy = replayed(a)

    assert state(copy) == state(a)
    assert (copy.day, list(copy.holds)) == (MONDAY, ["appt-2"])
