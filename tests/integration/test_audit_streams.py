"""Audit reads on both stores: states at any version from checkpoints, events recorded after a first read, and a
patient's streams found from the store itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID

import pytest
from integration_helpers import ADMIN, midnight_after, open_doctor, open_patient

from commands import profiles
from commands.appointments import BookAppointment, book_appointment
from commands.audit import patient_records, state_of
from domain.care import care_id
from domain.patients import Patient
from infrastructure.bootstrap import Medledger, bootstrap
from infrastructure.history import StreamHistory


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    medledger = bootstrap(make_settings(backend, pool_size=2), clock=clock)
    yield medledger
    medledger.close()


def replayed(events: list, version: int) -> dict:
    record = None
    for event in events[:version]:
        record = event.mutate(record)
    return state_of(record)


def test_a_state_at_any_version_equals_a_replay_of_the_events_up_to_it(system: Medledger) -> None:
    svc = system.services
    patient = open_patient(svc)
    for n in range(70):
        profiles.update_patient_profile(svc, profiles.UpdatePatientProfile(patient.profile_id, {"phone": f"+44 20 7946 {n:04d}"}), ADMIN)
    history = StreamHistory(system.store.app, checkpoint=8)
    patient_id = UUID(patient.profile_id)
    events = list(history.events(patient_id))
    assert len(events) == 71

    for version in (71, 1, 7, 8, 9, 16, 17, 40, 64, 70):
        assert state_of(history.state_at(patient_id, version)) == replayed(events, version), version
    assert state_of(history.state_at(patient_id, 40))["profile"]["phone"] == "+44 20 7946 0038"
    assert history.state_at(patient_id, 0) is None


def test_events_recorded_after_a_first_read_are_read_too(system: Medledger) -> None:
    svc = system.services
    patient = open_patient(svc)
    history = StreamHistory(system.store.app, checkpoint=2)
    patient_id = UUID(patient.profile_id)
    assert len(history.events(patient_id)) == 1
    history.state_at(patient_id, 1)

    for n in range(3):
        profiles.update_patient_profile(svc, profiles.UpdatePatientProfile(patient.profile_id, {"phone": f"+44 1 {n}"}), ADMIN)

    assert len(history.events(patient_id)) == 4
    latest = system.store.find(Patient, patient.profile_id)
    assert latest is not None
    assert state_of(history.state_at(patient_id, 4)) == state_of(latest)


def test_a_patients_records_are_found_from_the_store_and_no_one_elses(system: Medledger, clock) -> None:
    svc = system.services
    doctor = open_doctor(svc)
    patient, other = open_patient(svc, "Pat One"), open_patient(svc, "Pat Two")
    start = midnight_after(clock.now, days=2)
    mine = book_appointment(svc, BookAppointment(doctor.profile_id, patient.profile_id, start), ADMIN).id
    theirs = book_appointment(svc, BookAppointment(doctor.profile_id, other.profile_id, start + timedelta(hours=1)), ADMIN).id
    history = StreamHistory(system.store.app)

    found = {str(uid) for uid in patient_records(history, patient.profile_id)}

    assert {patient.profile_id, patient.account_id, str(care_id(patient.profile_id)), mine} <= found
    assert not {other.profile_id, other.account_id, str(care_id(other.profile_id)), theirs} & found
    assert doctor.account_id not in found


def test_checkpoints_beyond_the_budget_evict_the_least_recently_read_streams(system: Medledger) -> None:
    svc = system.services
    first, second = open_patient(svc, "Pat First"), open_patient(svc, "Pat Second")
    for patient in (first, second):
        for n in range(4):
            profiles.update_patient_profile(svc, profiles.UpdatePatientProfile(patient.profile_id, {"phone": f"+44 2 {n}"}), ADMIN)
    history = StreamHistory(system.store.app, checkpoint=2, budget=1)
    first_id, second_id = UUID(first.profile_id), UUID(second.profile_id)
    history.state_at(first_id, 5)

    history.state_at(second_id, 5)

    assert list(history._streams) == [second_id]
    assert state_of(history.state_at(first_id, 5)) == state_of(system.store.find(Patient, first.profile_id))


def test_many_streams_are_read_at_once_each_from_where_this_process_left_it(system: Medledger) -> None:
    svc = system.services
    first, second = open_patient(svc, "Pat First"), open_patient(svc, "Pat Second")
    history = StreamHistory(system.store.app)
    first_id, second_id, unknown = UUID(first.profile_id), UUID(second.profile_id), UUID(int=0)
    assert len(history.events(first_id)) == 1
    profiles.update_patient_profile(svc, profiles.UpdatePatientProfile(first.profile_id, {"phone": "+44 3 1"}), ADMIN)
    profiles.update_patient_profile(svc, profiles.UpdatePatientProfile(second.profile_id, {"phone": "+44 3 2"}), ADMIN)

    found = history.events_of([first_id, second_id, unknown, first_id])

    assert {uid: [e.originator_version for e in events] for uid, events in found.items()} == {first_id: [1, 2], second_id: [1, 2], unknown: []}
    assert found[first_id] == history.events(first_id) and found[second_id][1].changes == {"phone": "+44 3 2"}
