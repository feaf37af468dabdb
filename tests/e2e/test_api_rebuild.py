"""Read models rebuilt while the API serves, writes and projects: every query is answered, the rebuilt tables are right."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import pytest
from sqlalchemy import Engine, select

from commands.appointments import BookAppointment, book_appointment
from e2e_helpers import OPERATOR, Clinic, User
from infrastructure.bootstrap import bootstrap
from infrastructure.database import create_read_model_engine
from infrastructure.projector import ProjectionWorker
from projections.projectors import all_projectors
from projections.tables import positions

REBUILDS: list[list[str]] = [[], ["appointments"], ["care", "patients"], [], ["appointments"]]
HISTORY_DAYS = 8  # 320 bookings before the writes begin: each rebuild has a history to catch up while they go on
WRITES_BETWEEN_REBUILDS = 6
READ_MODELS = {table.name: table for projector in all_projectors() for table in projector.tables}
PROJECTOR_NAMES = {projector.name for projector in all_projectors()}


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


def in_a_loop(stop: threading.Event, failures: list[str], step: Callable[[int], None]) -> threading.Thread:
    def loop() -> None:
        n = 0
        while not stop.is_set():
            try:
                step(n)
            except Exception as error:  # noqa: BLE001 - every failure is reported by the test
                failures.append(f"{type(error).__name__}: {error}")
            n += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_rebuilding_read_models_while_serving_and_writing_answers_every_query_and_ends_equal_to_a_fresh_build(
    backend: str, clinic_with: Any, make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="medledger.projector")
    clinic: Clinic = clinic_with(raise_server_exceptions=False)
    admin = clinic.admin()
    doctors = [clinic.doctor(admin) for _ in range(2)]
    patients = [clinic.patient(full_name=f"Rebuild Patient {n}") for n in range(4)]
    for day in range(HISTORY_DAYS):
        for slot in range(40):
            start = clinic.at(30 + day, 0) + timedelta(minutes=30 * slot)
            book_appointment(clinic.medledger.services, BookAppointment(doctors[0].profile_id, patients[slot % 4].profile_id, start), OPERATOR)
    booked: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def write(n: int) -> None:
        patient: User = patients[n % len(patients)]
        doctor = doctors[n % len(doctors)]
        response = clinic.book(patient, doctor, clinic.at(2 + n // 40, 0) + timedelta(minutes=30 * (n % 40)))
        if response.status_code != 201:
            failures.append(f"booking: {response.status_code} {response.text}")
            return
        booked.append(response.json()["id"])
        if n % 3 == 0:
            cancelled = clinic.act(patient, booked[-1], "cancel", reason="changed plans")
            if cancelled.status_code != 200:
                failures.append(f"cancel: {cancelled.status_code} {cancelled.text}")

    def read(n: int) -> None:
        patient = patients[n % len(patients)]
        probes = [
            (patient, "/appointments", {}),
            (admin, "/appointments", {"doctor_id": doctors[n % 2].profile_id}),
            (admin, "/patients", {"name": "rebuild"}),
            (patient, "/doctors", {"specialty": "cardiology"}),
            (admin, "/accounts", {}),
            (admin, f"/patients/{patient.profile_id}/care-relationships", {}),
        ]
        if booked:
            probes.append((admin, f"/appointments/{booked[-1]}", {}))
        for user, path, params in probes:
            response = clinic.get(user, path, **params)
            if response.status_code not in (200, 404):
                failures.append(f"GET {path}: {response.status_code} {response.text[:300]}")

    rebuilder = bootstrap(clinic.medledger.settings)
    threads = [in_a_loop(stop, failures, write), in_a_loop(stop, failures, read), in_a_loop(stop, failures, read)]
    rebuilt: list[list[str]] = []
    try:
        for round, names in enumerate(REBUILDS, start=1):
            deadline = time.monotonic() + 30
            while len(booked) < WRITES_BETWEEN_REBUILDS * round and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                rebuilt.append(rebuilder.projection.rebuild(names))
            except Exception as error:  # noqa: BLE001 - reported below, with everything else
                failures.append(f"rebuild {names}: {type(error).__name__}: {error}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        rebuilder.close()

    system = clinic.medledger
    end = system.store.max_position()
    deadline = time.monotonic() + 60
    while set(projector_positions(system.write_engine).values()) != {end} and time.monotonic() < deadline:
        time.sleep(0.05)
    errors = [r.getMessage() for r in caplog.records if r.name == "medledger.projector" and r.levelno >= logging.WARNING]

    assert failures == []
    assert errors == []
    assert len(rebuilt) == len(REBUILDS) and len(booked) >= WRITES_BETWEEN_REBUILDS * len(REBUILDS)
    assert projector_positions(system.write_engine) == {name: end for name in PROJECTOR_NAMES}

    fresh = create_read_model_engine(make_settings(backend))
    try:
        reference = ProjectionWorker(system.store.app, fresh, all_projectors(), 0.01, rebuild_lock=lambda *names: nullcontext())
        reference.create_tables()
        reference.run_once()
        assert read_model_rows(system.write_engine) == read_model_rows(fresh)
    finally:
        fresh.dispose()
