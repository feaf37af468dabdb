"""Consultation rules: recording while open, ICD-10 codes, one primary diagnosis, signing, amendments only after it."""

import json
from datetime import date, datetime, timedelta, timezone
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from domain.attachments import AttachmentTypeError, AttachmentKind, content_type_of, sniff
from domain.consultation import (
    ComplaintAlreadyRecordedError,
    Consultation,
    ConsultationSignedError,
    InvalidEffectiveTimeError,
    NoFollowUpError,
    NothingToSignError,
    PrimaryDiagnosisExistsError,
    UnknownEntryError,
    consultation_id,
    icd10,
)
from domain.shared import InvalidInputError
from domain.vitals import ImpossibleVitalSignError
from infrastructure.eventstore import Clinic
from domain_helpers import CAUSE, CAUSE_DICT, MONDAY, emitted, given, minutes, refused, replayed, utc

NOW = utc(MONDAY, 9, 0)
LATER = NOW + minutes(20)
SHA = "a" * 64
CLINICAL_KEYS = {"chief_complaint", "symptoms", "vital_signs", "vital_sign_units", "diagnoses", "notes", "attachments", "amendments"}


def started(appointment_id: str | None = "appointment-1") -> Consultation:
    cid = consultation_id(appointment_id) if appointment_id else UUID("00000000-0000-4000-8000-0000000000c1")
    return Consultation.start(cid, "patient-1", "doctor-1", appointment_id, "in_person", NOW, CAUSE)


def open_with_complaint() -> Consultation:
    c = started()
    c.record_complaint("complaint-1", "Cough for a week", NOW, CAUSE)
    return given(c)


def signed() -> Consultation:
    c = started()
    c.record_complaint("complaint-1", "Cough for a week", NOW, CAUSE)
    c.record_vital_signs("vitals-1", {"pulse": 230, "temperature": 37.2}, None, NOW, CAUSE)
    c.record_diagnosis("diagnosis-1", "J06.9", "Acute URTI", "primary", "provisional", NOW, CAUSE)
    c.add_note("note-1", "Fluids and rest.", "doctor-1", NOW, CAUSE)
    c.sign(LATER, CAUSE)
    return given(c)


# Starting


def test_starting_from_an_appointment_names_a_stream_per_appointment():
    c = started()

    [event] = c.collect_events()
    assert type(event).__name__ == "Started"
    assert c.id == consultation_id("appointment-1") == consultation_id("appointment-1")
    assert (event.patient_id, event.doctor_id, event.appointment_id, event.kind, event.cause) == (
        "patient-1",
        "doctor-1",
        "appointment-1",
        "in_person",
        CAUSE_DICT,
    )
    assert c.view()["status"] == "open"


def test_the_kind_is_one_of_in_person_video_phone_chat():
    for kind in ("in_person", "video", "phone", "chat"):
        assert Consultation.start(consultation_id(kind), "p", "d", None, kind, NOW, CAUSE).kind.value == kind
    with pytest.raises(InvalidInputError) as info:
        Consultation.start(consultation_id("x"), "p", "d", None, "telepathy", NOW, CAUSE)
    assert info.value.details["field"] == "kind"


# Recording while open


def test_every_event_carries_its_cause():
    c = everything_recorded()

    events = c.collect_events()

    assert len(events) == 13
    assert all(event.cause == CAUSE_DICT for event in events)


def test_recording_the_chief_complaint_emits_complaint_recorded():
    c = given(started())

    c.record_complaint("complaint-1", "  Cough  ", NOW, CAUSE)

    assert emitted(c) == ["ComplaintRecorded"]
    assert c.view()["chief_complaint"]["text"] == "Cough"


def test_repeating_the_same_complaint_or_entry_id_emits_nothing():
    c = open_with_complaint()

    c.record_complaint("complaint-2", "Cough for a week", NOW, CAUSE)
    c.record_complaint("complaint-1", "anything", NOW, CAUSE)

    assert emitted(c) == []


