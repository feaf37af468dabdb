"""Read models follow the log exactly once: one pass reaches the end, passes repeat nothing, workers race safely."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from commands import accounts, appointments, care, profiles
from commands.appointments import BookAppointment, CancelAppointment, ConfirmAppointment, RescheduleAppointment
from domain.appointment import Appointment
from domain.care import Kind
from domain.shared import DomainError
from infrastructure.bootstrap import Medledger, bootstrap
from integration_helpers import (
    ADMIN,
    PASSWORD,
    PROJECTOR_NAMES,
    Member,
    book_many,
    midnight_after,
    open_doctor,
    open_patient,
    projector_positions,
    read_model_rows,
    running,
    wait_until,
)
from projections import queries
from projections.base import advance_together
from projections.tables import appointments as appointment_rows
from projections.tables import positions


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings(backend), clock) as system:
        yield system


@dataclass(frozen=True)
class History:
    doctor: Member
    idle_doctor: Member
    patients: list[Member]
    appointments: list[str]
    rescheduled_to: datetime
    leave_day: date


def svc_now(m: Medledger) -> datetime:
    return m.services.clock()


def clinic_history(m: Medledger) -> History:
    """A little of everything each projector handles, and sessions, which none of them does."""
    svc = m.services
    doctor = open_doctor(svc)
    idle = open_doctor(svc, availability=None)
    idle_changes = {"bio": "Part time", "consultation_fee": "95.50"}
    profiles.update_doctor_profile(svc, profiles.UpdateDoctorProfile(idle.profile_id, idle_changes), ADMIN)
    members = [open_patient(svc, f"Patient {n}") for n in range(6)]
    first = midnight_after(svc.clock(), days=2) + timedelta(hours=9)
    booked = []
    for n, patient in enumerate(members):
        command = BookAppointment(doctor.profile_id, patient.profile_id, first + timedelta(minutes=30 * n))
        booked.append(appointments.book_appointment(svc, command, patient.actor).id)
    appointments.confirm_appointment(svc, ConfirmAppointment(booked[0]), doctor.actor)
    appointments.cancel_appointment(svc, CancelAppointment(booked[1], "feeling better"), members[1].actor)
    moved_to = first + timedelta(days=1)
    appointments.reschedule_appointment(svc, RescheduleAppointment(booked[2], moved_to, "clash"), ADMIN)
    leave_day = first.date() + timedelta(days=6)
    profiles.take_leave(svc, profiles.TakeLeave(doctor.profile_id, leave_day - timedelta(days=1), "training"), ADMIN)
    profiles.cancel_leave(svc, profiles.CancelLeave(doctor.profile_id, leave_day - timedelta(days=1), "off"), ADMIN)
    profiles.take_leave(svc, profiles.TakeLeave(doctor.profile_id, leave_day, "congress"), ADMIN)
    new_phone = profiles.UpdatePatientProfile(members[0].profile_id, {"phone": "+44 20 7946 0000"})
    profiles.update_patient_profile(svc, new_phone, members[0].actor)
    accounts.disable_account(svc, accounts.DisableAccount(members[5].account_id, "left the practice"), ADMIN)
    grant = accounts.log_in(svc, accounts.LogIn(members[4].email, PASSWORD), "corr-login")
    accounts.log_out(svc, grant.session_id, members[4].actor)
    primary = care.StartRelationship(members[0].profile_id, doctor.profile_id, Kind.PRIMARY, "registered")
    ended = care.start_relationship(svc, primary, ADMIN).id
    care.end_relationship(svc, care.EndRelationship(members[0].profile_id, ended, "moved away"), ADMIN)
    referral = care.StartRelationship(members[0].profile_id, idle.profile_id, Kind.REFERRAL, "second opinion", doctor.profile_id)
    care.start_relationship(svc, referral, ADMIN)
    care.break_glass(svc, care.BreakGlass(members[3].profile_id, "unconscious on arrival", 30), idle.actor)
    return History(doctor, idle, members, booked, moved_to, leave_day)


def test_one_pass_brings_every_read_model_to_the_end_of_the_log(system: Medledger) -> None:
    history = clinic_history(system)
    end = system.store.max_position()

    covered = system.projection.run_once()

    assert covered > 0
    assert projector_positions(system.write_engine) == {name: end for name in PROJECTOR_NAMES}
    with system.read_engine.connect() as conn:
        booked = [queries.get_appointment(conn, i) for i in history.appointments]
        leave = queries.leave_days(conn, history.doctor.profile_id, history.leave_day - timedelta(days=9),
                                   history.leave_day + timedelta(days=9))
        patient = queries.get_patient(conn, history.patients[0].profile_id)
        disabled = queries.list_accounts(conn, role=None, disabled=True, page=1, page_size=50).items
        idle = queries.get_doctor(conn, history.idle_doctor.profile_id)
        relationships = queries.list_care_relationships(conn, history.patients[0].profile_id, svc_now(system), active_only=False)
        grants = queries.list_emergency_access(conn, history.patients[3].profile_id, svc_now(system), doctor_id=None)
    assert [a["status"] for a in booked] == ["confirmed", "cancelled", "booked", "booked", "booked", "booked"]
    assert booked[2]["start"] == history.rescheduled_to
    assert leave == {history.leave_day: "congress"}
    assert (patient["phone"], patient["profile"]["phone"]) == ("+44 20 7946 0000", "+44 20 7946 0000")
    assert [a["id"] for a in disabled] == [history.patients[5].account_id]
    assert (idle["bio"], idle["consultation_fee"]) == ("Part time", Decimal("95.50"))
    assert sorted((r["kind"], bool(r["active"]), r["end_reason"]) for r in relationships) == [
        ("primary_care", False, "moved away"),
        ("referral", True, None),
    ]
    assert [(g["doctor_id"], bool(g["active"])) for g in grants] == [(history.idle_doctor.profile_id, True)]


def test_a_second_pass_changes_nothing(system: Medledger) -> None:
    clinic_history(system)
    system.projection.run_once()
    rows, positions = read_model_rows(system.write_engine), projector_positions(system.write_engine)

    assert system.projection.run_once() == 0

    assert read_model_rows(system.write_engine) == rows
    assert projector_positions(system.write_engine) == positions


def test_projectors_with_nothing_to_write_still_advance_to_the_end_of_the_log(system: Medledger) -> None:
    svc = system.services
    patient = open_patient(svc)
    system.projection.run_once()
    assert projector_positions(system.write_engine)["appointments"] == system.store.max_position()
    rows = read_model_rows(system.write_engine)

    grant = accounts.log_in(svc, accounts.LogIn(patient.email, PASSWORD), "corr-login")
    accounts.log_out(svc, grant.session_id, patient.actor)
    end = system.store.max_position()
    system.projection.run_once()

    assert projector_positions(system.write_engine) == {name: end for name in PROJECTOR_NAMES}
    after = read_model_rows(system.write_engine)
    logged_in_and_out = set(after.pop("user_actions")) - set(rows.pop("user_actions"))  # what users did: they did this
    assert after == rows
    assert [(row[1], row[4]) for row in sorted(logged_in_and_out)] == [
        (patient.account_id, "medledger:Session.Started.v2"),
        (patient.account_id, "medledger:Session.Revoked.v1"),
    ]


def test_rebuild_reproduces_the_incrementally_built_tables(system: Medledger) -> None:
    history = clinic_history(system)
    system.projection.run_once()
    svc = system.services
    appointments.cancel_appointment(svc, CancelAppointment(history.appointments[3], "better"), ADMIN)
    renamed = profiles.UpdatePatientProfile(history.patients[1].profile_id, {"full_name": "Renamed"})
    profiles.update_patient_profile(svc, renamed, ADMIN)
    accounts.enable_account(svc, accounts.EnableAccount(history.patients[5].account_id, "came back"), ADMIN)
    system.projection.run_once()
    incremental = read_model_rows(system.write_engine)

    rebuilt = system.projection.rebuild()

    assert sorted(rebuilt) == sorted(PROJECTOR_NAMES)
    assert read_model_rows(system.write_engine) == incremental
    assert projector_positions(system.write_engine) == {name: system.store.max_position() for name in PROJECTOR_NAMES}


def test_two_workers_catching_up_together_apply_each_event_once(
    system: Medledger, caplog: pytest.LogCaptureFixture
) -> None:
    svc = system.services
    clinic_history(system)
    doctor = open_doctor(svc)
    members = [open_patient(svc, f"Crowd {n}") for n in range(10)]
    booked = book_many(svc, doctor, members, midnight_after(svc.clock(), days=3), days=30, per_day=10)
    end = system.store.max_position()
    second = bootstrap(system.settings, clock=svc.clock)
    caplog.set_level(logging.INFO, logger="medledger.projector")

    try:
        system.projection.start()
        second.projection.start()
        caught_up = wait_until(lambda: set(projector_positions(system.write_engine).values()) == {end}, timeout=60)
    finally:
        system.projection.stop()
        second.close()

    assert caught_up, projector_positions(system.write_engine)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    booked_in_log = system.store.app.recorder.select_notifications(
        start=1, limit=100_000, topics=["medledger:Appointment.Booked.v1"]
    )
    with system.read_engine.connect() as conn:
        rows = conn.execute(select(appointment_rows.c.id, appointment_rows.c.version)).all()
    assert sorted(row.id for row in rows) == sorted(str(n.originator_id) for n in booked_in_log)
    assert set(booked) <= {row.id for row in rows}
    versions = {row.id: row.version for row in rows}
    assert all(versions[i] == svc.store.find(Appointment, i).version for i in booked[::25])
    concurrent = read_model_rows(system.write_engine)

    system.projection.rebuild()

    assert read_model_rows(system.write_engine) == concurrent




@pytest.mark.parametrize("cleared", ["doctor name", "patient full_name"])
def test_a_profile_change_the_handlers_accept_never_stops_the_read_models(system: Medledger, cleared: str) -> None:
    svc = system.services
    doctor, patient = open_doctor(svc), open_patient(svc)
    try:
        if cleared == "doctor name":
            profiles.update_doctor_profile(svc, profiles.UpdateDoctorProfile(doctor.profile_id, {"name": None}), ADMIN)
        else:
            cleared_name = profiles.UpdatePatientProfile(patient.profile_id, {"full_name": None})
            profiles.update_patient_profile(svc, cleared_name, ADMIN)
    except DomainError:
        pass
    start = midnight_after(svc.clock(), days=2)
    appointments.book_appointment(svc, BookAppointment(doctor.profile_id, patient.profile_id, start), patient.actor)

    system.projection.run_once()

    assert projector_positions(system.write_engine) == {name: system.store.max_position() for name in PROJECTOR_NAMES}


def test_a_read_model_far_behind_catches_up_without_moving_the_others_back(system: Medledger, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = system.services
    clinic_history(system)
    system.projection.run_once()
    end = system.store.max_position()
    incremental = read_model_rows(system.write_engine)
    with system.write_engine.begin() as conn:
        conn.execute(appointment_rows.delete())
        conn.execute(positions.update().where(positions.c.name == "appointments").values(position=0))
    doctor, patient = open_doctor(svc), open_patient(svc)
    appointments.book_appointment(svc, BookAppointment(doctor.profile_id, patient.profile_id, midnight_after(svc.clock(), days=9)), patient.actor)
    seen: list[dict[str, int]] = []

    def step(*args: object, **kwargs: object) -> int:
        seen.append(projector_positions(system.write_engine))
        return advance_together(*args, **kwargs)

    monkeypatch.setattr("infrastructure.projector.advance_together", step)
    monkeypatch.setattr("infrastructure.projector.LIVE_BATCH", 5)
    system.projection.run_once()

    after = projector_positions(system.write_engine)
    assert set(after.values()) == {system.store.max_position()}
    for positions_seen in seen:
        assert all(positions_seen[name] >= end for name in PROJECTOR_NAMES if name != "appointments"), positions_seen
    rows = read_model_rows(system.write_engine)
    assert set(incremental["appointments"]) < set(rows["appointments"])
