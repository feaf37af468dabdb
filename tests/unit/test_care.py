"""PatientCare rules: relationships (primary care, referral, temporary), their end, the access appointments give,
break-the-glass and the basis of access."""

from copy import deepcopy
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from domain.appointment import Appointment, Status, VisitAccess
from domain.care import (
    Basis,
    ForeignAppointmentError,
    Kind,
    PatientCare,
    PrimaryCareTakenError,
    RelationshipExistsError,
    RelationshipNotFoundError,
    Visit,
    care_id,
)
from domain.shared import InvalidInputError
from domain_helpers import CAUSE, CAUSE_DICT, MONDAY, emitted, given, minutes, refused, replayed, state, utc

NOW = utc(MONDAY, 9, 0)
LATER = NOW + timedelta(days=7)
AFTER_VISIT = timedelta(hours=24)
EMERGENCY_REASON = "Unconscious in A&E, no records"


def care() -> PatientCare:
    return given(PatientCare(patient_id="patient-1", cause=CAUSE.as_dict()))


def start(
    c: PatientCare,
    kind: Kind,
    doctor_id: str = "doctor-1",
    relationship_id: str = "rel-1",
    referring_doctor_id: str | None = None,
    expires_at: datetime | None = None,
    now: datetime = NOW,
    reason: str = "registered with the practice",
) -> None:
    c.start(relationship_id, doctor_id, kind, reason, now, CAUSE, referring_doctor_id, expires_at)


def with_primary(doctor_id: str = "doctor-1") -> PatientCare:
    c = care()
    start(c, Kind.PRIMARY, doctor_id)
    return given(c)


def test_the_care_stream_of_a_patient_has_one_id_and_opens_with_its_cause():
    c = PatientCare(patient_id="patient-1", cause=CAUSE.as_dict())

    [opened] = c.collect_events()
    assert type(opened).__name__ == "Opened"
    assert (c.id, opened.patient_id, opened.cause) == (care_id("patient-1"), "patient-1", CAUSE_DICT)
    assert care_id("patient-1") == care_id("patient-1") != care_id("patient-2")


def test_starting_primary_care_emits_relationship_started():
    c = care()

    start(c, Kind.PRIMARY)

    [event] = c.collect_events()
    assert type(event).__name__ == "RelationshipStarted"
    assert (event.relationship_id, event.doctor_id, event.kind, event.started_at) == ("rel-1", "doctor-1", "primary_care", NOW)
    assert (event.referring_doctor_id, event.expires_at, event.cause) == (None, None, CAUSE_DICT)
    assert c.relationships["rel-1"].kind == Kind.PRIMARY and c.relationships["rel-1"].is_active(LATER)


def test_a_referral_names_its_referring_doctor():
    c = care()

    start(c, Kind.REFERRAL, "doctor-2", referring_doctor_id="doctor-1", expires_at=LATER)

    assert emitted(c) == ["RelationshipStarted"]
    referral = c.relationships["rel-1"]
    assert (referral.doctor_id, referral.referring_doctor_id, referral.expires_at) == ("doctor-2", "doctor-1", LATER)


def test_a_referral_may_be_open_ended():
    c = care()

    start(c, Kind.REFERRAL, "doctor-2", referring_doctor_id="doctor-1")

    assert emitted(c) == ["RelationshipStarted"]


def test_a_temporary_relationship_carries_its_expiry():
    c = care()

    start(c, Kind.TEMPORARY, expires_at=LATER)

    assert emitted(c) == ["RelationshipStarted"]
    assert c.relationships["rel-1"].expires_at == LATER


def test_starting_the_same_relationship_id_again_emits_nothing():
    c = with_primary()

    start(c, Kind.PRIMARY)

    assert emitted(c) == []


