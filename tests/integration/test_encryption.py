"""Encryption at rest on SQLite and PostgreSQL: a patient's events are sealed with their own data key, an erasure
destroys only that key (seen by every process, every read model, a rebuild and `verify`), and a new master key
re-wraps the data keys without touching a single stored event."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from sqlalchemy import select
from typer.testing import CliRunner

from commands import care, erasure
from domain.accounts import Account
from domain.care import Kind, PatientCare
from domain.erasure import LegalBasis
from domain.patients import Patient
from domain.shared import Role
from infrastructure.bootstrap import Medledger
from infrastructure.cli import cli
from infrastructure.encryption import MAGIC, ErasedError, TamperedStateError, patient_keys, sealed_by
from infrastructure.settings import InvalidSecretError, MissingSecretError, Settings
from infrastructure.transparency import verify_store
from integration_helpers import ADMIN, Member, environment, open_doctor, open_patient, read_model_rows, running, wait_until
from commands.base import Actor

pytestmark = pytest.mark.timeout(120)

SECOND_ADMIN = Actor(account_id="second-admin-of-the-tests", role=Role.ADMIN, profile_id=None, correlation_id="integration-admin-2")
NEW_MASTER_KEY = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="  # bytes 64..95


def stored(system: Medledger) -> list[Any]:
    return list(system.store.recorder.stored_rows(None, 100_000))


def treated(system: Medledger, doctor: Member, name: str) -> Member:
    patient = open_patient(system.services, name)
    cmd = care.StartRelationship(patient.profile_id, doctor.profile_id, Kind.PRIMARY, "registered with the practice", None, None)
    care.start_relationship(system.services, cmd, ADMIN)
    return patient


def erase(system: Medledger, patient: Member) -> None:
    erasure.request_erasure(
        system.services, erasure.RequestErasure(patient.profile_id, LegalBasis.CONSENT_WITHDRAWN, "withdrawn in writing"), ADMIN
    )
    erasure.approve_erasure(system.services, erasure.DecideErasure(patient.profile_id, "no duty to keep applies"), SECOND_ADMIN)


def project(system: Medledger) -> None:
    while system.projection.run_once():
        pass
    for follower in system.projection.followers:
        follower()


def test_a_patients_events_are_sealed_with_their_own_key_and_nobodys_records_stay_plain(backend: str, make_settings, clock) -> None:
    with running(make_settings(backend, pool_size=2), clock) as system:
        doctor = open_doctor(system.services)
        patient = treated(system, doctor, "Ada Lovelace")

        rows = stored(system)

    sealed = {str(row.originator_id): sealed_by(row.state) for row in rows if row.state.startswith(MAGIC)}
    plain = [row for row in rows if not row.state.startswith(MAGIC)]
    care_id = str(PatientCare.create_id(patient.profile_id))
    assert sealed == {patient.profile_id: patient.profile_id, patient.account_id: patient.profile_id, care_id: patient.profile_id}
    assert not any(b"Lovelace" in bytes(row.state) or patient.email.encode() in bytes(row.state) for row in rows)
    assert {str(row.originator_id) for row in plain} >= {doctor.profile_id, doctor.account_id}
    assert all(bytes(row.state).startswith(b"{") for row in plain)


def test_a_sealed_state_moved_onto_another_event_does_not_open(backend: str, make_settings, clock) -> None:
    with running(make_settings(backend, pool_size=2), clock) as system:
        patient = open_patient(system.services)
        first, *_ = (row for row in stored(system) if str(row.originator_id) == patient.profile_id)
        moved = StoredEvent(UUID(patient.account_id), first.originator_version, first.topic, bytes(first.state))

        with pytest.raises(TamperedStateError):
            system.store.app.mapper.to_domain_event(moved)
        assert system.store.app.mapper.to_domain_event(StoredEvent(first.originator_id, 1, first.topic, bytes(first.state)))


def test_an_erasure_destroys_only_that_patients_key_and_every_process_sees_it(backend: str, make_settings, clock) -> None:
    settings = make_settings(backend, pool_size=2, keyring_recheck_seconds=0.05)
    with running(settings, clock) as system, running(settings, clock) as other_process:
        doctor = open_doctor(system.services)
        gone, kept = treated(system, doctor, "Ada Lovelace"), treated(system, doctor, "Mary Somerville")
        assert other_process.store.find(Patient, gone.profile_id) is not None  # now held in the other process's memory

        erase(system, gone)

        assert system.store.find(Patient, gone.profile_id) is None
        assert system.store.find(Account, gone.account_id) is None
        assert wait_until(lambda: other_process.store.find(Patient, gone.profile_id) is None, timeout=5)
        assert other_process.store.find(Patient, kept.profile_id).profile["full_name"] == "Mary Somerville"
        with pytest.raises(ErasedError):
            other_process.history.state_at(UUID(gone.profile_id), 1)
        with system.write_engine.connect() as conn:
            keys = {row.patient_id: row.wrapped for row in conn.execute(select(patient_keys))}
        assert keys[gone.profile_id] is None and keys[kept.profile_id] is not None


def test_read_models_drop_an_erased_patient_and_a_rebuild_projects_nothing_of_them(backend: str, make_settings, clock) -> None:
    with running(make_settings(backend, pool_size=2), clock) as system:
        doctor = open_doctor(system.services)
        gone, kept = treated(system, doctor, "Ada Lovelace"), treated(system, doctor, "Mary Somerville")
        project(system)

        erase(system, gone)
        project(system)
        after_erasure = read_model_rows(system.write_engine)
        system.projection.rebuild()
        rebuilt = read_model_rows(system.write_engine)

    for rows in (after_erasure, rebuilt):
        everything = str({table: rows[table] for table in rows if table not in {"record_reads", "erasure_requests"}})
        assert gone.profile_id not in everything and "Lovelace" not in everything
        assert kept.profile_id in str(rows["patients"]) and "Somerville" in str(rows["patients"])
    assert rebuilt == after_erasure


def test_an_approval_whose_process_stopped_before_the_key_went_is_finished_by_the_projector(backend: str, make_settings, clock) -> None:
    class Stopped:
        def erase(self, patient_id: str) -> None:
            """The process stopped right after recording the approval."""

        def erased(self, patient_id: str) -> bool:
            return False

    with running(make_settings(backend, pool_size=2), clock) as system:
        patient = open_patient(system.services)
        real = system.services
        system.services = dataclasses.replace(real, eraser=Stopped())
        erase(system, patient)
        assert real.store.find(Patient, patient.profile_id) is not None

        project(system)

        assert real.eraser.erased(patient.profile_id)
        assert real.store.find(Patient, patient.profile_id) is None


def test_verify_still_passes_after_an_erasure(backend: str, make_settings, clock) -> None:
    with running(make_settings(backend, pool_size=2), clock) as system:
        doctor = open_doctor(system.services)
        gone = treated(system, doctor, "Ada Lovelace")
        treated(system, doctor, "Mary Somerville")
        project(system)
        before = stored(system)

        erase(system, gone)
        project(system)
        report = verify_store(system.transparency.read_events, system.write_engine, system.transparency.public_key)

        assert report.clean and report.events == len(stored(system)) > len(before)
        assert stored(system)[: len(before)] == before


def test_a_new_master_key_rewraps_the_data_keys_without_touching_events(backend: str, make_settings, clock) -> None:
    settings = make_settings(backend, pool_size=2)
    with running(settings, clock) as system:
        patients = [open_patient(system.services, f"Patient {n}") for n in range(3)]
        before = stored(system)
    old_key = settings.master_key.get_secret_value()

    result = CliRunner().invoke(
        cli, ["rotate-master-key"], env={**environment(settings), "MEDLEDGER_MASTER_KEY": NEW_MASTER_KEY, "MEDLEDGER_PREVIOUS_MASTER_KEYS": old_key}
    )
    assert result.exit_code == 0, result.output
    assert "re-wrapped 3 data keys" in result.output

    rotated = Settings(**{**settings.model_dump(), "master_key": NEW_MASTER_KEY, "previous_master_keys": None})
    with running(rotated, clock) as system:
        assert stored(system) == before
        assert [system.store.find(Patient, p.profile_id).profile["full_name"] for p in patients] == ["Patient 0", "Patient 1", "Patient 2"]
        assert set(system.store.app.keyring.counts()) == {system.store.app.keyring.master.current_id}


def test_without_a_master_key_postgres_refuses_to_start_and_the_embedded_mode_makes_one(make_settings, capsys) -> None:
    with pytest.raises(MissingSecretError, match="MEDLEDGER_MASTER_KEY"):
        make_settings("postgres", master_key=None).master_keys  # noqa: B018

    embedded = make_settings("sqlite", master_key=None)
    keys = embedded.master_keys
    assert "WARNING: MEDLEDGER_MASTER_KEY is not set" in capsys.readouterr().err
    assert Settings(data_dir=embedded.data_dir).master_keys.current == keys.current
    assert (embedded.data_dir / "master-key").stat().st_mode & 0o077 == 0
    for wrong in ("not a key", "AAEC"):
        with pytest.raises(InvalidSecretError, match="MEDLEDGER_MASTER_KEY"):
            make_settings("sqlite", master_key=wrong).master_keys  # noqa: B018