def test_a_second_different_complaint_must_be_an_amendment():
    c = open_with_complaint()

    with refused(ComplaintAlreadyRecordedError, c) as info:
        c.record_complaint("complaint-2", "Headache", NOW, CAUSE)
    assert info.value.details["current"]["entry_id"] == "complaint-1"


def test_a_symptom_has_a_severity_and_an_onset_not_in_the_future():
    c = given(started())

    c.record_symptom("symptom-1", "cough", date(2025, 5, 26), "moderate", "7 days", NOW, CAUSE)
    c.record_symptom("symptom-2", "fever", NOW - timedelta(hours=5), "mild", None, NOW, CAUSE)

    assert emitted(c) == ["SymptomRecorded", "SymptomRecorded"]
    assert [(s["onset"], s["severity"]) for s in c.view()["symptoms"]] == [
        ("2025-05-26", "moderate"),
        ((NOW - timedelta(hours=5)).isoformat(), "mild"),
    ]
    with refused(InvalidInputError, c) as info:
        c.record_symptom("symptom-3", "rash", MONDAY + timedelta(days=1), "mild", None, NOW, CAUSE)
    assert info.value.details["field"] == "onset"
    with refused(InvalidInputError, c) as info:
        c.record_symptom("symptom-3", "rash", None, "awful", None, NOW, CAUSE)
    assert info.value.details["field"] == "severity"


def test_implausible_vitals_are_recorded_with_a_flag_in_the_event_and_the_view():
    c = given(started())

    c.record_vital_signs("vitals-1", {"pulse": 230, "spo2": 97}, None, NOW, CAUSE)

    [event] = c.collect_events()
    assert (type(event).__name__, event.flags, event.measures["pulse"]) == ("VitalSignsRecorded", {"pulse": "implausible"}, 230)
    [entry] = c.view()["vital_signs"]
    assert (entry["pulse"], entry["spo2"], entry["flags"], entry["measured_at"]) == (230, 97, {"pulse": "implausible"}, NOW.isoformat())


def test_impossible_vitals_are_refused_naming_the_field():
    c = given(started())

    with refused(ImpossibleVitalSignError, c) as info:
        c.record_vital_signs("vitals-1", {"pulse": 400}, None, NOW, CAUSE)
    assert info.value.details["field"] == "pulse"


def test_vitals_are_not_measured_in_the_future():
    c = given(started())

    with refused(InvalidInputError, c) as info:
        c.record_vital_signs("vitals-1", {"pulse": 70}, NOW + minutes(1), NOW, CAUSE)
    assert info.value.details["field"] == "measured_at"


@pytest.mark.parametrize(
    ("given_code", "canonical"),
    [("J06.9", "J06.9"), ("j069", "J06.9"), (" i10 ", "I10"), ("S72.001A", "S72.001A"), ("U07.1", "U07.1"), ("C4A.9", "C4A.9")],
)
def test_icd10_codes_are_normalised(given_code, canonical):
    assert icd10(given_code) == canonical


@pytest.mark.parametrize("code", ["", "J", "J0", "106.9", "JJ6.9", "J06.", "J06.12345", "J06-9", "J06.9.1", "ÄB1"])
def test_malformed_icd10_codes_are_refused(code):
    with pytest.raises(InvalidInputError) as info:
        icd10(code)
    assert info.value.details["field"] == "code"


def test_a_diagnosis_with_a_malformed_code_is_refused():
    c = given(started())

    with refused(InvalidInputError, c):
        c.record_diagnosis("diagnosis-1", "1234", "x", "primary", "provisional", NOW, CAUSE)