@pytest.mark.parametrize(
    "kind, extra, field",
    [
        (Kind.TEMPORARY, {}, "expires_at"),
        (Kind.PRIMARY, {"expires_at": LATER}, "expires_at"),
        (Kind.TEMPORARY, {"expires_at": NOW}, "expires_at"),
        (Kind.REFERRAL, {"referring_doctor_id": "doctor-9", "expires_at": NOW - minutes(1)}, "expires_at"),
        (Kind.REFERRAL, {}, "referring_doctor_id"),
        (Kind.REFERRAL, {"referring_doctor_id": ""}, "referring_doctor_id"),
        (Kind.PRIMARY, {"referring_doctor_id": "doctor-9"}, "referring_doctor_id"),
        (Kind.TEMPORARY, {"referring_doctor_id": "doctor-9", "expires_at": LATER}, "referring_doctor_id"),
        (Kind.REFERRAL, {"referring_doctor_id": "doctor-1"}, "doctor_id"),
        (Kind.PRIMARY, {"reason": "   "}, "reason"),
    ],
    ids=[
        "temporary-without-expiry",
        "primary-with-expiry",
        "expiry-now",
        "expiry-past",
        "referral-without-referrer",
        "referral-empty-referrer",
        "primary-with-referrer",
        "temporary-with-referrer",
        "self-referral",
        "blank-reason",
    ],
)
def test_a_malformed_relationship_is_refused_naming_the_field(kind, extra, field):
    c = care()

    with refused(InvalidInputError, c) as info:
        start(c, kind, "doctor-1", **extra)

    assert info.value.details["field"] == field
    assert c.relationships == {}


def test_a_second_active_relationship_of_the_same_kind_is_a_conflict_showing_the_current_one():
    c = care()
    start(c, Kind.TEMPORARY, expires_at=LATER)
    given(c)

    with refused(RelationshipExistsError, c) as info:
        start(c, Kind.TEMPORARY, relationship_id="rel-2", expires_at=LATER + minutes(60))

    assert info.value.details["current"]["relationship_id"] == "rel-1"
    assert info.value.details["current"]["kind"] == "temporary"


def test_a_doctor_may_hold_relationships_of_different_kinds_at_once():
    c = with_primary()

    start(c, Kind.TEMPORARY, relationship_id="rel-2", expires_at=LATER)

    assert emitted(c) == ["RelationshipStarted"]


def test_a_second_primary_care_doctor_is_a_conflict_showing_the_current_one():
    c = with_primary("doctor-1")

    with refused(PrimaryCareTakenError, c) as info:
        start(c, Kind.PRIMARY, "doctor-2", relationship_id="rel-2")

    assert info.value.details["current"]["doctor_id"] == "doctor-1"


def test_primary_care_is_free_again_once_the_relationship_ended():
    c = with_primary("doctor-1")
    c.end("rel-1", "patient moved away", NOW, CAUSE)
    given(c)

    start(c, Kind.PRIMARY, "doctor-2", relationship_id="rel-2")

    assert emitted(c) == ["RelationshipStarted"]
    assert c.doctors(NOW) == {"doctor-2"}


def test_an_expired_relationship_no_longer_blocks_a_new_one_of_its_kind():
    c = care()
    start(c, Kind.TEMPORARY, expires_at=NOW + minutes(30))
    given(c)

    start(c, Kind.TEMPORARY, relationship_id="rel-2", expires_at=LATER, now=NOW + minutes(30))

    assert emitted(c) == ["RelationshipStarted"]


def test_ending_a_relationship_emits_relationship_ended_with_the_reason():
    c = with_primary()

    c.end("rel-1", "patient moved away", NOW + minutes(5), CAUSE)

    [event] = c.collect_events()
    assert type(event).__name__ == "RelationshipEnded"
    assert (event.relationship_id, event.reason, event.ended_at, event.cause) == (
        "rel-1",
        "patient moved away",
        NOW + minutes(5),
        CAUSE_DICT,
    )
    ended = c.relationships["rel-1"]
    assert (ended.ended_at, ended.end_reason, ended.is_active(NOW + minutes(6))) == (NOW + minutes(5), "patient moved away", False)


