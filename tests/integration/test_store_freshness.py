"""Decisions on the latest recorded version: what one worker saved, another decides on at once; a conflicting
unit in a group commit fails alone, and the rest of its batch is recorded in one more transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from commands import profiles
from commands.appointments import BookAppointment, book_appointment
from domain.doctor_calendar import DoctorCalendar
from domain.patients import Patient
from domain.shared import Cause, Role
from infrastructure.bootstrap import Medledger
from integration_helpers import ADMIN, AROUND_THE_CLOCK, midnight_after, open_doctor, open_patient, running

CAUSE = Cause(user_id="user-5", role=Role.ADMIN, correlation_id="corr-5")


@pytest.fixture
def workers(backend: str, make_settings, clock) -> Iterator[tuple[Medledger, Medledger]]:
    """Two processes' worth of the system (each its own cache and committer) on one event store."""
    settings = make_settings(backend)
    with running(settings, clock) as first, running(settings, clock) as second:
        yield first, second


def test_availability_saved_by_one_worker_is_used_by_the_other_at_once(workers: tuple[Medledger, Medledger], clock) -> None:
    first, second = workers
    doctor = open_doctor(first.services, availability=None)
    patient = open_patient(first.services)
    start = midnight_after(clock.now)
    with pytest.raises(Exception, match="not published any availability"):
        book_appointment(first.services, BookAppointment(doctor.profile_id, patient.profile_id, start), ADMIN)

    profiles.set_availability(second.services, profiles.SetAvailability(doctor.profile_id, AROUND_THE_CLOCK), ADMIN)

    booked = book_appointment(first.services, BookAppointment(doctor.profile_id, patient.profile_id, start), ADMIN)
    assert booked.created


def test_a_worker_reads_the_latest_version_another_worker_recorded(workers: tuple[Medledger, Medledger], clock) -> None:
    first, second = workers
    doctor = open_doctor(first.services)
    patients = [open_patient(first.services) for _ in range(2)]
    start = midnight_after(clock.now)
    book_appointment(first.services, BookAppointment(doctor.profile_id, patients[0].profile_id, start), ADMIN)
    calendar_id = DoctorCalendar.create_id(doctor.profile_id, start.date())
    assert first.store.find(DoctorCalendar, calendar_id).version == 2

    later = start + timedelta(minutes=AROUND_THE_CLOCK.slot_minutes)
    book_appointment(second.services, BookAppointment(doctor.profile_id, patients[1].profile_id, later), ADMIN)

    calendar = first.store.find(DoctorCalendar, calendar_id)
    assert calendar.version == 3
    assert len(calendar.bookings) == 2


def new_patient() -> Patient:
    return Patient(account_id=str(uuid4()), profile={"full_name": "Batch Patient"}, cause=CAUSE.as_dict())


def test_a_stale_unit_fails_alone_and_its_batch_is_recorded_in_one_more_transaction(workers: tuple[Medledger, Medledger]) -> None:
    first, second = workers
    store = first.store
    recorder = store.app.recorder
    stale = new_patient()
    store.save(stale)
    stale = store.find(Patient, stale.id)
    moved = second.store.find(Patient, stale.id)
    moved.update_profile({"phone": "+44 1"}, CAUSE)
    second.store.save(moved)
    stale.update_profile({"phone": "+44 2"}, CAUSE)

    calls: list[int] = []
    gate = threading.Event()
    insert = recorder.insert_events

    def counted(stored: Any, **kwargs: Any) -> Any:
        calls.append(len(stored))
        if len(calls) == 1:
            gate.wait(10)
        return insert(stored, **kwargs)

    recorder.insert_events = counted  # type: ignore[method-assign]
    outcomes: dict[str, Any] = {}

    def save(name: str, aggregate: Patient) -> None:
        try:
            outcomes[name] = store.save(aggregate)
        except IntegrityError as error:
            outcomes[name] = error

    blocker = threading.Thread(target=save, args=("blocker", new_patient()))
    blocker.start()
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.005)
    fresh = [threading.Thread(target=save, args=(f"fresh-{n}", new_patient())) for n in range(6)]
    late = threading.Thread(target=save, args=("stale", stale))
    for thread in [*fresh, late]:
        thread.start()
    time.sleep(0.3)
    gate.set()
    for thread in [blocker, *fresh, late]:
        thread.join(20)

    assert isinstance(outcomes["stale"], IntegrityError)
    assert all(isinstance(outcomes[f"fresh-{n}"], int) for n in range(6)), outcomes
    assert isinstance(outcomes["blocker"], int)
    assert len(calls) == 3, f"expected the blocker, the batch and one retry without the stale unit; got {calls}"
    assert store.find(Patient, stale.id).profile["phone"] == "+44 1"
