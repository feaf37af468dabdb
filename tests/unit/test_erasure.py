"""The erasure decision: given a patient's erasure stream, when an admin requests, approves or rejects, then the
events it records or the clear refusal; and the sealing of a patient's events (keys, places, whose data)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import StoredEvent

from domain.accounts import Account
from domain.appointment import Appointment
from domain.doctor_calendar import DoctorCalendar
from domain.erasure import ErasureConflictError, ErasureStatus, LegalBasis, PatientErasure, SelfApprovalError
from domain.patients import Patient
from domain.read_log import ReadRecord
from domain.shared import Cause, InvalidInputError, Role
from infrastructure.eventstore import Clinic
from infrastructure.encryption import MasterKeys, PatientMapper, TamperedStateError, data_subject, sealed_by
from tests.unit.domain_helpers import emitted, given, names, refused, replayed

NOW = datetime(2030, 1, 7, 9, 30, tzinfo=timezone.utc)
FIRST, SECOND = Cause("admin-1", Role.ADMIN, "corr-1"), Cause("admin-2", Role.ADMIN, "corr-2")
PATIENT = str(uuid4())
WHY = "The patient withdrew consent in writing."


def opened() -> PatientErasure:
    return given(PatientErasure(PATIENT, FIRST.as_dict()))


def requested() -> PatientErasure:
    erasure = opened()
    erasure.request("request-1", LegalBasis.CONSENT_WITHDRAWN, WHY, NOW, FIRST)
    return given(erasure)


def test_a_request_records_its_legal_ground_reason_and_requester_and_waits() -> None:
    erasure = opened()

    erasure.request("request-1", LegalBasis.NO_LONGER_NECESSARY, f"  {WHY}  ", NOW, FIRST)

    (event,) = erasure.collect_events()
    assert (event.legal_basis, event.reason, event.patient_id, event.cause["user_id"]) == ("no_longer_necessary", WHY, PATIENT, "admin-1")
    assert erasure.status == ErasureStatus.PENDING and erasure.pending.requested_by == "admin-1"


def test_the_requester_cannot_approve_their_own_request() -> None:
    erasure = requested()

    with refused(SelfApprovalError, erasure) as error:
        erasure.approve("No retention duty applies here.", NOW, FIRST)
    assert error.value.details["current"]["status"] == "pending"


def test_a_second_admin_approves_and_the_patient_is_erased_for_good() -> None:
    erasure = requested()

    erasure.approve("No retention duty applies here.", NOW + timedelta(hours=1), SECOND)

    assert emitted(erasure) == ["Approved"]
    assert erasure.status == ErasureStatus.ERASED
    (decided,) = erasure.requests
    assert (decided.decision, decided.decided_by, decided.decided_at) == ("approved", "admin-2", NOW + timedelta(hours=1))
    with refused(ErasureConflictError, erasure):
        erasure.request("request-2", LegalBasis.OBJECTION, WHY, NOW, FIRST)
    with refused(ErasureConflictError, erasure):
        erasure.reject("Records must be kept for ten years.", NOW, SECOND)


def test_one_request_waits_at_a_time_and_a_rejection_opens_the_way_for_another() -> None:
    erasure = requested()
    with refused(ErasureConflictError, erasure):
        erasure.request("request-2", LegalBasis.OBJECTION, WHY, NOW, SECOND)

    erasure.reject("Records must be kept for ten years.", NOW, FIRST)
    erasure.request("request-2", LegalBasis.OBJECTION, WHY, NOW, SECOND)

    assert names(erasure.collect_events()) == ["Rejected", "Requested"]
    assert [(r.request_id, r.decision) for r in erasure.requests] == [("request-1", "rejected"), ("request-2", None)]


def test_nothing_to_decide_without_a_waiting_request_and_reasons_are_required() -> None:
    erasure = opened()
    with refused(ErasureConflictError, erasure):
        erasure.approve("No retention duty applies here.", NOW, SECOND)
    with refused(InvalidInputError, erasure):
        erasure.request("request-1", LegalBasis.OBJECTION, "short", NOW, FIRST)
    erasure = requested()
    with refused(InvalidInputError, erasure):
        erasure.approve("   ok   ", NOW, SECOND)


def test_replaying_the_stream_gives_the_same_decisions() -> None:
    erasure = PatientErasure(PATIENT, FIRST.as_dict())
    erasure.request("request-1", LegalBasis.CONSENT_WITHDRAWN, WHY, NOW, FIRST)
    erasure.approve("No retention duty applies here.", NOW, SECOND)

    again = replayed(erasure)

    assert again.requests == erasure.requests and again.status == ErasureStatus.ERASED


# Whose data each record is, and the sealed format


def test_every_record_naming_a_patient_is_theirs_and_the_erasure_stream_and_read_log_are_kept() -> None:
    patient = Patient("account-1", {"full_name": "Ada"}, FIRST.as_dict())
    assert data_subject(patient) == str(patient.id)
    assert data_subject(Account("ada@example.org", "hash", "patient", PATIENT, FIRST.as_dict())) == PATIENT
    assert data_subject(Account("dr@example.org", "hash", "doctor", "doctor-1", FIRST.as_dict())) is None
    assert data_subject(PatientErasure(PATIENT, FIRST.as_dict())) is None
    assert data_subject(ReadRecord.of("chart", (), NOW, FIRST)) is None
    assert data_subject(DoctorCalendar.__new__(DoctorCalendar)) is None


class Keys:
    """A keyring in memory: one data key per patient, none destroyed."""

    def __init__(self) -> None:
        self.keys: dict[str, AESGCM] = {}

    def cipher(self, patient_id: str, *, create: bool) -> AESGCM:
        return self.keys.setdefault(patient_id, AESGCM(os.urandom(32)))

    def cipher_named(self, name: bytes) -> AESGCM:
        return self.cipher(str(UUID(bytes=name)), create=False)


def test_a_sealed_state_names_its_patient_opens_at_its_place_only_and_hides_its_content() -> None:
    transcoder = Clinic(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper.transcoder
    mapper = PatientMapper(transcoder, Keys())  # type: ignore[arg-type]
    patient = Patient("account-1", {"full_name": "Ada Lovelace"}, FIRST.as_dict())
    (event,) = patient.collect_events()

    stored = mapper.encode(event, str(patient.id))

    assert sealed_by(stored.state) == str(patient.id) and b"Lovelace" not in stored.state
    assert mapper.to_domain_event(stored).profile == {"full_name": "Ada Lovelace"}
    with pytest.raises(TamperedStateError):
        mapper.to_domain_event(StoredEvent(stored.originator_id, 2, stored.topic, stored.state))
    assert mapper.encode(event, None).state.startswith(b"{")


def test_a_master_key_wraps_each_data_key_for_its_patient_only() -> None:
    old, new = MasterKeys(os.urandom(32)), os.urandom(32)
    wrapped = old.wrap(PATIENT, b"k" * 32)
    rotated = MasterKeys(new, (old.current,))

    assert rotated.unwrap(PATIENT, old.current_id, wrapped) == b"k" * 32
    with pytest.raises(Exception):
        old.unwrap(str(uuid4()), old.current_id, wrapped)
    with pytest.raises(ValueError):
        MasterKeys(b"short")