def test_at_most_one_current_primary_diagnosis():
    c = given(started())
    c.record_diagnosis("diagnosis-1", "I10", "Hypertension", "primary", "confirmed", NOW, CAUSE)
    c.record_diagnosis("diagnosis-2", "E11.9", "Diabetes", "secondary", "provisional", NOW, CAUSE)
    c.record_diagnosis("diagnosis-3", "J45", "Asthma", "primary", "ruled_out", NOW, CAUSE)
    c = given(c)

    with refused(PrimaryDiagnosisExistsError, c) as info:
        c.record_diagnosis("diagnosis-4", "J06.9", "URTI", "primary", "provisional", NOW, CAUSE)
    assert info.value.details["current"]["entry_id"] == "diagnosis-1"
    with refused(PrimaryDiagnosisExistsError, c):
        c.amend("amendment-1", "diagnosis-2", {"rank": "primary"}, "ranked wrongly", NOW, CAUSE)

    c.amend("amendment-2", "diagnosis-1", {"status": "resolved"}, "resolved during visit", NOW, CAUSE)
    c.record_diagnosis("diagnosis-4", "J06.9", "URTI", "primary", "provisional", NOW, CAUSE)

    assert emitted(c) == ["EntryAmended", "DiagnosisRecorded"]


def test_notes_are_authored_and_timestamped():
    c = given(started())

    c.add_note("note-1", "Advised rest.", "doctor-1", LATER, CAUSE)

    assert emitted(c) == ["NoteAdded"]
    assert c.view()["notes"] == [
        {"entry_id": "note-1", "text": "Advised rest.", "recorded_at": LATER.isoformat(), "author_id": "doctor-1", "amended": False}
    ]


def test_an_attachment_records_its_hash_and_size():
    c = given(started())

    c.attach("attachment-1", "lab_report", "k.pdf", "application/pdf", 1234, SHA, NOW, CAUSE)
    c.attach("attachment-1", "lab_report", "k.pdf", "application/pdf", 1234, SHA, NOW, CAUSE)

    [event] = c.collect_events()
    assert (type(event).__name__, event.sha256, event.size, event.content_type) == ("AttachmentAdded", SHA, 1234, "application/pdf")
    with refused(InvalidInputError, c):
        c.attach("attachment-2", "lab_report", "k.pdf", "application/pdf", 1, "not-a-hash", NOW, CAUSE)
    with refused(InvalidInputError, c):
        c.attach("attachment-2", "x-ray", "k.pdf", "application/pdf", 1, SHA, NOW, CAUSE)


def test_attachment_types_come_from_the_bytes():
    pdf, png, jpeg = b"%PDF-1.4 x", b"\x89PNG\r\n\x1a\n....", b"\xff\xd8\xff\xe0JFIF"
    dicom = bytes(128) + b"DICM" + b"\x02\x00"

    assert [sniff(x) for x in (pdf, png, jpeg, dicom, b"Na 140\n", b"\x00\x01", b"\xff\xfe")] == [
        "application/pdf", "image/png", "image/jpeg", "application/dicom", "text/plain", None, None
    ]
    assert content_type_of(jpeg, "image/jpg", AttachmentKind.PHOTO) == "image/jpeg"
    assert content_type_of(dicom, "application/octet-stream", AttachmentKind.SCAN) == "application/dicom"
    assert content_type_of(b"K 4.1", "text/plain; charset=utf-8", AttachmentKind.LAB_REPORT) == "text/plain"
    for content, declared, kind in ((pdf, "image/png", AttachmentKind.DOCUMENT), (pdf, None, AttachmentKind.PHOTO), (b"\x00", None, AttachmentKind.SCAN)):
        with pytest.raises(AttachmentTypeError):
            content_type_of(content, declared, kind)


