"""Group commit under many threads: distinct positions, one winner per slot, no lost or half-saved command."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from commands.appointments import BookAppointment, book_appointment
from commands.base import Outcome
from domain.appointment import Appointment
from domain.doctor_calendar import DoctorCalendar, SlotTakenError
from domain.patient_agenda import PatientAgenda
from domain.patients import Patient
from domain.shared import Cause, Role
from infrastructure.bootstrap import Medledger
from integration_helpers import midnight_after, open_doctor, open_patient, running

CAUSE = Cause(user_id="user-9", role=Role.ADMIN, correlation_id="corr-9")
R = TypeVar("R")


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings(backend, group_commit=True), clock) as system:
        yield system


def all_at_once(count: int, work: Callable[[int], R]) -> list[R | BaseException]:
    """Runs work(0..count-1) in as many threads released together; answers each result or the error it raised."""
    barrier = threading.Barrier(count)

    def attempt(index: int) -> R | BaseException:
        barrier.wait()
        try:
            return work(index)
        except Exception as error:  # noqa: BLE001 - the test judges every outcome
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(attempt, range(count)))


def new_patient(index: int) -> Patient:
    patient = Patient(account_id=str(uuid4()), profile={"full_name": f"Patient {index}"}, cause=CAUSE.as_dict())
    patient.update_profile({"phone": f"+44 {index}"}, CAUSE)
    return patient


def test_sixteen_threads_saving_new_aggregates_get_distinct_positions_of_their_last_events(system: Medledger) -> None:
    store = system.store
    saved: dict[int, tuple[Patient, int]] = {}
    lock = threading.Lock()

    def save_fifty(thread: int) -> None:
        for n in range(50):
            patient = new_patient(thread * 50 + n)
            position = store.save(patient)
            with lock:
                saved[thread * 50 + n] = (patient, position)

    results = all_at_once(16, save_fifty)

    assert [r for r in results if r is not None] == []
    positions = sorted(position for _, position in saved.values())
    assert len(positions) == 800
    assert positions == list(range(2, 1601, 2))
    assert store.max_position() == 1600
    log = store.app.recorder.select_notifications(start=1, limit=2000)
    last_event_of = {n.originator_id: n.id for n in log}
    assert {p.id: position for p, position in saved.values()} == last_event_of


def test_a_stale_save_among_concurrent_saves_fails_alone(system: Medledger) -> None:
    store = system.store
    victim = new_patient(0)
    store.save(victim)
    stale = store.find(Patient, victim.id)
    fresh = store.find(Patient, victim.id)
    fresh.update_profile({"phone": "+44 fresh"}, CAUSE)
    store.save(fresh)
    stale.update_profile({"phone": "+44 stale"}, CAUSE)
    dragged_along = new_patient(1)
    bystanders = [new_patient(n) for n in range(2, 32)]

    def save(index: int) -> int | None:
        return store.save(dragged_along, stale) if index == 0 else store.save(bystanders[index - 1])

    results = all_at_once(31, save)

    assert isinstance(results[0], IntegrityError)
    assert [r for r in results[1:] if not isinstance(r, int)] == []
    assert store.find(Patient, dragged_along.id) is None
    assert all(store.find(Patient, p.id) is not None for p in bystanders)
    assert store.find(Patient, victim.id).profile["phone"] == "+44 fresh"


def test_thirty_two_patients_racing_for_one_slot_leave_one_booking_and_thirty_one_slot_taken(
    system: Medledger, clock
) -> None:
    svc = system.services
    doctor = open_doctor(svc)
    patients = [open_patient(svc, f"Racer {n}") for n in range(32)]
    slot = midnight_after(clock()) + timedelta(hours=10)

    def book(index: int) -> Outcome:
        patient = patients[index]
        return book_appointment(svc, BookAppointment(doctor.profile_id, patient.profile_id, slot), patient.actor)

    results = all_at_once(32, book)

    winners = [r for r in results if isinstance(r, Outcome)]
    assert len(winners) == 1 and winners[0].created
    assert [type(r).__name__ for r in results if not isinstance(r, Outcome | SlotTakenError)] == []
    assert sum(isinstance(r, SlotTakenError) for r in results) == 31
    calendar = svc.store.find(DoctorCalendar, DoctorCalendar.create_id(doctor.profile_id, slot.date()))
    assert list(calendar.bookings) == [winners[0].id]
    winner = svc.store.find(Appointment, winners[0].id)
    holders = [p for p in patients if svc.store.find(PatientAgenda, PatientAgenda.create_id(p.profile_id, slot.date()))]
    assert [p.profile_id for p in holders] == [winner.patient_id]
    log = svc.store.app.recorder.select_notifications(start=1, limit=10_000, topics=["medledger:Appointment.Booked.v1"])
    assert [n.originator_id for n in log] == [winner.id]




@pytest.mark.parametrize(
    "same_day",
    [True, False],
    ids=["one-calendar-day", "a-day-each"],
)
def test_thirty_two_patients_booking_distinct_slots_at_once_all_succeed(system: Medledger, clock, same_day: bool) -> None:
    svc = system.services
    doctor = open_doctor(svc)
    patients = [open_patient(svc, f"Booker {n}") for n in range(32)]
    first = midnight_after(clock())
    slots = [first + (timedelta(minutes=30 * n) if same_day else timedelta(days=n, hours=10)) for n in range(32)]

    def book(index: int) -> Any:
        patient = patients[index]
        return book_appointment(svc, BookAppointment(doctor.profile_id, patient.profile_id, slots[index]), patient.actor)

    results = all_at_once(32, book)

    assert [type(r).__name__ for r in results if not isinstance(r, Outcome)] == []
    assert all(r.created for r in results)
    booked = {(a.patient_id, a.start) for a in (svc.store.find(Appointment, r.id) for r in results)}
    assert booked == {(p.profile_id, s) for p, s in zip(patients, slots)}


def test_commands_that_lost_a_race_on_a_stream_take_turns_instead_of_failing_round_after_round(
    system: Medledger, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = system.services
    doctor = open_doctor(svc)
    patients = [open_patient(svc, f"Turn taker {n}") for n in range(32)]
    first = midnight_after(clock())
    lost: list[IntegrityError] = []
    save = svc.store.save

    def counted_save(*aggregates: Any) -> int | None:
        try:
            return save(*aggregates)
        except IntegrityError as error:
            lost.append(error)
            raise

    monkeypatch.setattr(svc.store, "save", counted_save)

    def book(index: int) -> Any:
        patient = patients[index]
        start = first + timedelta(minutes=30 * index)
        return book_appointment(svc, BookAppointment(doctor.profile_id, patient.profile_id, start), patient.actor)

    results = all_at_once(32, book)

    assert [type(r).__name__ for r in results if not isinstance(r, Outcome)] == []
    assert len(lost) <= 2 * len(patients), f"{len(lost)} saves lost a race: contenders kept deciding on the same version"
