"""History rows and as-of states from given events: diffs by path, who and why, secrets redacted, correct to the event."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate

from commands.audit import (
    REDACTED,
    Histories,
    Readable,
    diff,
    flatten,
    owner_of,
    redacted,
    rows_of,
    state_of,
    version_at,
)
from commands.base import RecordNotFoundError
from domain.accounts import Account
from domain.consultation import Consultation
from domain.patients import Patient
from domain.sessions import Session
from domain_helpers import CAUSE, CAUSE_DICT, MONDAY, utc
from test_appointment import APPOINTMENT_ID, BEFORE, booked

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=timezone.utc)


class StreamsInMemory(Histories):
    """The audit port over events held in memory: every state replayed from the first event."""

    def __init__(self, *streams: Sequence[Any]) -> None:
        self.streams = {stream[0].originator_id: list(stream) for stream in streams}

    def events(self, record_id: UUID) -> Sequence[Any]:
        return self.streams.get(record_id, [])

    def state_at(self, record_id: UUID, version: int) -> Aggregate | None:
        record = None
        for event in self.streams[record_id][:version]:
            record = event.mutate(record)
        return record

    def openings_mentioning(self, text: str) -> Sequence[Any]:
        return [s[0] for s in self.streams.values() if text in str(vars(s[0]))]


def recorded(aggregate: Aggregate, minutes_apart: int = 10) -> list[Any]:
    """The aggregate's events as recorded a given number of minutes apart from T0."""
    events = aggregate.collect_events()
    return [dataclasses.replace(e, timestamp=T0 + timedelta(minutes=minutes_apart * n)) for n, e in enumerate(events)]


def readable(events: list[Any], clinical: bool = True) -> Readable:
    return Readable(events[0].originator_id, events, clinical)


def test_a_diff_names_each_changed_leaf_by_path_with_before_and_after():
    before = {"status": "booked", "bookings": {"a1": {"start": "10:00", "end": "10:30"}}, "items": [{"dose": "1"}], "same": 1}
    after = {"status": "cancelled", "bookings": {}, "items": [{"dose": "2"}, {"dose": "3"}], "same": 1}

    assert diff(before, after) == [
        {"path": "bookings.a1.end", "before": "10:30", "after": None},
        {"path": "bookings.a1.start", "before": "10:00", "after": None},
        {"path": "items[0].dose", "before": "1", "after": "2"},
        {"path": "items[1].dose", "before": None, "after": "3"},
        {"path": "status", "before": "booked", "after": "cancelled"},
    ]


def test_a_changed_secret_shows_as_changed_without_its_values():
    changes = diff({"password_hash": "$argon2id$old", "email": "a@x.org"}, {"password_hash": "$argon2id$new", "email": "a@x.org"})

    assert changes == [{"path": "password_hash", "before": REDACTED, "after": REDACTED}]
    assert redacted({"session": {"token_id": "t-1", "other": 1}, "x": [{"refresh_token": "r"}]}) == {
        "session": {"token_id": REDACTED, "other": 1},
        "x": [{"refresh_token": REDACTED}],
    }


def test_flatten_leaves_empty_containers_out():
    assert flatten({"a": {}, "b": [], "c": {"d": None}}) == {"c.d": None}


def test_history_rows_say_who_why_when_and_what_changed():
    appointment = booked()
    appointment.cancel("patient asked", BEFORE, None, CAUSE)
    events = recorded(appointment)

    rows = rows_of(StreamsInMemory(events), readable(events), [1, 2])

    assert rows[2] == {
        "record_type": "Appointment",
        "record_id": str(APPOINTMENT_ID),
        "version": 2,
        "recorded_at": (T0 + timedelta(minutes=10)).isoformat(),
        "event_type": "Appointment.Cancelled",
        "actor_user_id": CAUSE_DICT["user_id"],
        "actor_role": CAUSE_DICT["role"],
        "correlation_id": CAUSE_DICT["correlation_id"],
        "reason": "patient asked",
        "changes": [
            {"path": "status", "before": "booked", "after": "cancelled"},
            {"path": "visit_access_since", "before": 1, "after": 2},
        ],
        "erased": False,
    }
    created = {c["path"]: (c["before"], c["after"]) for c in rows[1]["changes"]}
    assert created["status"] == (None, "booked")
    assert created["day"] == (None, MONDAY.isoformat()) and created["start"] == (None, "2025-06-02T07:00:00Z")
    assert rows[1]["event_type"] == "Appointment.Booked"


def test_a_page_of_rows_replays_from_just_before_it():
    appointment = booked()
    appointment.reschedule(utc(MONDAY, 8), utc(MONDAY, 8, 30), MONDAY, "clash", CAUSE)
    appointment.confirm(CAUSE)
    events = recorded(appointment)

    [third] = rows_of(StreamsInMemory(events), readable(events), [3]).values()

    assert third["changes"] == [{"path": "status", "before": "booked", "after": "confirmed"}]