def test_a_follow_up_is_recommended_for_a_later_day_and_booked_only_if_recommended():
    c = given(started())
    with refused(NoFollowUpError, c):
        c.record_follow_up_booking("appointment-2", NOW + timedelta(days=14), CAUSE)
    with refused(InvalidInputError, c):
        c.recommend_follow_up(MONDAY, "review", NOW, CAUSE)

    c.recommend_follow_up(MONDAY + timedelta(days=14), "review", NOW, CAUSE)
    c.recommend_follow_up(MONDAY + timedelta(days=14), "review", NOW, CAUSE)
    c.record_follow_up_booking("appointment-2", NOW + timedelta(days=14), CAUSE)
    c.record_follow_up_booking("appointment-2", NOW + timedelta(days=14), CAUSE)

    assert emitted(c) == ["FollowUpRecommended", "FollowUpBooked"]
    assert c.view(clinical=False)["follow_up"]["date"] == (MONDAY + timedelta(days=14)).isoformat()


# Signing


def test_signing_needs_a_chief_complaint():
    c = given(started())

    with refused(NothingToSignError, c):
        c.sign(LATER, CAUSE)


def test_signing_emits_signed_once():
    c = open_with_complaint()

    c.sign(LATER, CAUSE)
    c.sign(LATER + minutes(1), CAUSE)

    assert emitted(c) == ["Signed"]
    assert (c.view()["status"], c.view()["signed_at"], c.view()["signed_by"]) == ("signed", LATER.isoformat(), "doctor-1")


@pytest.mark.parametrize(
    "record",
    [
        lambda c: c.record_symptom("s", "cough", None, "mild", None, LATER, CAUSE),
        lambda c: c.record_vital_signs("v", {"pulse": 70}, None, LATER, CAUSE),
        lambda c: c.record_diagnosis("d", "I10", "Hypertension", "secondary", "confirmed", LATER, CAUSE),
        lambda c: c.add_note("n", "late", "doctor-1", LATER, CAUSE),
        lambda c: c.attach("a", "scan", "s.png", "image/png", 10, SHA, LATER, CAUSE),
        lambda c: c.recommend_follow_up(MONDAY + timedelta(days=9), "review", LATER, CAUSE),
    ],
)
def test_after_signing_nothing_is_recorded(record):
    c = signed()

    with refused(ConsultationSignedError, c):
        record(c)


# Amendments


def test_an_amendment_after_signing_keeps_the_original_as_recorded():
    c = signed()

    c.amend("amendment-1", "vitals-1", {"pulse": 82}, "typed 230 for 82", LATER, CAUSE)

    [event] = c.collect_events()
    assert (type(event).__name__, event.entry_id, event.reason, event.after_signing) == ("EntryAmended", "vitals-1", "typed 230 for 82", True)
    assert (event.previous, event.new) == ({"pulse": 230.0, "flags": {"pulse": "implausible"}}, {"pulse": 82.0, "flags": {}})
    current, original = c.view(), c.view(as_recorded=True)
    assert (current["vital_signs"][0]["pulse"], current["vital_signs"][0]["flags"], current["vital_signs"][0]["amended"]) == (82, {}, True)
    assert (original["vital_signs"][0]["pulse"], original["vital_signs"][0]["flags"]) == (230, {"pulse": "implausible"})
    assert original["view"] == "as_recorded" and current["view"] == "current"
    assert current["amendments"] == original["amendments"] == [
        {
            "amendment_id": "amendment-1",
            "entry_id": "vitals-1",
            "entry_kind": "vital_signs",
            "reason": "typed 230 for 82",
            "previous": {"pulse": 230.0, "flags": {"pulse": "implausible"}},
            "new": {"pulse": 82.0, "flags": {}},
            "amended_at": LATER.isoformat(),
            "amended_by": "doctor-1",
            "after_signing": True,
            "effective_at": None,
        }
    ]


