"""The external projector killed with SIGKILL mid-stream loses and repeats nothing: a restart ends where a rebuild does."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.appointments import CancelAppointment, cancel_appointment
from infrastructure.bootstrap import Medledger
from infrastructure.settings import Settings
from integration_helpers import (
    ADMIN,
    PROJECTOR_NAMES,
    book_many,
    midnight_after,
    open_doctor,
    open_patient,
    projector_positions,
    read_model_rows,
    running,
    wait_until,
)

BOOKING_DAYS, BOOKINGS_PER_DAY = 150, 10
BOOKED_TOPIC = "medledger:Appointment.Booked.v1"


def medledger_command() -> str:
    beside_python = Path(sys.executable).parent / "medledger"
    found = str(beside_python) if beside_python.exists() else shutil.which("medledger")
    assert found, "the medledger console script is not installed"
    return found


def environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
    env.update(
        MEDLEDGER_DATA_DIR=str(settings.data_dir),
        MEDLEDGER_JWT_SECRET=settings.jwt_secret.get_secret_value() if settings.jwt_secret else "",
        MEDLEDGER_LOG_SIGNING_KEY=settings.log_signing_key.get_secret_value() if settings.log_signing_key else "",
        MEDLEDGER_MASTER_KEY=settings.master_key.get_secret_value() if settings.master_key else "",
        MEDLEDGER_PASSWORD_HASHING=settings.password_hashing,
        MEDLEDGER_PROJECTOR=settings.projector,
    )
    if settings.database_url:
        env.update(MEDLEDGER_DATABASE_URL=settings.database_url, MEDLEDGER_DATABASE_SCHEMA=settings.database_schema or "")
    return env


class ProjectorProcess:
    """`medledger projector` as its own process, its output kept in a file for the failure message."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [medledger_command(), "projector"], env=environment(settings), stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> int:
        os.kill(self.process.pid, signal.SIGKILL)
        return self.process.wait(timeout=10)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def ensure_gone(self) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings(backend, projector="external"), clock) as system:
        yield system


def write_history(m: Medledger) -> None:
    svc = m.services
    doctor = open_doctor(svc)
    crowd = [open_patient(svc, f"Crowd {n}") for n in range(40)]
    booked = book_many(svc, doctor, crowd, midnight_after(svc.clock()), days=BOOKING_DAYS, per_day=BOOKINGS_PER_DAY)
    for appointment_id in booked[::50]:
        cancel_appointment(svc, CancelAppointment(appointment_id, "changed plans"), ADMIN)


def booked_up_to(m: Medledger, position: int) -> int:
    return len(m.store.app.recorder.select_notifications(start=1, stop=position, limit=100_000, topics=[BOOKED_TOPIC]))


def test_a_projector_killed_mid_stream_resumes_where_it_stopped_and_ends_where_a_rebuild_does(
    system: Medledger, tmp_path: Path
) -> None:
    write_history(system)
    end = system.store.max_position()
    assert end > 5000
    engine = system.write_engine
    log = tmp_path / "projector.log"

    first = ProjectorProcess(system.settings, log)
    try:
        # Early in the appointments stream, several batches remain: the kill cannot land after the last one.
        seen_mid_stream = wait_until(
            lambda: 0 < projector_positions(engine)["appointments"] <= 0.6 * end or not first.alive(),
            timeout=60,
            interval=0.002,
        )
        assert seen_mid_stream and first.alive(), f"never saw the projector mid-stream:\n{first.output()}"
        assert first.kill() == -signal.SIGKILL
    finally:
        first.ensure_gone()

    at_death = projector_positions(engine)
    assert 0 < at_death["appointments"] < end, "the projector was not killed mid-stream"
    assert len(read_model_rows(engine)["appointments"]) == booked_up_to(system, at_death["appointments"])

    second = ProjectorProcess(system.settings, log)
    try:
        caught_up = wait_until(lambda: set(projector_positions(engine).values()) == {end}, timeout=90, interval=0.02)
        assert caught_up and second.alive(), f"positions {projector_positions(engine)}, end {end}:\n{second.output()}"
        assert second.stop() == 0, second.output()
    finally:
        second.ensure_gone()
    followed = read_model_rows(engine)
    assert len(followed["appointments"]) == booked_up_to(system, end) == BOOKING_DAYS * BOOKINGS_PER_DAY

    rebuild = subprocess.run(
        [medledger_command(), "rebuild"], env=environment(system.settings), capture_output=True, text=True, timeout=120
    )

    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    assert projector_positions(engine) == {name: end for name in PROJECTOR_NAMES}
    assert read_model_rows(engine) == followed