def test_a_password_change_is_in_the_history_but_never_the_hash():
    account = Account(email="p@x.org", password_hash="$argon2id$first", role="patient", profile_id="p-1", cause=CAUSE_DICT)
    account.change_password("$argon2id$second", CAUSE)
    events = recorded(account)

    rows = rows_of(StreamsInMemory(events), readable(events), [1, 2])

    assert rows[2]["changes"] == [{"path": "password_hash", "before": REDACTED, "after": REDACTED}]
    assert "$argon2id" not in repr(rows)
    assert redacted(state_of(account))["password_hash"] == REDACTED


def test_a_session_state_never_shows_its_token_id():
    session = Session(account_id="acc-1", account_epoch=0, token_id="secret-token", expires_at=T0, cause=CAUSE_DICT)

    assert redacted(state_of(session))["token_id"] == REDACTED


def consultation_amended() -> list[Any]:
    consultation = Consultation.start(UUID(int=7), "patient-1", "doctor-1", None, "in_person", T0, CAUSE)
    consultation.record_complaint("e-1", "Cough", T0, CAUSE)
    consultation.sign(T0, CAUSE)
    consultation.amend("a-1", "e-1", {"text": "Cough and fever"}, "typed too fast", T0, CAUSE)
    return recorded(consultation)


def test_an_amendment_row_shows_the_corrected_value_and_its_reason():
    events = consultation_amended()

    [amended] = rows_of(StreamsInMemory(events), readable(events), [4]).values()

    assert amended["event_type"] == "Consultation.EntryAmended"
    assert amended["reason"] == "typed too fast"
    changed = {c["path"]: (c["before"], c["after"]) for c in amended["changes"]}
    assert changed["entries.e-1.current.text"] == ("Cough", "Cough and fever")
    assert changed["entries.e-1.amended"] == (False, True)


def test_without_clinical_access_a_consultation_row_shows_administrative_fields_only():
    events = consultation_amended()

    rows = rows_of(StreamsInMemory(events), readable(events, clinical=False), [1, 2, 3, 4])

    assert rows[2]["changes"] == [] and rows[4]["changes"] == [] and rows[4]["reason"] is None
    assert rows[3]["changes"] == [
        {"path": "signed_at", "before": None, "after": "2025-06-01T08:00:00Z"},
        {"path": "status", "before": "open", "after": "signed"},
    ]
    assert "Cough" not in repr(rows)


def test_as_of_a_moment_is_the_last_event_recorded_at_or_before_it():
    events = consultation_amended()  # recorded at T0, T0+10, T0+20, T0+30 minutes

    assert version_at(events, T0, None) == 1
    assert version_at(events, T0 + timedelta(minutes=29, seconds=59), None) == 3
    assert version_at(events, T0 + timedelta(minutes=30), None) == 4
    assert version_at(events, None, 2) == 2
    assert version_at(events, None, None) == 4
    with pytest.raises(RecordNotFoundError):
        version_at(events, T0 - timedelta(microseconds=1), None)
    with pytest.raises(RecordNotFoundError):
        version_at(events, None, 5)


def test_the_state_as_of_a_moment_before_an_amendment_does_not_show_it():
    events = consultation_amended()
    histories = StreamsInMemory(events)

    before = histories.state_at(events[0].originator_id, version_at(events, T0 + timedelta(minutes=25), None))
    after = histories.state_at(events[0].originator_id, version_at(events, T0 + timedelta(minutes=30), None))

    assert flatten(state_of(before))["entries.e-1.current.text"] == "Cough"
    assert flatten(state_of(after))["entries.e-1.current.text"] == "Cough and fever"


def test_the_owner_of_a_record_comes_from_its_first_event():
    patient = Patient(account_id="acc-1", profile={"full_name": "A"}, cause=CAUSE_DICT)
    patient_account = Account(email="p@x.org", password_hash="h", role="patient", profile_id=str(patient.id), cause=CAUSE_DICT)
    doctor_account = Account(email="d@x.org", password_hash="h", role="doctor", profile_id="doctor-1", cause=CAUSE_DICT)
    [opened_patient] = patient.collect_events()
    [opened_account] = patient_account.collect_events()
    [opened_doctor_account] = doctor_account.collect_events()
    [opened_appointment] = booked().collect_events()

    assert owner_of(patient.id, opened_patient) == str(patient.id)
    assert owner_of(patient_account.id, opened_account) == str(patient.id)
    assert owner_of(doctor_account.id, opened_doctor_account) is None
    assert owner_of(APPOINTMENT_ID, opened_appointment) == "patient-1"


def test_an_event_without_a_recorded_cause_has_an_unknown_actor():
    from commands.audit import actor_of

    assert actor_of(object()) == {"actor_user_id": "unknown", "actor_role": "unknown", "correlation_id": None}