@pytest.mark.parametrize(
    ("entry_id", "changes", "path", "value"),
    [
        ("note-1", {"text": "Fluids, rest and paracetamol."}, ("notes", "text"), "Fluids, rest and paracetamol."),
        ("diagnosis-1", {"code": "j02.9", "description": "Pharyngitis"}, ("diagnoses", "code"), "J02.9"),
        ("diagnosis-1", {"status": "confirmed"}, ("diagnoses", "status"), "confirmed"),
        ("vitals-1", {"pulse": None, "temperature": 38.1}, ("vital_signs", "temperature"), 38.1),
    ],
)
def test_notes_diagnoses_and_vitals_are_amended_after_signing(entry_id, changes, path, value):
    c = signed()

    c.amend("amendment-1", entry_id, changes, "corrected on review", LATER, CAUSE)

    assert emitted(c) == ["EntryAmended"]
    assert c.view()[path[0]][0][path[1]] == value
    assert c.view(as_recorded=True)[path[0]][0][path[1]] != value


def test_an_amendment_before_signing_is_an_amendment_too():
    c = open_with_complaint()

    c.amend("amendment-1", "complaint-1", {"text": "Cough for two weeks"}, "patient corrected", NOW, CAUSE)

    [event] = c.collect_events()
    assert (event.previous, event.new, event.after_signing) == ({"text": "Cough for a week"}, {"text": "Cough for two weeks"}, False)
    assert c.view(as_recorded=True)["chief_complaint"]["text"] == "Cough for a week"


def test_an_amendment_refers_to_an_existing_entry():
    c = signed()

    with refused(UnknownEntryError, c) as info:
        c.amend("amendment-1", "no-such-entry", {"text": "x"}, "typo", LATER, CAUSE)
    assert info.value.details["field"] == "entry_id"


def test_an_amendment_carries_a_reason_and_known_fields_with_valid_values():
    c = signed()

    with refused(InvalidInputError, c) as info:
        c.amend("amendment-1", "note-1", {"text": "x"}, "  ", LATER, CAUSE)
    assert info.value.details["field"] == "reason"
    with refused(InvalidInputError, c) as info:
        c.amend("amendment-1", "note-1", {"author_id": "someone"}, "typo", LATER, CAUSE)
    assert info.value.details["field"] == "changes.author_id"
    with refused(ImpossibleVitalSignError, c):
        c.amend("amendment-1", "vitals-1", {"pulse": 0}, "typo", LATER, CAUSE)
    with refused(InvalidInputError, c):
        c.amend("amendment-1", "diagnosis-1", {"code": "nonsense"}, "typo", LATER, CAUSE)


@pytest.mark.parametrize(
    "entry_id, changes, field",
    [
        ("complaint-1", {"text": "c" * 2001}, "text"),
        ("note-1", {"text": "n" * 20_001}, "text"),
        ("symptom-1", {"name": "s" * 201}, "name"),
        ("symptom-1", {"duration": "d" * 101}, "duration"),
        ("symptom-1", {"onset": "1899-12-31"}, "onset"),
        ("diagnosis-1", {"description": "x" * 501}, "description"),
    ],
)
def test_an_amendment_keeps_the_limits_recording_has(entry_id, changes, field):
    c = started()
    c.record_complaint("complaint-1", "Cough", NOW, CAUSE)
    c.record_symptom("symptom-1", "cough", None, "mild", None, NOW, CAUSE)
    c.record_diagnosis("diagnosis-1", "J06.9", "Acute URTI", "primary", "provisional", NOW, CAUSE)
    c.add_note("note-1", "Fluids and rest.", "doctor-1", NOW, CAUSE)
    c = given(c)

    with refused(InvalidInputError, c) as info:
        c.amend("amendment-1", entry_id, changes, "corrected on review", LATER, CAUSE)

    assert info.value.details["field"] == field


def test_the_longest_texts_are_recorded():
    c = started()

    c.record_complaint("complaint-1", "c" * 2000, NOW, CAUSE)
    c.add_note("note-1", "n" * 20_000, "doctor-1", NOW, CAUSE)
    c.record_symptom("symptom-1", "s" * 200, "1900-01-01", "mild", "d" * 100, NOW, CAUSE)

    assert emitted(c) == ["Started", "ComplaintRecorded", "NoteAdded", "SymptomRecorded"]


