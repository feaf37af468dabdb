"""`medledger backfill-visits`: a store written before visits were recorded gets the access its appointments give,
once; running it again records nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import uuid4

from typer.testing import CliRunner

from commands import appointments
from commands.access import doctor_basis
from commands.base import Services, load_or_open
from domain import scheduling
from domain.appointment import Appointment
from domain.doctor_calendar import DoctorCalendar
from domain.doctors import Doctor
from domain.patient_agenda import PatientAgenda
from domain.shared import utc_days
from infrastructure import backfill
from infrastructure.bootstrap import Medledger
from infrastructure.cli import cli
from infrastructure.settings import Settings
from integration_helpers import ADMIN, Member, midnight_after, open_doctor, open_patient, running
from projections.queries import patients_in_care

CAUSE = ADMIN.cause


def _agendas(svc: Services, patient_id: str, start: datetime, end: datetime) -> list[PatientAgenda]:
    return [
        load_or_open(svc.store, PatientAgenda, PatientAgenda.create_id(patient_id, day), patient_id=patient_id, day=day, cause=CAUSE.as_dict())
        for day in utc_days(start, end)
    ]


def booked_as_before(svc: Services, doctor: Member, patient: Member, start: datetime) -> str:
    """Books as Medledger did before visits were recorded: appointment, calendar day and agenda, no care record."""
    found = svc.store.find(Doctor, doctor.profile_id)
    assert found is not None
    slot = scheduling.check_slot(found, start, svc.clock())
    calendar = load_or_open(
        svc.store, DoctorCalendar, DoctorCalendar.create_id(doctor.profile_id, slot.day),
        doctor_id=doctor.profile_id, day=slot.day, cause=CAUSE.as_dict(),
    )
    agendas = _agendas(svc, patient.profile_id, slot.start, slot.end)
    appointment = scheduling.book(
        appointment_id=uuid4(), doctor=found, calendar=calendar, agendas=agendas, patient_id=patient.profile_id,
        slot=slot, overbook_reason=None, cause=CAUSE,
    )
    assert appointment is not None
    svc.store.save(appointment, calendar, *agendas)
    return str(appointment.id)


def changed_as_before(svc: Services, appointment_id: str, change: Callable[[Appointment], None]) -> None:
    appointment = svc.store.find(Appointment, appointment_id)
    assert appointment is not None
    change(appointment)
    svc.store.save(appointment)


def cancelled_as_before(svc: Services, appointment_id: str) -> None:
    appointment = svc.store.find(Appointment, appointment_id)
    assert appointment is not None
    calendar = svc.store.find(DoctorCalendar, DoctorCalendar.create_id(appointment.doctor_id, appointment.day))
    assert calendar is not None
    agendas = _agendas(svc, appointment.patient_id, appointment.start, appointment.end)
    scheduling.cancel(
        appointment=appointment, calendar=calendar, agendas=agendas, reason="Feeling better",
        now=svc.clock(), deadline=None, cause=CAUSE,
    )
    svc.store.save(appointment, calendar, *agendas)


def environment(settings: Settings) -> dict[str, str | None]:
    """The settings as the `medledger` command reads them."""
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    return {
        "MEDLEDGER_DATA_DIR": str(settings.data_dir),
        "MEDLEDGER_DATABASE_URL": settings.database_url,
        "MEDLEDGER_DATABASE_SCHEMA": settings.database_schema,
        "MEDLEDGER_JWT_SECRET": secret,
        "MEDLEDGER_LOG_SIGNING_KEY": settings.log_signing_key.get_secret_value() if settings.log_signing_key else None,
        "MEDLEDGER_MASTER_KEY": settings.master_key.get_secret_value() if settings.master_key else None,
        "MEDLEDGER_POOL_SIZE": "2",
        "MEDLEDGER_PASSWORD_HASHING": "fast",
    }


def in_care(m: Medledger, doctor: Member, patients: dict[str, Member]) -> tuple[set[str], set[str]]:
    """The patients the doctor may open now: as the commands decide, and as searches scope them."""
    decided = {n for n, p in patients.items() if doctor_basis(m.services, doctor.profile_id, p.profile_id) is not None}
    m.projection.run_once()
    with m.read_engine.connect() as conn:
        ids = set(conn.execute(patients_in_care(doctor.profile_id, m.services.clock(), m.services.post_visit_access)).scalars())
    return decided, {n for n, p in patients.items() if p.profile_id in ids}


def test_backfilling_records_each_appointments_access_once(backend, make_settings, clock) -> None:
    settings = make_settings(backend)
    names = ("booked", "completed-recently", "completed-long-ago", "cancelled", "no-show", "booked-since", "cancelled-since")
    with running(settings, clock) as m:
        svc = m.services
        doctor = open_doctor(svc)
        patients = {name: open_patient(svc, name) for name in names}
        day = midnight_after(clock.now)
        starts = {
            "completed-long-ago": day,
            "no-show": day + timedelta(hours=1),
            "completed-recently": day + timedelta(days=1, hours=2),
            "booked": day + timedelta(days=3),
            "cancelled": day + timedelta(days=3, hours=1),
            "cancelled-since": day + timedelta(days=3, hours=2),
        }
        ids = {name: booked_as_before(svc, doctor, patients[name], start) for name, start in starts.items()}
        ids["booked-since"] = appointments.book_appointment(
            svc, appointments.BookAppointment(doctor.profile_id, patients["booked-since"].profile_id, day + timedelta(days=3, hours=3)), ADMIN
        ).id
        cancelled_as_before(svc, ids["cancelled"])
        appointments.cancel_appointment(svc, appointments.CancelAppointment(ids["cancelled-since"], "Moved away"), ADMIN)
        clock.now = day + timedelta(minutes=10)
        changed_as_before(svc, ids["completed-long-ago"], lambda a: a.complete(clock.now, CAUSE))
        clock.now = day + timedelta(hours=1, minutes=40)
        changed_as_before(svc, ids["no-show"], lambda a: a.mark_no_show(clock.now, CAUSE))
        clock.now = day + timedelta(days=1, hours=2, minutes=10)
        changed_as_before(svc, ids["completed-recently"], lambda a: a.complete(clock.now, CAUSE))

        assert in_care(m, doctor, patients) == ({"booked-since"}, {"booked-since"})

    runner = CliRunner()
    first = runner.invoke(cli, ["backfill-visits"], env=environment(settings))
    assert first.exit_code == 0, first.output
    assert "7 appointments examined, 3 visits recorded" in first.output
    again = runner.invoke(cli, ["backfill-visits"], env=environment(settings))
    assert again.exit_code == 0, again.output
    assert "7 appointments examined, 0 visits recorded" in again.output

    with running(settings, clock) as m:
        expected = {"booked", "completed-recently", "booked-since"}
        assert in_care(m, doctor, patients) == (expected, expected)
        clock.now = day + timedelta(days=2, hours=2, minutes=40)
        assert in_care(m, doctor, patients) == ({"booked", "booked-since"}, {"booked", "booked-since"})
        assert backfill.backfill_visits(m, ADMIN).recorded == 0