def test_ending_a_relationship_twice_emits_nothing_the_second_time():
    c = with_primary()
    c.end("rel-1", "patient moved away", NOW, CAUSE)
    given(c)

    c.end("rel-1", "another reason", NOW + minutes(5), CAUSE)

    assert emitted(c) == []
    assert c.relationships["rel-1"].end_reason == "patient moved away"


def test_ending_an_unknown_relationship_is_refused():
    c = with_primary()

    with refused(RelationshipNotFoundError, c) as info:
        c.end("rel-9", "patient moved away", NOW, CAUSE)

    assert info.value.details["field"] == "relationship_id"
    assert isinstance(info.value, InvalidInputError)


def test_ending_a_relationship_needs_a_reason():
    c = with_primary()

    with refused(InvalidInputError, c) as info:
        c.end("rel-1", " ", NOW, CAUSE)

    assert info.value.details["field"] == "reason"


def test_breaking_the_glass_emits_emergency_access_granted_until_its_expiry():
    c = care()

    c.break_glass("grant-1", "doctor-3", EMERGENCY_REASON, NOW, minutes(60), CAUSE)

    [event] = c.collect_events()
    assert type(event).__name__ == "EmergencyAccessGranted"
    assert (event.grant_id, event.doctor_id, event.reason) == ("grant-1", "doctor-3", EMERGENCY_REASON)
    assert (event.granted_at, event.expires_at, event.cause) == (NOW, NOW + minutes(60), CAUSE_DICT)


def test_breaking_the_glass_twice_with_one_grant_id_emits_nothing_the_second_time():
    c = care()
    c.break_glass("grant-1", "doctor-3", EMERGENCY_REASON, NOW, minutes(60), CAUSE)
    given(c)

    c.break_glass("grant-1", "doctor-3", EMERGENCY_REASON, NOW + minutes(1), minutes(60), CAUSE)

    assert emitted(c) == []
    assert len(c.emergency) == 1


@pytest.mark.parametrize("reason", ["", "urgent", "   too short   "])
def test_breaking_the_glass_needs_a_reason_of_ten_characters(reason):
    c = care()

    with refused(InvalidInputError, c) as info:
        c.break_glass("grant-1", "doctor-3", reason, NOW, minutes(60), CAUSE)

    assert info.value.details["field"] == "reason"


@pytest.mark.parametrize("lasts", [timedelta(0), timedelta(seconds=59), -minutes(5), minutes(24 * 60 + 1)])
def test_emergency_access_lasts_between_a_minute_and_a_day(lasts):
    c = care()

    with refused(InvalidInputError, c) as info:
        c.break_glass("grant-1", "doctor-3", EMERGENCY_REASON, NOW, lasts, CAUSE)

    assert info.value.details["field"] == "minutes"


@pytest.mark.parametrize("lasts", [minutes(1), minutes(24 * 60)])
def test_emergency_access_of_exactly_a_minute_or_a_day_is_granted(lasts):
    c = care()

    c.break_glass("grant-1", "doctor-3", EMERGENCY_REASON, NOW, lasts, CAUSE)

    assert emitted(c) == ["EmergencyAccessGranted"]


def test_a_doctor_without_relationship_or_grant_has_no_basis():
    c = with_primary("doctor-1")

    assert c.basis("doctor-2", NOW, AFTER_VISIT) is None