def test_repeating_an_amendment_or_changing_nothing_emits_nothing():
    c = signed()
    c.amend("amendment-1", "note-1", {"text": "Rest."}, "shorter", LATER, CAUSE)
    c = given(c)

    c.amend("amendment-1", "note-1", {"text": "Rest."}, "shorter", LATER, CAUSE)
    c.amend("amendment-2", "note-1", {"text": "Rest."}, "again", LATER, CAUSE)

    assert emitted(c) == []


# Views


def test_the_administrative_view_has_no_clinical_content():
    c = signed()

    view = c.view(clinical=False)

    assert view["view"] == "administrative"
    assert CLINICAL_KEYS.isdisjoint(view)
    assert (view["status"], view["patient_id"], view["appointment_id"], view["kind"]) == ("signed", "patient-1", "appointment-1", "in_person")
    assert CLINICAL_KEYS <= set(c.view())


def test_a_view_is_a_copy():
    c = signed()

    c.view()["vital_signs"][0]["flags"]["pulse"] = "tampered"

    assert c.view()["vital_signs"][0]["flags"] == {"pulse": "implausible"}


def everything_recorded() -> Consultation:
    full = started()
    full.record_complaint("complaint-1", "Cough", NOW, CAUSE)
    full.record_symptom("symptom-1", "cough", date(2025, 5, 20), "mild", "2 weeks", NOW, CAUSE)
    full.record_symptom("symptom-2", "fever", NOW - timedelta(hours=3), "severe", None, NOW, CAUSE)
    full.record_vital_signs("vitals-1", {"systolic": 260, "diastolic": 100}, NOW - minutes(5), NOW, CAUSE)
    full.record_diagnosis("diagnosis-1", "J06.9", "URTI", "primary", "provisional", NOW, CAUSE)
    full.add_note("note-1", "Rest.", "doctor-1", NOW, CAUSE)
    full.attach("attachment-1", "photo", "rash.png", "image/png", 99, SHA, NOW, CAUSE)
    full.recommend_follow_up(MONDAY + timedelta(days=7), "review", NOW, CAUSE)
    full.record_follow_up_booking("appointment-2", NOW + timedelta(days=7), CAUSE)
    full.amend("amendment-1", "symptom-1", {"onset": "2025-05-21"}, "patient recalled", NOW, CAUSE)
    full.sign(LATER, CAUSE)
    full.amend("amendment-2", "diagnosis-1", {"status": "confirmed"}, "swab positive", LATER, CAUSE)
    return full


def test_replay_through_the_production_transcoder_gives_the_same_views():
    full = everything_recorded()

    restored = replayed(full)

    assert restored.version == full.version
    for clinical, as_recorded in ((True, False), (True, True), (False, False)):
        assert restored.view(clinical, as_recorded) == full.view(clinical, as_recorded)


# Clinical times: when an entry was true, apart from when it was recorded


def followed_for_a_week() -> Consultation:
    """Seen on Monday at 09:00: a cough since 20 May, a fever since 06:00, vital signs taken at 08:55 and a
    provisional diagnosis; signed, then the diagnosis resolved on Wednesday and its typo corrected on Friday."""
    c = started()
    c.record_complaint("complaint-1", "Cough", NOW, CAUSE)
    c.record_symptom("symptom-1", "cough", date(2025, 5, 20), "mild", None, NOW, CAUSE)
    c.record_symptom("symptom-2", "fever", NOW - timedelta(hours=3), "severe", None, NOW, CAUSE)
    c.record_vital_signs("vitals-1", {"pulse": 96}, NOW - minutes(5), NOW, CAUSE)
    c.record_diagnosis("diagnosis-1", "J06.9", "URTI typo", "primary", "provisional", NOW, CAUSE)
    c.sign(LATER, CAUSE)
    wednesday = utc(MONDAY + timedelta(days=2), 12)
    c.amend("amendment-1", "diagnosis-1", {"status": "resolved"}, "recovered", wednesday + timedelta(hours=1), CAUSE, effective_at=wednesday)
    c.amend("amendment-2", "diagnosis-1", {"description": "URTI"}, "typo", wednesday + timedelta(days=2), CAUSE)
    return given(c)


