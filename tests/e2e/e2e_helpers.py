"""Set-up steps for the HTTP tests: the first admin, staff, doctors with hours, patients, slots and error checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time as timer
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from commands import profiles
from commands.accounts import CreateAccount, create_account
from commands.base import Actor
from domain.accounts import Account
from domain.doctors import WeeklyAvailability
from domain.shared import Role
from infrastructure.bootstrap import Medledger, bootstrap
from infrastructure.settings import Settings
from tests.conftest import POSTGRES_URL, TEST_LOG_KEY, TEST_MASTER_KEY, TEST_SECRET, FakeClock, drop_schema, need_postgres

PASSWORD = "correct-horse-battery"
OPERATOR = Actor("operator", Role.ADMIN, None, "test")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAY_EVERY_DAY = {"timezone": "UTC", "slot_minutes": 30, "periods": {day: [["00:00", "23:30"]] for day in WEEKDAYS}}
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def unique_email(kind: str = "user") -> str:
    return f"{kind}-{uuid4().hex}@example.com"


def patient_profile(full_name: str = "Grace Hopper", **changes: Any) -> dict[str, Any]:
    return {"full_name": full_name, "date_of_birth": "1986-12-09", "sex": "female", "phone": "+44 20 7946 0001", **changes}


def doctor_profile(name: str = "Dr Amara Okafor", specialization: str = "Cardiology", **changes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "specialization": specialization,
        "licence_number": f"GMC-{uuid4().hex[:7]}",
        "consultation_fee": "120.00",
        **changes,
    }


@dataclass
class User:
    email: str
    password: str
    account_id: str
    role: str
    profile_id: str | None
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def iso(moment: datetime | date) -> str:
    return moment.isoformat()


def body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def expect(response: httpx.Response, status: int, code: str | None = None, field: str | None = None) -> Any:
    """Asserts the status (and the error's machine code and field); answers the body."""
    answer = body(response)
    assert response.status_code == status, f"{response.request.method} {response.request.url.path}: {response.status_code} {answer}"
    if code is not None:
        assert answer["code"] == code, answer
    if field is not None:
        fields = [error["field"] for error in answer["errors"]]
        assert any(f == field or f.endswith(f".{field}") for f in fields), answer
        assert all(error["reason"] for error in answer["errors"]), answer
    return answer


class Clinic:
    """The API under test, with the set-up a test needs done over HTTP (but the first admin, who has no other way in)."""

    def __init__(self, client: TestClient, medledger: Medledger, clock: Any) -> None:
        self.client = client
        self.medledger = medledger
        self.clock = clock

    # Accounts and logins

    def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        return expect(self.client.post("/auth/login", json={"email": email, "password": password}), 200)

    def user(self, email: str, password: str = PASSWORD) -> User:
        tokens = self.login(email, password)
        me = expect(self.client.get("/auth/me", headers=bearer(tokens["access_token"])), 200)
        return User(email, password, me["account_id"], me["role"], me["profile_id"], tokens["access_token"], tokens["refresh_token"])

    def admin(self) -> User:
        email = unique_email("admin")
        create_account(self.medledger.services, CreateAccount(email, PASSWORD, Role.ADMIN), OPERATOR)
        return self.user(email)

    def create_account(self, admin: User, role: str, email: str | None = None, **extra: Any) -> httpx.Response:
        payload = {"email": email or unique_email(role), "password": PASSWORD, "role": role, **extra}
        return self.client.post("/accounts", headers=admin.headers, json=payload)

    def staff(self, admin: User, role: str) -> User:
        email = unique_email(role)
        expect(self.create_account(admin, role, email), 201)
        return self.user(email)

    def doctor(self, admin: User, availability: dict[str, Any] | None = ALL_DAY_EVERY_DAY, **profile: Any) -> User:
        email = unique_email("doctor")
        expect(self.create_account(admin, "doctor", email, doctor_profile=doctor_profile(**profile)), 201)
        doctor = self.user(email)
        if availability is not None:
            expect(self.client.put(f"/doctors/{doctor.profile_id}/availability", headers=doctor.headers, json=availability), 200)
        return doctor

    def member(self, admin: User, role: str) -> User:
        """A new account of any role: patients register, the others are created by the admin."""
        if role == "patient":
            return self.patient()
        if role == "doctor":
            return self.doctor(admin)
        return self.staff(admin, role)

    def register(self, email: str | None = None, **profile: Any) -> httpx.Response:
        payload = {"email": email or unique_email("patient"), "password": PASSWORD, "profile": patient_profile(**profile)}
        return self.client.post("/auth/register", json=payload)

    def patient(self, **profile: Any) -> User:
        email = unique_email("patient")
        expect(self.register(email, **profile), 201)
        return self.user(email)

    # Appointments

    def book(self, user: User, doctor: User, start: datetime, **extra: Any) -> httpx.Response:
        payload = {"doctor_id": doctor.profile_id, "start": iso(start), **extra}
        return self.client.post("/appointments", headers=user.headers, json=payload)

    def booked(self, user: User, doctor: User, start: datetime, **extra: Any) -> dict[str, Any]:
        return expect(self.book(user, doctor, start, **extra), 201)

    def act(self, user: User, appointment_id: str, action: str, **payload: Any) -> httpx.Response:
        return self.client.post(f"/appointments/{appointment_id}/{action}", headers=user.headers, json=payload or None)

    # Queries

    def latest(self) -> int:
        """The end of the event log: pass as ?after= to see everything written so far."""
        return self.medledger.store.max_position()

    def get(self, user: User, path: str, after: int | None = None, **params: Any) -> httpx.Response:
        if after is not None:
            params["after"] = after
        return self.client.get(path, headers=user.headers, params=params)

    def read(self, user: User, path: str, after: int | None = None, **params: Any) -> Any:
        return expect(self.get(user, path, after, **params), 200)

    def free_starts(self, user: User, doctor: User, day: date, after: int | None = None) -> set[datetime]:
        slots = self.read(user, f"/doctors/{doctor.profile_id}/slots", after, **{"from": iso(day)})
        return {datetime.fromisoformat(slot["start"]) for slot in slots}

    # Time

    def at(self, days: int, hour: int, minute: int = 0) -> datetime:
        """A moment `days` after today (by the fake clock), at a UTC time of day; any days >= 1 is in the future."""
        return datetime.combine(self.clock.now.date() + timedelta(days=days), time(hour, minute), tzinfo=timezone.utc)

    def move_clock_to(self, moment: datetime) -> None:
        self.clock.advance(seconds=(moment - self.clock.now).total_seconds())


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
AMLODIPINE = {
    "medication": {"name": "amlodipine", "strength": "5 mg", "form": "tablet"},
    "dose": "1 tablet",
    "route": "oral",
    "frequency": "once_daily",
    "duration_days": 30,
    "quantity": 30,
}


def posted(clinic: Clinic, user: User, path: str, payload: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
    """POSTs the payload as the user and asserts the status; answers the body."""
    return expect(clinic.client.post(path, headers=user.headers, json=payload), status)


def position(answer: dict[str, Any]) -> int:
    assert isinstance(answer["position"], int), answer
    return answer["position"]


def changes_nothing(clinic: Clinic, send: Callable[[], httpx.Response]) -> dict[str, Any]:
    """Sends a command that has already taken effect: 200, nothing new in the log, and the log's end as its position."""
    logged = clinic.latest()
    answer = expect(send(), 200)
    assert position(answer) == logged == clinic.latest(), answer
    return answer


@contextmanager
def module_clinic(backend: str, data_dir: Path, **overrides: Any) -> Iterator[Clinic]:
    """A clinic on its own system, for a module whose tests share it: a schema of its own on PostgreSQL, the
    projector running, and tokens that outlive the module."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "jwt_secret": TEST_SECRET,
        "log_signing_key": TEST_LOG_KEY,
        "master_key": TEST_MASTER_KEY,
        "password_hashing": "fast",
        "projector_poll_seconds": 0.01,
        "access_token_minutes": 120,
        "billing_policy": False,
        **overrides,
    }
    schema = None
    if backend == "postgres":
        need_postgres()
        schema = f"test_{uuid4().hex[:16]}"
        values.update(database_url=POSTGRES_URL, database_schema=schema, pool_size=5)
    clock = FakeClock()
    system = bootstrap(Settings(**values), clock=clock)
    try:
        system.start_projector()
        with TestClient(create_app(system)) as client:
            yield Clinic(client, system, clock)
    finally:
        system.close()
        if schema is not None:
            drop_schema(schema)


# A real server in a subprocess


@dataclass(frozen=True)
class Cast:
    admin_email: str
    doctor_id: str
    patient_emails: list[str]


def open_clinic(settings: Settings, patients: int) -> Cast:
    """Writes an admin, one doctor open all day every day, and patients straight into the event store, for a server to serve."""
    system = bootstrap(settings)
    try:
        svc = system.services

        def account(role: Role, profile: dict[str, Any]) -> tuple[str, str | None]:
            email = unique_email(role.value)
            create_account(svc, CreateAccount(email, PASSWORD, role, profile), OPERATOR)
            found = system.store.find(Account, Account.create_id(email))
            assert found is not None
            return email, found.profile_id

        admin_email, _ = account(Role.ADMIN, {})
        _, doctor_id = account(Role.DOCTOR, doctor_profile(name="Dr Contended"))
        assert doctor_id is not None
        every_day = WeeklyAvailability("UTC", 30, {day: ((time(0), time(23, 30)),) for day in WEEKDAYS})
        profiles.set_availability(svc, profiles.SetAvailability(doctor_id, every_day), OPERATOR)
        emails = [account(Role.PATIENT, patient_profile(full_name=f"Patient {n:02d}"))[0] for n in range(patients)]
        return Cast(admin_email, doctor_id, emails)
    finally:
        system.close()


def log_in(base_url: str, email: str) -> httpx.Client:
    """A client of the real server carrying a fresh access token of this account."""
    client = httpx.Client(base_url=base_url, timeout=60)
    response = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers.update(bearer(response.json()["access_token"]))
    return client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEDLEDGER_")}
    env.update(
        MEDLEDGER_DATA_DIR=str(settings.data_dir),
        MEDLEDGER_JWT_SECRET=settings.jwt_key,
        MEDLEDGER_LOG_SIGNING_KEY=settings.log_signing_key.get_secret_value() if settings.log_signing_key else "",
        MEDLEDGER_MASTER_KEY=settings.master_key.get_secret_value() if settings.master_key else "",
        MEDLEDGER_PASSWORD_HASHING=settings.password_hashing,
        MEDLEDGER_PROJECTOR=settings.projector,
        MEDLEDGER_PROJECTOR_POLL_SECONDS="0.01",
        MEDLEDGER_READ_WAIT_SECONDS="15",
        MEDLEDGER_WRITE_RATE_LIMIT=settings.write_rate_limit,
    )
    if settings.database_url:
        env.update(MEDLEDGER_DATABASE_URL=settings.database_url, MEDLEDGER_DATABASE_SCHEMA=settings.database_schema or "")
    if settings.redis_url:
        env.update(MEDLEDGER_REDIS_URL=settings.redis_url, MEDLEDGER_REDIS_PREFIX=settings.redis_prefix)
    env.update(extra)
    return env


@contextmanager
def running_server(settings: Settings, workers: int, log_path: Path, **env: str) -> Iterator[str]:
    """uvicorn with the real app factory on a free loopback port; answers its base URL once /health answers.

    env adds or overrides MEDLEDGER_* variables of the server."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "uvicorn"),
        "api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--workers",
        str(workers),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=server_environment(settings, **env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_until_healthy(server, base_url, log_path)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)


def _wait_until_healthy(server: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float = 30) -> None:
    deadline = timer.monotonic() + timeout
    # One client for every probe: httpx.get builds a client, and its SSL context, each time (35 ms of CPU that the
    # starting server could use).
    with httpx.Client(timeout=1) as probe:
        while timer.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {server.returncode}:\n{log_path.read_text()}")
            try:
                if probe.get(f"{base_url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            timer.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer /health within {timeout}s:\n{log_path.read_text()}")
