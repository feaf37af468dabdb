"""The event store's contract, on SQLite and PostgreSQL, with and without group commit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from commands import accounts, appointments, profiles
from domain.accounts import Account
from domain.appointment import Appointment
from domain.doctor_calendar import DoctorCalendar
from domain.doctors import Doctor
from domain.patient_agenda import PatientAgenda
from domain.patients import Patient
from domain.sessions import Session
from domain.shared import Cause, Role
from infrastructure.bootstrap import Medledger
from infrastructure.eventstore import EventStore
from integration_helpers import ADMIN, AROUND_THE_CLOCK, PASSWORD, midnight_after, open_doctor, open_patient, running, state

CAUSE = Cause(user_id="user-7", role=Role.ADMIN, correlation_id="corr-7")
MONDAY = date(2031, 3, 3)
NINE = datetime(2031, 3, 3, 9, 0, tzinfo=timezone.utc)
HALF_HOUR = timedelta(minutes=30)
STABLE_TOPIC = re.compile(r"medledger:[A-Z][A-Za-z]*\.[A-Z][A-Za-z]*\.v[0-9]+")


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings(backend), clock) as system:
        yield system


@pytest.fixture
def store(system: Medledger) -> EventStore:
    return system.store


@pytest.fixture(params=[True, False], ids=["group-commit", "direct"])
def saving_store(request: pytest.FixtureRequest, backend: str, make_settings, clock) -> Iterator[EventStore]:
    """The store with each way of saving: batched by the group committer, or one transaction per call."""
    with running(make_settings(backend, group_commit=request.param), clock) as system:
        yield system.store


def an_account() -> Account:
    account = Account(email=f"staff-{uuid4().hex[:8]}@x.example", password_hash="$argon2id$hash", role="admin",
                      profile_id=None, cause=CAUSE.as_dict())
    account.disable("on leave", CAUSE)
    account.enable("back", CAUSE)
    account.change_role(Role.AUDITOR, "rotation", CAUSE)
    return account


def a_session() -> Session:
    session = Session(account_id=str(uuid4()), account_epoch=0, token_id="token-1", expires_at=NINE + timedelta(days=14),
                      cause=CAUSE.as_dict())
    session.rotate("token-1", "token-2", NINE + timedelta(days=15), NINE, CAUSE)
    session.revoke("logout", CAUSE)
    return session


def a_doctor() -> Doctor:
    doctor = Doctor(account_id=str(uuid4()), profile={"name": "Dr Who", "consultation_fee": "80.00"},
                    cause=CAUSE.as_dict())
    doctor.update_profile({"bio": "Travels in time."}, CAUSE)
    doctor.set_availability(AROUND_THE_CLOCK, CAUSE)
    return doctor


def a_patient() -> Patient:
    patient = Patient(account_id=str(uuid4()), profile={"full_name": "Rose Tyler", "allergies": ["penicillin"]},
                      cause=CAUSE.as_dict())
    patient.update_profile({"phone": "+44 20 7946 0123"}, CAUSE)
    return patient


def an_appointment() -> Appointment:
    appointment = Appointment(id=uuid4(), doctor_id=str(uuid4()), patient_id=str(uuid4()), start=NINE,
                              end=NINE + HALF_HOUR, day=MONDAY, overbooked=False, reason=None, cause=CAUSE.as_dict())
    appointment.confirm(CAUSE)
    later = NINE + timedelta(days=1)
    appointment.reschedule(later, later + HALF_HOUR, MONDAY + timedelta(days=1), "clash", CAUSE)
    return appointment


def a_doctor_calendar() -> DoctorCalendar:
    calendar = DoctorCalendar(doctor_id=str(uuid4()), day=MONDAY, cause=CAUSE.as_dict())
    calendar.book("appointment-1", "patient-1", NINE, NINE + HALF_HOUR, None, CAUSE)
    calendar.book("appointment-2", "patient-2", NINE, NINE + HALF_HOUR, "emergency", CAUSE)
    calendar.book("appointment-3", "patient-3", NINE + HALF_HOUR, NINE + 2 * HALF_HOUR, None, CAUSE)
    calendar.release("appointment-1", CAUSE)
    return calendar


def a_patient_agenda() -> PatientAgenda:
    agenda = PatientAgenda(patient_id=str(uuid4()), day=MONDAY, cause=CAUSE.as_dict())
    agenda.hold("appointment-1", NINE, NINE + HALF_HOUR, CAUSE)
    agenda.hold("appointment-2", NINE + HALF_HOUR, NINE + 2 * HALF_HOUR, CAUSE)
    agenda.release("appointment-1", CAUSE)
    return agenda


BUILDERS = [an_account, a_session, a_doctor, a_patient, an_appointment, a_doctor_calendar, a_patient_agenda]


def notifications(store: EventStore) -> list:
    return list(store.app.recorder.select_notifications(start=1, limit=100_000))


@pytest.mark.parametrize("build", BUILDERS, ids=lambda build: build.__name__)
def test_an_aggregate_reloads_with_the_state_it_was_saved_with(store: EventStore, build) -> None:
    aggregate: Aggregate = build()
    expected = state(aggregate)

    store.save(aggregate)
    reloaded = store.find(type(aggregate), aggregate.id)

    assert reloaded is not None and reloaded is not aggregate
    assert reloaded.version == aggregate.version > 1
    assert state(reloaded) == expected


def test_the_log_names_events_by_stable_topics_and_every_event_carries_its_cause(system: Medledger, clock) -> None:
    svc = system.services
    doctor = open_doctor(svc)
    patient = open_patient(svc)
    start = midnight_after(clock(), days=2) + timedelta(hours=10)
    booked = appointments.book_appointment(svc, appointments.BookAppointment(doctor.profile_id, patient.profile_id, start),
                                           patient.actor)
    appointments.cancel_appointment(svc, appointments.CancelAppointment(booked.id, "feeling better"), patient.actor)
    profiles.take_leave(svc, profiles.TakeLeave(doctor.profile_id, start.date() + timedelta(days=3), "congress"), ADMIN)
    grant = accounts.log_in(svc, accounts.LogIn(patient.email, PASSWORD), "corr-login")
    accounts.log_out(svc, grant.session_id, patient.actor)

    log = notifications(system.store)

    topics = [n.topic for n in log]
    assert [t for t in topics if not STABLE_TOPIC.fullmatch(t)] == []
    assert {
        "medledger:Account.Registered.v1",
        "medledger:Doctor.Registered.v1",
        "medledger:Doctor.AvailabilitySet.v1",
        "medledger:Patient.Registered.v1",
        "medledger:Appointment.Booked.v1",
        "medledger:Appointment.Cancelled.v1",
        "medledger:DoctorCalendar.Opened.v1",
        "medledger:DoctorCalendar.SlotBooked.v1",
        "medledger:DoctorCalendar.SlotReleased.v1",
        "medledger:DoctorCalendar.LeaveTaken.v1",
        "medledger:PatientAgenda.Opened.v1",
        "medledger:PatientAgenda.Held.v1",
        "medledger:PatientAgenda.Released.v1",
        "medledger:Session.Started.v2",
        "medledger:Session.Revoked.v1",
    } <= set(topics)
    log = [system.store.app.mapper.open(n) for n in log]  # a patient's events are sealed with their key
    causes = [json.loads(n.state)["cause"] for n in log]
    assert all(set(cause) == {"user_id", "role", "correlation_id"} and all(cause.values()) for cause in causes)
    booking_causes = [json.loads(n.state)["cause"] for n in log if n.topic == "medledger:Appointment.Booked.v1"]
    assert booking_causes == [patient.actor.cause.as_dict()]
    login_causes = [json.loads(n.state)["cause"] for n in log if n.topic == "medledger:Session.Started.v2"]
    assert login_causes == [{"user_id": patient.account_id, "role": "patient", "correlation_id": "corr-login"}]


def test_save_answers_the_log_position_of_its_last_event(saving_store: EventStore) -> None:
    patient, doctor, account = a_patient(), a_doctor(), an_account()

    first = saving_store.save(patient)
    second = saving_store.save(doctor, account)

    log = notifications(saving_store)
    assert first == max(n.id for n in log if n.originator_id == patient.id)
    assert second == log[-1].id == saving_store.max_position()
    assert first < second
    assert [n.originator_id for n in log if n.id > first] == [doctor.id] * 3 + [account.id] * 4


def test_save_of_aggregates_without_new_events_answers_none(saving_store: EventStore) -> None:
    patient = a_patient()
    saving_store.save(patient)
    position = saving_store.max_position()

    assert saving_store.save(patient, saving_store.find(Patient, patient.id), None) is None
    assert saving_store.max_position() == position


def test_saving_a_stale_aggregate_raises_integrity_error(saving_store: EventStore) -> None:
    patient = a_patient()
    saving_store.save(patient)
    stale = saving_store.find(Patient, patient.id)
    fresh = saving_store.find(Patient, patient.id)
    fresh.update_profile({"phone": "+44 1"}, CAUSE)
    saving_store.save(fresh)

    stale.update_profile({"phone": "+44 2"}, CAUSE)
    with pytest.raises(IntegrityError):
        saving_store.save(stale)

    assert saving_store.find(Patient, patient.id).profile["phone"] == "+44 1"


def test_a_save_with_one_stale_aggregate_stores_none_of_the_others(saving_store: EventStore) -> None:
    patient = a_patient()
    saving_store.save(patient)
    stale = saving_store.find(Patient, patient.id)
    fresh = saving_store.find(Patient, patient.id)
    fresh.update_profile({"phone": "+44 1"}, CAUSE)
    saving_store.save(fresh)
    position = saving_store.max_position()

    newcomers = [a_doctor(), an_account(), an_appointment()]
    stale.update_profile({"phone": "+44 2"}, CAUSE)
    with pytest.raises(IntegrityError):
        saving_store.save(*newcomers, stale)

    assert saving_store.max_position() == position
    assert [saving_store.find(type(a), a.id) for a in newcomers] == [None, None, None]
    assert saving_store.find(Patient, patient.id).profile["phone"] == "+44 1"


def test_find_answers_none_for_unknown_malformed_and_other_type_ids(store: EventStore) -> None:
    patient = a_patient()
    store.save(patient)

    assert store.find(Patient, uuid4()) is None
    assert store.find(Patient, str(uuid4())) is None
    assert store.find(Patient, "not-a-uuid") is None
    assert store.find(Patient, "") is None
    assert store.find(Doctor, patient.id) is None
    assert store.find(Account, str(patient.id)) is None
    assert store.find(Patient, str(patient.id)) is not None