def values_at(c: Consultation, moment) -> dict[str, dict]:
    return {e.entry["entry_id"]: {**e.values, "true_since": e.true_since} for e in c.entries_true_at(moment)}


def test_an_amendment_of_a_symptom_or_diagnosis_may_say_when_it_took_effect_clinically():
    c = signed()
    wednesday = utc(MONDAY + timedelta(days=2), 12)

    c.amend("amendment-1", "diagnosis-1", {"status": "resolved"}, "recovered", wednesday + minutes(30), CAUSE, effective_at=wednesday)

    [event] = c.collect_events()
    assert event.effective_at == wednesday
    assert c.view()["amendments"][0]["effective_at"] == wednesday.isoformat()


def test_an_effective_time_survives_the_production_transcoder():
    c = everything_recorded()
    c.amend("amendment-3", "symptom-2", {"severity": "mild"}, "settled", LATER, CAUSE, effective_at=LATER - minutes(1))

    restored = replayed(c)

    assert restored.view() == c.view() and restored.view()["amendments"][-1]["effective_at"] == (LATER - minutes(1)).isoformat()


@pytest.mark.parametrize(
    ("entry_id", "changes", "effective", "why"),
    [
        ("complaint-1", {"text": "Cough and fever"}, NOW, "a complaint is corrected"),
        ("note-1", {"text": "Rest."}, NOW, "a note is corrected"),
        ("vitals-1", {"pulse": 82}, NOW, "a measurement is corrected"),
        ("symptom-1", {"onset": "2025-05-22"}, NOW, "a new onset corrects when it began"),
        ("diagnosis-1", {"status": "resolved"}, LATER + minutes(1), "in the future"),
        ("diagnosis-1", {"status": "resolved"}, NOW - minutes(1), "before the consultation"),
        ("symptom-1", {"severity": "severe"}, utc(date(2025, 5, 19), 12), "before the onset"),
    ],
)
def test_an_effective_time_is_refused_where_only_a_correction_makes_sense(entry_id, changes, effective, why):
    c = started()
    c.record_complaint("complaint-1", "Cough", NOW, CAUSE)
    c.add_note("note-1", "Fluids and rest.", "doctor-1", NOW, CAUSE)
    c.record_vital_signs("vitals-1", {"pulse": 230}, None, NOW, CAUSE)
    c.record_symptom("symptom-1", "cough", date(2025, 5, 20), "mild", None, NOW, CAUSE)
    c.record_diagnosis("diagnosis-1", "J06.9", "URTI", "primary", "provisional", NOW, CAUSE)
    c = given(c)

    with refused(InvalidEffectiveTimeError, c) as info:
        c.amend("amendment-1", entry_id, changes, "on review", LATER, CAUSE, effective_at=effective)

    assert info.value.details["field"] == "effective_at", why


def test_entries_are_shown_from_when_they_were_true_clinically():
    c = followed_for_a_week()

    before_the_fever = values_at(c, NOW - timedelta(hours=4))
    before_the_vitals = values_at(c, NOW - minutes(6))
    at_the_visit = values_at(c, NOW)

    assert set(before_the_fever) == {"symptom-1"}
    assert before_the_fever["symptom-1"]["true_since"] == "2025-05-20"
    assert set(before_the_vitals) == {"symptom-1", "symptom-2"}
    assert set(at_the_visit) == {"complaint-1", "symptom-1", "symptom-2", "vitals-1", "diagnosis-1"}
    assert at_the_visit["vitals-1"]["true_since"] == (NOW - minutes(5)).isoformat()
    assert at_the_visit["diagnosis-1"]["true_since"] == NOW.isoformat()


