"""Builders and probes for the integration tests: clinic members made through the real handlers, read-model snapshots."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time as clock_time, timedelta, timezone
from typing import Any
from uuid import uuid4

from eventsourcing.domain import Aggregate
from sqlalchemy import Engine, select

from commands import accounts, profiles
from commands.appointments import BookAppointment, book_appointment
from commands.base import Actor, Clock, Services
from domain.accounts import Account
from domain.doctors import WEEKDAYS, WeeklyAvailability
from domain.shared import Role
from infrastructure.bootstrap import Medledger, bootstrap
from infrastructure.settings import Settings
from projections.projectors import all_projectors
from projections.tables import positions

ADMIN = Actor(account_id="admin-of-the-tests", role=Role.ADMIN, profile_id=None, correlation_id="integration-admin")
PASSWORD = "correct horse battery staple"
AROUND_THE_CLOCK = WeeklyAvailability("UTC", 30, {day: ((clock_time(0), clock_time(23, 30)),) for day in WEEKDAYS})
READ_MODELS = {table.name: table for projector in all_projectors() for table in projector.tables}
PROJECTOR_NAMES = tuple(projector.name for projector in all_projectors())


@contextmanager
def running(settings: Settings, clock: Clock) -> Iterator[Medledger]:
    """The system without a background projector: the test drives projection itself."""
    system = bootstrap(settings, clock=clock)
    try:
        yield system
    finally:
        system.close()


def fresh_email(kind: str) -> str:
    return f"{kind}-{uuid4().hex[:10]}@integration.medledger.example"


@dataclass(frozen=True)
class Member:
    """An account made through the handlers, with the actor it acts as."""

    account_id: str
    profile_id: str
    email: str
    actor: Actor


def open_account(svc: Services, role: Role, profile: dict[str, Any]) -> Member:
    email = fresh_email(role.value)
    outcome = accounts.create_account(svc, accounts.CreateAccount(email, PASSWORD, role, profile), ADMIN)
    account = svc.store.find(Account, outcome.id)
    assert account is not None
    profile_id = account.profile_id or ""
    return Member(outcome.id, profile_id, email, Actor(outcome.id, role, profile_id or None, f"corr-{email}"))


def open_doctor(svc: Services, availability: WeeklyAvailability | None = AROUND_THE_CLOCK) -> Member:
    doctor = open_account(
        svc,
        Role.DOCTOR,
        {"name": "Dr Integration", "specialization": "General practice", "licence_number": "GMC-0000001",
         "consultation_fee": "80.00", "bio": ""},
    )
    if availability is not None:
        profiles.set_availability(svc, profiles.SetAvailability(doctor.profile_id, availability), ADMIN)
    return doctor


def open_patient(svc: Services, name: str = "Pat Integration") -> Member:
    profile = {"full_name": name, "date_of_birth": "1980-01-31", "sex": "female", "phone": "+44 20 7946 0999", "allergies": []}
    return open_account(svc, Role.PATIENT, profile)


def midnight_after(moment: datetime, days: int = 1) -> datetime:
    """UTC midnight `days` days after moment's date: a slot boundary of AROUND_THE_CLOCK, safely in the future."""
    day = moment.astimezone(timezone.utc).date() + timedelta(days=days)
    return datetime.combine(day, clock_time(0), tzinfo=timezone.utc)


def book_many(
    svc: Services, doctor: Member, patients: list[Member], first: datetime, days: int, per_day: int, threads: int = 4
) -> list[str]:
    """Books per_day consecutive slots on each of `days` days from first; threads take whole days, so never collide."""

    def book_days(worker: int) -> list[str]:
        booked = []
        for day in range(worker, days, threads):
            for k in range(per_day):
                patient = patients[(day * per_day + k) % len(patients)]
                start = first + timedelta(days=day, minutes=AROUND_THE_CLOCK.slot_minutes * k)
                command = BookAppointment(doctor.profile_id, patient.profile_id, start)
                booked.append(book_appointment(svc, command, ADMIN).id)
        return booked

    with ThreadPoolExecutor(threads) as pool:
        return [booking for booked in pool.map(book_days, range(threads)) for booking in booked]


def state(aggregate: Aggregate) -> dict[str, Any]:
    """What a reload must reproduce: the aggregate's own attributes and its identity, version and times."""
    own = {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
    return {**own, "id": aggregate.id, "version": aggregate.version,
            "created_on": aggregate.created_on, "modified_on": aggregate.modified_on}


def read_model_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model row, sorted, so two builds of the same history compare equal."""
    with engine.connect() as conn:
        return {
            name: sorted((tuple(row) for row in conn.execute(select(table))), key=lambda row: [str(v) for v in row])
            for name, table in READ_MODELS.items()
        }


def projector_positions(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(positions.c.name, positions.c.position)).all())


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def environment(settings: Settings) -> dict[str, str]:
    """The environment a `medledger` command needs to reach the same storage as these settings."""
    env = {
        "MEDLEDGER_DATA_DIR": str(settings.data_dir),
        "MEDLEDGER_JWT_SECRET": settings.jwt_key,
        "MEDLEDGER_LOG_SIGNING_KEY": settings.log_signing_key.get_secret_value() if settings.log_signing_key else "",
        "MEDLEDGER_MASTER_KEY": settings.master_key.get_secret_value() if settings.master_key else "",
        "MEDLEDGER_PASSWORD_HASHING": settings.password_hashing,
        "MEDLEDGER_POOL_SIZE": "2",
    }
    if settings.database_url:
        env.update(MEDLEDGER_DATABASE_URL=settings.database_url, MEDLEDGER_DATABASE_SCHEMA=settings.database_schema or "")
    return env