@pytest.mark.parametrize(
    "kinds, expected",
    [
        ({Kind.PRIMARY, Kind.REFERRAL, Kind.TEMPORARY}, Basis.PRIMARY),
        ({Kind.REFERRAL, Kind.TEMPORARY}, Basis.REFERRAL),
        ({Kind.TEMPORARY}, Basis.TEMPORARY),
    ],
)
def test_the_basis_is_the_strongest_active_relationship_before_any_emergency_grant(kinds, expected):
    c = care()
    c.break_glass("grant-1", "doctor-1", EMERGENCY_REASON, NOW, minutes(60), CAUSE)
    for n, kind in enumerate(sorted(kinds)):
        referrer = "doctor-9" if kind == Kind.REFERRAL else None
        expiry = LATER if kind == Kind.TEMPORARY else None
        start(c, kind, "doctor-1", f"rel-{n}", referring_doctor_id=referrer, expires_at=expiry)

    assert c.basis("doctor-1", NOW + minutes(1), AFTER_VISIT) == expected


def test_a_temporary_relationship_gives_a_basis_until_it_expires():
    c = care()
    start(c, Kind.TEMPORARY, expires_at=NOW + minutes(30))

    assert c.basis("doctor-1", NOW + minutes(29), AFTER_VISIT) == Basis.TEMPORARY
    assert c.basis("doctor-1", NOW + minutes(30), AFTER_VISIT) is None


def test_an_ended_relationship_gives_no_basis():
    c = with_primary()
    c.end("rel-1", "patient moved away", NOW + minutes(1), CAUSE)

    assert c.basis("doctor-1", NOW + minutes(2), AFTER_VISIT) is None


def test_emergency_access_gives_a_basis_from_its_grant_until_its_expiry_and_only_to_its_doctor():
    c = care()
    c.break_glass("grant-1", "doctor-3", EMERGENCY_REASON, NOW, minutes(60), CAUSE)

    assert c.basis("doctor-3", NOW - minutes(1), AFTER_VISIT) is None
    assert c.basis("doctor-3", NOW, AFTER_VISIT) == Basis.EMERGENCY
    assert c.basis("doctor-3", NOW + minutes(59), AFTER_VISIT) == Basis.EMERGENCY
    assert c.basis("doctor-3", NOW + minutes(60), AFTER_VISIT) is None
    assert c.basis("doctor-1", NOW + minutes(1), AFTER_VISIT) is None


def test_a_referral_gives_the_referred_doctor_a_basis_but_not_the_referring_one():
    c = care()
    start(c, Kind.REFERRAL, "doctor-2", referring_doctor_id="doctor-1")

    assert (c.basis("doctor-2", NOW, AFTER_VISIT), c.basis("doctor-1", NOW, AFTER_VISIT)) == (Basis.REFERRAL, None)


def test_the_care_history_replays_to_the_same_state_through_the_production_transcoder():
    c = PatientCare(patient_id="patient-1", cause=CAUSE.as_dict())
    start(c, Kind.PRIMARY, "doctor-1", "rel-1")
    start(c, Kind.REFERRAL, "doctor-2", "rel-2", referring_doctor_id="doctor-1", expires_at=LATER)
    c.end("rel-1", "patient moved away", NOW + minutes(5), CAUSE)
    c.break_glass("grant-1", "doctor-3", EMERGENCY_REASON, NOW + minutes(6), minutes(90), CAUSE)

    copy = replayed(c)

    assert state(copy) == state(c)
    assert (copy.id, copy.version) == (care_id("patient-1"), 5)
    assert copy.relationships["rel-2"].kind is Kind.REFERRAL
    assert copy.relationships["rel-2"].expires_at.utcoffset() is not None
    assert copy.basis("doctor-2", NOW + minutes(10), AFTER_VISIT) == Basis.REFERRAL
    assert copy.basis("doctor-3", NOW + minutes(10), AFTER_VISIT) == Basis.EMERGENCY


# Visits: the access an appointment gives its doctor, recorded on the care stream


APPOINTMENT_ID = UUID("00000000-0000-4000-8000-000000000001")
VISIT_START = NOW + timedelta(hours=1)
VISIT_END = VISIT_START + minutes(30)
DURING = VISIT_START + minutes(10)