def test_a_date_of_onset_counts_from_the_start_of_that_day_where_the_moment_is_given():
    c = followed_for_a_week()
    late_on_the_19th_in_utc = datetime(2025, 5, 19, 23, 30, tzinfo=timezone.utc)

    assert "symptom-1" not in values_at(c, late_on_the_19th_in_utc)
    assert "symptom-1" in values_at(c, late_on_the_19th_in_utc.astimezone(timezone(timedelta(hours=2))))


def test_a_change_over_time_holds_from_its_effective_time_and_a_correction_from_the_entry_s_own():
    c = followed_for_a_week()
    wednesday = utc(MONDAY + timedelta(days=2), 12)

    tuesday = values_at(c, wednesday - timedelta(days=1))["diagnosis-1"]
    thursday = values_at(c, wednesday + timedelta(days=1))["diagnosis-1"]
    now = values_at(c, None)["diagnosis-1"]

    assert (tuesday["status"], tuesday["description"], tuesday["true_since"]) == ("provisional", "URTI", NOW.isoformat())
    assert (thursday["status"], thursday["description"], thursday["true_since"]) == ("resolved", "URTI", wednesday.isoformat())
    assert (now["status"], now["description"]) == ("resolved", "URTI")
    assert c.view()["diagnoses"][0] | {"amendment_ids": ["amendment-1", "amendment-2"]} == {
        k: v for k, v in c.view_true_at(None)["diagnoses"][0].items() if k != "true_since"
    }


def test_a_later_amendment_wins_from_its_own_effective_time():
    c = followed_for_a_week()
    wednesday = utc(MONDAY + timedelta(days=2), 12)
    c.amend("amendment-3", "diagnosis-1", {"status": "confirmed"}, "relapse", wednesday + timedelta(days=3), CAUSE, effective_at=wednesday + timedelta(days=2))

    assert values_at(c, wednesday + timedelta(days=1))["diagnosis-1"]["status"] == "resolved"
    assert values_at(c, wednesday + timedelta(days=2))["diagnosis-1"]["status"] == "confirmed"


def test_the_view_true_at_a_moment_lists_the_entries_then_true_and_their_amendments():
    c = followed_for_a_week()

    view = c.view_true_at(NOW - minutes(6))

    assert view["view"] == "true_at" and view["status"] == "signed"
    assert [s["entry_id"] for s in view["symptoms"]] == ["symptom-1", "symptom-2"]
    assert view["chief_complaint"] is None and view["vital_signs"] == view["diagnoses"] == view["amendments"] == []
    assert [a["amendment_id"] for a in c.view_true_at(NOW)["amendments"]] == ["amendment-1", "amendment-2"]


def test_an_amendment_recorded_before_effective_times_existed_loads_as_a_correction():
    c = started()
    c.record_vital_signs("vitals-1", {"pulse": 230}, None, NOW, CAUSE)
    c.amend("amendment-1", "vitals-1", {"pulse": 82}, "typed 230 for 82", LATER, CAUSE)
    mapper = Clinic(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
    *earlier, amended = [mapper.to_stored_event(e) for e in c.collect_events()]
    state = json.loads(amended.state)
    assert (state.pop("effective_at"), state.pop("class_version"), amended.topic) == (None, 2, "medledger:Consultation.EntryAmended.v2")
    as_release_1 = StoredEvent(amended.originator_id, amended.originator_version, "medledger:Consultation.EntryAmended.v1", json.dumps(state).encode())

    events = [mapper.to_domain_event(stored) for stored in (*earlier, as_release_1)]

    assert type(events[-1]) is Consultation.EntryAmended and events[-1].effective_at is None
    record = None
    for event in events:
        record = event.mutate(record)
    assert record.view()["vital_signs"][0]["pulse"] == 82 and record.view()["amendments"][0]["effective_at"] is None
    assert values_at(record, NOW)["vitals-1"]["pulse"] == 82
