"""Commands on a busy stream build on changes still on their way to the store; a failed base fails them too."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from domain.patients import Patient
from domain.shared import Cause, Role
from infrastructure.database import create_read_model_engine
from infrastructure.eventstore import Clinic, DependencyFailedError, EventStore

CAUSE = Cause("user-1", Role.ADMIN, "corr-1")


class GatedRecorder:
    """The real recorder, held at a gate so a test can line units up before they are recorded."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.gate = threading.Event()

    def insert_events(self, stored: Any, **kwargs: Any) -> Any:
        self.gate.wait(10)
        return self.recorder.insert_events(stored, **kwargs)


@pytest.fixture
def stores(backend: str, make_settings) -> Any:
    settings = make_settings(backend)
    create_read_model_engine(settings).dispose()  # creates the PostgreSQL schema, as bootstrap does
    ours = EventStore(Clinic(env=settings.event_store_env()), group_commit=True)
    theirs = EventStore(Clinic(env=settings.event_store_env()), group_commit=False, cache_size=0)
    yield ours, theirs
    ours.close()
    theirs.close()


def in_thread(work: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["position"] = work()
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def rename(store: EventStore, patient_id: Any, name: str) -> Any:
    copy = store.find(Patient, patient_id)
    copy.update_profile({"full_name": name}, CAUSE)
    return store.save(copy)


def wait_until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        threading.Event().wait(0.005)
    raise AssertionError("condition never held")


def test_a_unit_built_on_staged_changes_is_recorded_right_behind_them(stores: Any) -> None:
    ours, _ = stores
    patient = Patient(account_id="a", profile={"full_name": "A"}, cause=CAUSE.as_dict())
    ours.save(patient)
    gated = GatedRecorder(ours._committer.recorder)
    ours._committer.recorder = gated

    first, first_outcome = in_thread(lambda: rename(ours, patient.id, "B"))
    wait_until(lambda: ours._cache.get(patient.id).pending)
    second, second_outcome = in_thread(lambda: rename(ours, patient.id, "C"))
    wait_until(lambda: ours._cache.get(patient.id).aggregate.version == 3)
    gated.gate.set()
    first.join()
    second.join()

    assert "error" not in first_outcome and "error" not in second_outcome
    assert second_outcome["position"] > first_outcome["position"]
    versions = [e.originator_version for e in ours.app.events.get(originator_id=patient.id)]
    assert versions == [1, 2, 3]


def test_when_the_base_fails_the_unit_built_on_it_fails_and_leaves_no_gap(stores: Any) -> None:
    ours, theirs = stores
    patient = Patient(account_id="a", profile={"full_name": "A"}, cause=CAUSE.as_dict())
    ours.save(patient)
    ours.find(Patient, patient.id)  # cached at version 1
    elsewhere = theirs.find(Patient, patient.id)
    elsewhere.update_profile({"full_name": "Changed in another process"}, CAUSE)
    theirs.save(elsewhere)  # version 2 is now in the store; our cache still says 1
    gated = GatedRecorder(ours._committer.recorder)
    ours._committer.recorder = gated

    first, first_outcome = in_thread(lambda: rename(ours, patient.id, "B"))
    wait_until(lambda: ours._cache.get(patient.id).pending)
    second, second_outcome = in_thread(lambda: rename(ours, patient.id, "C"))
    wait_until(lambda: ours._cache.get(patient.id).aggregate.version == 3)
    gated.gate.set()
    first.join()
    second.join()

    assert isinstance(first_outcome.get("error"), IntegrityError)
    assert isinstance(second_outcome.get("error"), DependencyFailedError)
    versions = [e.originator_version for e in ours.app.events.get(originator_id=patient.id)]
    assert versions == [1, 2]
    reloaded = ours.find(Patient, patient.id)
    assert (reloaded.version, reloaded.profile["full_name"]) == (2, "Changed in another process")