def appointment(patient_id: str = "patient-1", doctor_id: str = "doctor-1") -> Appointment:
    return given(
        Appointment(
            id=APPOINTMENT_ID,
            doctor_id=doctor_id,
            patient_id=patient_id,
            start=VISIT_START,
            end=VISIT_END,
            day=MONDAY,
            overbooked=False,
            reason=None,
            cause=CAUSE.as_dict(),
        )
    )


def tracking(a: Appointment) -> PatientCare:
    """A care stream that has recorded the appointment as it is now."""
    c = care()
    c.track_visit(a, CAUSE)
    return given(c)


def test_a_booking_opens_the_record_to_its_doctor():
    c, a = care(), appointment()

    c.track_visit(a, CAUSE)

    [event] = c.collect_events()
    assert type(event).__name__ == "VisitOpened"
    assert (event.appointment_id, event.doctor_id, event.patient_id) == (str(APPOINTMENT_ID), "doctor-1", "patient-1")
    assert (event.appointment_version, event.cause) == (1, CAUSE_DICT)
    assert c.visits[str(APPOINTMENT_ID)] == Visit(str(APPOINTMENT_ID), "doctor-1", VisitAccess.OPEN, 1)
    assert c.basis("doctor-1", NOW, AFTER_VISIT) == Basis.APPOINTMENT
    assert c.basis("doctor-2", NOW, AFTER_VISIT) is None


def test_tracking_the_same_appointment_again_emits_nothing():
    a = appointment()
    c = tracking(a)

    c.track_visit(a, CAUSE)

    assert emitted(c) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.confirm(CAUSE),
        lambda a: a.reschedule(VISIT_START + timedelta(days=1), VISIT_END + timedelta(days=1), MONDAY, "clash", CAUSE),
        lambda a: a.start_consultation("consultation-1", DURING, CAUSE),
        lambda a: a.correct_status(Status.CONFIRMED, "confirmed by phone", DURING, CAUSE),
    ],
    ids=["confirm", "reschedule", "start-consultation", "correct-booked-to-confirmed"],
)
def test_a_change_that_keeps_the_record_open_emits_nothing(change):
    a = appointment()
    c = tracking(a)
    change(a)

    c.track_visit(a, CAUSE)

    assert emitted(c) == []
    assert c.basis("doctor-1", DURING, AFTER_VISIT) == Basis.APPOINTMENT


@pytest.mark.parametrize(
    "change",
    [lambda a: a.cancel("feeling better", NOW, None, CAUSE), lambda a: a.mark_no_show(DURING, CAUSE)],
    ids=["cancel", "no-show"],
)
def test_a_cancellation_or_a_no_show_closes_the_record_at_once(change):
    a = appointment()
    c = tracking(a)
    change(a)

    c.track_visit(a, CAUSE)

    [event] = c.collect_events()
    assert type(event).__name__ == "VisitClosed"
    assert (event.appointment_id, event.doctor_id, event.appointment_version) == (str(APPOINTMENT_ID), "doctor-1", 2)
    assert c.basis("doctor-1", DURING, AFTER_VISIT) is None
    c.track_visit(a, CAUSE)
    assert emitted(c) == []


def test_a_completed_visit_opens_the_record_until_the_window_after_the_appointment_end_has_passed():
    a = appointment()
    c = tracking(a)
    a.complete(DURING, CAUSE)

    c.track_visit(a, CAUSE)

    [event] = c.collect_events()
    assert type(event).__name__ == "VisitCompleted"
    assert (event.ends_at, event.appointment_version) == (VISIT_END, 2)
    assert c.basis("doctor-1", VISIT_END + AFTER_VISIT - minutes(1), AFTER_VISIT) == Basis.APPOINTMENT
    assert c.basis("doctor-1", VISIT_END + AFTER_VISIT, AFTER_VISIT) is None
    assert c.basis("doctor-1", VISIT_END + minutes(90), timedelta(hours=1)) is None
    c.track_visit(a, CAUSE)
    assert emitted(c) == []


