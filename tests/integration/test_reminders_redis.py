"""The reminder worker against a real Redis (make_settings(use_redis=True) fails in CI without it): each due dose goes to {prefix}:reminders exactly once, none early, none for cancelled courses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from commands import prescriptions as p
from domain.prescription import Frequency, Prescription
from infrastructure.bootstrap import Medledger, bootstrap
from infrastructure.reminders import stream_name
from integration_helpers import ADMIN, running
from prescription_helpers import issued, item


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings(backend, use_redis=True, reminder_lookback_minutes=60), clock) as system:
        yield system


def sent(m: Medledger) -> list[dict[str, str]]:
    assert m.redis is not None
    entries = m.redis.xrange(stream_name(m.settings.redis_prefix))
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


def move_to(clock, moment: datetime) -> None:
    clock.advance(seconds=(moment - clock.now).total_seconds())


def test_each_due_dose_is_sent_once_and_none_before_it_is_due(system: Medledger, clock) -> None:
    written = issued(system, clock, item("Paracetamol", Frequency.TWICE_DAILY, duration_days=2))
    system.projection.run_once()
    worker = system.reminders
    assert worker is not None
    prescription = system.store.find(Prescription, written.prescription_id)
    issued_at = prescription.issued_at
    first_due = datetime.combine(issued_at.date(), datetime.min.time(), tzinfo=issued_at.tzinfo) + timedelta(hours=20)

    move_to(clock, first_due - timedelta(minutes=1))
    assert worker.run_once() == 0
    move_to(clock, first_due + timedelta(minutes=5))
    assert worker.run_once() == 1
    assert worker.run_once() == 0

    [reminder] = sent(system)
    assert reminder["type"] == "medication_reminder"
    assert (reminder["patient_id"], reminder["prescription_id"], reminder["item_id"]) == (
        written.patient.profile_id, written.prescription_id, "paracetamol"
    )
    assert datetime.fromisoformat(reminder["due_at"]) == first_due
    assert reminder["medication"] == "Paracetamol" and reminder["dose"] == "1 tablet"


def test_two_workers_racing_send_each_dose_once(system: Medledger, clock, make_settings, backend) -> None:
    written = issued(system, clock, item("Paracetamol", Frequency.FOUR_TIMES_DAILY, duration_days=1))
    system.projection.run_once()
    issued_at = system.store.find(Prescription, written.prescription_id).issued_at
    move_to(clock, datetime.combine(issued_at.date(), datetime.min.time(), tzinfo=issued_at.tzinfo) + timedelta(hours=20, minutes=1))
    worker = system.reminders
    assert worker is not None
    twin = type(worker)(worker.engine, worker.client, worker.prefix, worker.clock, 1.0, timedelta(hours=24))
    total = worker.run_once() + twin.run_once() + worker.run_once()
    assert total == len(sent(system))
    assert len({(r["item_id"], r["due_at"]) for r in sent(system)}) == len(sent(system)) > 0


def test_a_cancelled_course_sends_nothing_more(system: Medledger, clock) -> None:
    written = issued(system, clock, item("Paracetamol", Frequency.ONCE_DAILY, duration_days=5))
    p.cancel_prescription(system.services, p.CancelPrescription(written.prescription_id, "Stopped by the doctor."), ADMIN)
    system.projection.run_once()
    clock.advance(days=2)
    assert system.reminders is not None
    assert system.reminders.run_once() == 0
    assert sent(system) == []


def test_the_worker_runs_beside_the_projector(backend: str, make_settings, clock) -> None:
    system = bootstrap(make_settings(backend, use_redis=True, reminder_poll_seconds=0.05), clock=clock)
    try:
        written = issued(system, clock, item("Paracetamol", Frequency.EVERY_6_HOURS, duration_days=1))
        issued_at = system.store.find(Prescription, written.prescription_id).issued_at
        move_to(clock, datetime.combine(issued_at.date(), datetime.min.time(), tzinfo=issued_at.tzinfo) + timedelta(hours=18, minutes=1))
        system.start_projector()
        deadline = datetime.now() + timedelta(seconds=10)
        while not sent(system) and datetime.now() < deadline:
            time.sleep(0.05)
        assert [r["prescription_id"] for r in sent(system)][:1] == [written.prescription_id]
    finally:
        system.close()


def test_a_look_back_shorter_than_the_poll_still_sends_a_dose_that_fell_between_polls(backend: str, make_settings, clock) -> None:
    settings = make_settings(backend, use_redis=True, reminder_lookback_minutes=0, reminder_poll_seconds=30)
    with running(settings, clock) as system:
        written = issued(system, clock, item("Paracetamol", Frequency.TWICE_DAILY, duration_days=2))
        system.projection.run_once()
        issued_at = system.store.find(Prescription, written.prescription_id).issued_at
        first_due = datetime.combine(issued_at.date(), datetime.min.time(), tzinfo=issued_at.tzinfo) + timedelta(hours=20)
        move_to(clock, first_due + timedelta(seconds=20))
        assert system.reminders is not None and system.reminders.run_once() == 1


def test_an_erased_patients_queued_reminders_are_deleted_and_no_more_are_sent(system: Medledger, clock) -> None:
    from commands import erasure
    from commands.base import Actor
    from domain.erasure import LegalBasis
    from domain.shared import Role

    theirs = issued(system, clock, item("Paracetamol", Frequency.FOUR_TIMES_DAILY, duration_days=1))
    others = issued(system, clock, item("Ibuprofen", Frequency.FOUR_TIMES_DAILY, duration_days=1))
    system.projection.run_once()
    issued_at = system.store.find(Prescription, theirs.prescription_id).issued_at
    move_to(clock, datetime.combine(issued_at.date(), datetime.min.time(), tzinfo=issued_at.tzinfo) + timedelta(hours=20, minutes=1))
    worker = system.reminders
    assert worker is not None and worker.run_once() > 0
    assert theirs.patient.profile_id in {r["patient_id"] for r in sent(system)}

    patient = theirs.patient.profile_id
    erasure.request_erasure(system.services, erasure.RequestErasure(patient, LegalBasis.CONSENT_WITHDRAWN, "withdrawn in writing"), ADMIN)
    second = Actor("second-admin", Role.ADMIN, None, "corr-second")
    erasure.approve_erasure(system.services, erasure.DecideErasure(patient, "no duty to keep applies"), second)
    while system.projection.run_once():
        pass
    for _ in range(6):
        move_to(clock, clock.now + timedelta(hours=4))
        worker.run_once()

    assert {r["patient_id"] for r in sent(system)} == {others.patient.profile_id}
