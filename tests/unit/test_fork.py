"""The aggregate cache hands out forks: a command on a fork must never change the cached original."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from uuid import uuid4

from domain.accounts import Account
from domain.appointment import Appointment
from domain.doctor_calendar import DoctorCalendar
from domain.doctors import Doctor, WeeklyAvailability
from domain.patient_agenda import PatientAgenda
from domain.patients import Patient
from domain.sessions import Session
from domain.shared import Cause, Role
from infrastructure.eventstore import fork

CAUSE = Cause("user-1", Role.ADMIN, "corr-1")
START = datetime(2030, 1, 7, 9, tzinfo=timezone.utc)
END = START + timedelta(minutes=30)


def state(aggregate: object) -> dict:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def assert_fork_isolated(original: object, command) -> None:
    original.collect_events()
    before = state(original)
    twin = fork(original)
    command(twin)
    assert twin.collect_events(), "the command should have changed the fork"
    assert state(original) == before
    assert original.collect_events() == []


def test_calendar_fork() -> None:
    calendar = DoctorCalendar(doctor_id="d", day=date(2030, 1, 7), cause=CAUSE.as_dict())
    calendar.book("a1", "p1", START, END, None, CAUSE)
    assert_fork_isolated(calendar, lambda c: c.book("a2", "p2", END, END + timedelta(minutes=30), None, CAUSE))
    assert_fork_isolated(calendar, lambda c: c.release("a1", CAUSE))


def test_agenda_fork() -> None:
    agenda = PatientAgenda(patient_id="p", day=date(2030, 1, 7), cause=CAUSE.as_dict())
    assert_fork_isolated(agenda, lambda a: a.hold("a1", START, END, CAUSE))


def test_profile_forks() -> None:
    patient = Patient(account_id="a", profile={"full_name": "A", "allergies": ["latex"]}, cause=CAUSE.as_dict())
    assert_fork_isolated(patient, lambda p: p.update_profile({"allergies": ["latex", "penicillin"]}, CAUSE))
    doctor = Doctor(account_id="a", profile={"name": "Dr A"}, cause=CAUSE.as_dict())
    availability = WeeklyAvailability("UTC", 30, {"mon": ((time(9), time(12)),)})
    assert_fork_isolated(doctor, lambda d: d.set_availability(availability, CAUSE))


def test_record_forks() -> None:
    appointment = Appointment(
        id=uuid4(), doctor_id="d", patient_id="p", start=START, end=END, day=START.date(),
        overbooked=False, reason=None, cause=CAUSE.as_dict(),
    )
    assert_fork_isolated(appointment, lambda a: a.confirm(CAUSE))
    account = Account(email="a@example.com", password_hash="h", role="admin", profile_id=None, cause=CAUSE.as_dict())
    assert_fork_isolated(account, lambda a: a.disable("left", CAUSE))
    session = Session(account_id="a", account_epoch=0, token_id="t1", expires_at=END, cause=CAUSE.as_dict())
    assert_fork_isolated(session, lambda s: s.revoke("logout", CAUSE))