def test_completing_through_a_consultation_tracks_the_completion():
    a = appointment()
    a.start_consultation("consultation-1", DURING, CAUSE)
    c = tracking(a)
    a.complete(DURING + minutes(5), CAUSE)

    c.track_visit(a, CAUSE)

    assert emitted(c) == ["VisitCompleted"]


def test_status_corrections_move_the_access_with_them():
    a = appointment()
    c = tracking(a)
    a.mark_no_show(DURING, CAUSE)
    c.track_visit(a, CAUSE)
    assert emitted(c) == ["VisitClosed"]

    a.correct_status(Status.COMPLETED, "arrived late and was seen", DURING, CAUSE)
    c.track_visit(a, CAUSE)
    assert emitted(c) == ["VisitCompleted"]
    assert c.basis("doctor-1", VISIT_END + minutes(60), AFTER_VISIT) == Basis.APPOINTMENT

    a.correct_status(Status.BOOKED, "completed the wrong appointment", DURING, CAUSE)
    c.track_visit(a, CAUSE)
    [reopened] = c.collect_events()
    assert (type(reopened).__name__, reopened.appointment_version) == ("VisitOpened", 4)
    assert c.basis("doctor-1", VISIT_END + AFTER_VISIT, AFTER_VISIT) == Basis.APPOINTMENT


def test_a_copy_that_missed_changes_still_records_a_reopening_that_looks_like_what_it_has():
    a = appointment()
    behind = tracking(a)
    a.complete(DURING, CAUSE)
    a.correct_status(Status.BOOKED, "completed the wrong appointment", DURING, CAUSE)

    behind.track_visit(a, CAUSE)

    [event] = behind.collect_events()
    assert (type(event).__name__, event.appointment_version) == ("VisitOpened", 3)


def test_an_older_state_of_the_appointment_never_replaces_a_newer_one():
    a = appointment()
    c = care()
    older = deepcopy(a)
    a.cancel("feeling better", NOW, None, CAUSE)
    c.track_visit(a, CAUSE)
    given(c)

    c.track_visit(older, CAUSE)

    assert emitted(c) == []
    assert c.visits[str(APPOINTMENT_ID)].access == VisitAccess.NONE


def test_an_appointment_unknown_to_the_record_is_recorded_whatever_its_state():
    a = appointment()
    a.cancel("feeling better", NOW, None, CAUSE)
    c = care()

    c.track_visit(a, CAUSE)

    assert emitted(c) == ["VisitClosed"]
    assert c.basis("doctor-1", NOW, AFTER_VISIT) is None


def test_another_patients_appointment_is_refused():
    c = care()

    with refused(ForeignAppointmentError, c):
        c.track_visit(appointment(patient_id="patient-2"), CAUSE)


def test_a_relationship_comes_before_an_appointment_and_an_appointment_before_emergency_access():
    c = tracking(appointment())
    c.break_glass("grant-1", "doctor-1", EMERGENCY_REASON, NOW, minutes(60), CAUSE)
    assert c.basis("doctor-1", NOW, AFTER_VISIT) == Basis.APPOINTMENT

    start(c, Kind.PRIMARY, "doctor-1")
    assert c.basis("doctor-1", NOW, AFTER_VISIT) == Basis.PRIMARY


def test_visits_replay_to_the_same_state_through_the_production_transcoder():
    a = appointment()
    c = PatientCare(patient_id="patient-1", cause=CAUSE.as_dict())
    c.track_visit(a, CAUSE)
    a.complete(DURING, CAUSE)
    c.track_visit(a, CAUSE)

    copy = replayed(c)

    assert state(copy) == state(c)
    assert copy.visits[str(APPOINTMENT_ID)].ends_at.utcoffset() is not None
    assert copy.basis("doctor-1", VISIT_END + minutes(5), AFTER_VISIT) == Basis.APPOINTMENT
