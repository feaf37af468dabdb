"""PatientCare rules: relationships (primary care, referral, temporary), their end, break-the-glass and the basis of access."""

from datetime import datetime, timedelta

import pytest

from domain.care import (
    Basis,
    Kind,
    PatientCare,
    PrimaryCareTakenError,
    RelationshipExistsError,
    RelationshipNotFoundError,
    care_id,
)
from domain.shared import InvalidInputError
from domain_helpers import CAUSE, CAUSE_DICT, MONDAY, emitted, given, minutes, refused, replayed, state, utc

NOW = utc(MONDAY, 9, 0)
LATER = NOW + timedelta(days=7)
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

    assert c.basis("doctor-2", NOW) is None


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

    assert c.basis("doctor-1", NOW + minutes(1)) == expected


def test_a_temporary_relationship_gives_a_basis_until_it_expires():
    c = care()
    start(c, Kind.TEMPORARY, expires_at=NOW + minutes(30))

    assert c.basis("doctor-1", NOW + minutes(29)) == Basis.TEMPORARY
    assert c.basis("doctor-1", NOW + minutes(30)) is None


def test_an_ended_relationship_gives_no_basis():
    c = with_primary()
    c.end("rel-1", "patient moved away", NOW + minutes(1), CAUSE)

    assert c.basis("doctor-1", NOW + minutes(2)) is None


def test_emergency_access_gives_a_basis_from_its_grant_until_its_expiry_and_only_to_its_doctor():
    c = care()
    c.break_glass("grant-1", "doctor-3", EMERGENCY_REASON, NOW, minutes(60), CAUSE)

    assert c.basis("doctor-3", NOW - minutes(1)) is None
    assert c.basis("doctor-3", NOW) == Basis.EMERGENCY
    assert c.basis("doctor-3", NOW + minutes(59)) == Basis.EMERGENCY
    assert c.basis("doctor-3", NOW + minutes(60)) is None
    assert c.basis("doctor-1", NOW + minutes(1)) is None


def test_a_referral_gives_the_referred_doctor_a_basis_but_not_the_referring_one():
    c = care()
    start(c, Kind.REFERRAL, "doctor-2", referring_doctor_id="doctor-1")

    assert (c.basis("doctor-2", NOW), c.basis("doctor-1", NOW)) == (Basis.REFERRAL, None)


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
    assert copy.basis("doctor-2", NOW + minutes(10)) == Basis.REFERRAL
    assert copy.basis("doctor-3", NOW + minutes(10)) == Basis.EMERGENCY
