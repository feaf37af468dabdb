"""The attachment blob store on SQLite and PostgreSQL: round trip, one row per patient and content, sealed with the
patient's key, tampering detected, erasure deletes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import func, insert, select, update

from domain.attachments import AttachmentIntegrityError
from infrastructure.blobs import SqlBlobs, attachment_blobs, legacy_metadata, sealed_blobs
from infrastructure.bootstrap import Medledger
from integration_helpers import running

CONTENT = b"%PDF-1.7\n" + bytes(range(256)) * 40
PATIENT = "6f1c1d0e-0000-4000-8000-000000000001"
OTHER = "6f1c1d0e-0000-4000-8000-000000000002"


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings(backend), clock) as system:
        yield system


@pytest.fixture
def blobs(system: Medledger) -> SqlBlobs:
    return SqlBlobs(system.write_engine, system.store.app.keyring)


def rows(system: Medledger) -> list[tuple[str, bytes]]:
    with system.write_engine.connect() as conn:
        return [(row.patient_id, bytes(row.content)) for row in conn.execute(select(sealed_blobs)).all()]


def test_bytes_come_back_under_their_sha256(blobs: SqlBlobs) -> None:
    key = blobs.put(CONTENT, PATIENT)

    assert key == hashlib.sha256(CONTENT).hexdigest()
    assert blobs.get(key, PATIENT) == CONTENT


def test_the_bytes_are_stored_sealed_with_the_patients_key(system: Medledger, blobs: SqlBlobs) -> None:
    blobs.put(CONTENT, PATIENT)

    [(patient, stored)] = rows(system)
    assert patient == PATIENT
    assert b"%PDF" not in stored and bytes(range(256)) not in stored


def test_the_same_content_is_stored_once_per_patient(system: Medledger, blobs: SqlBlobs) -> None:
    first = blobs.put(CONTENT, PATIENT)
    second = SqlBlobs(system.write_engine, system.store.app.keyring).put(bytes(CONTENT), PATIENT)
    other = blobs.put(CONTENT + b"!", PATIENT)
    theirs = blobs.put(CONTENT, OTHER)

    assert first == second == theirs != other
    assert sorted(patient for patient, _ in rows(system)) == [PATIENT, PATIENT, OTHER]


def test_one_patients_bytes_are_not_found_under_another_patient(blobs: SqlBlobs) -> None:
    key = blobs.put(CONTENT, PATIENT)

    with pytest.raises(AttachmentIntegrityError):
        blobs.get(key, OTHER)


def test_a_tampered_row_is_refused(system: Medledger, blobs: SqlBlobs) -> None:
    key = blobs.put(CONTENT, PATIENT)
    [(_, stored)] = rows(system)
    with system.write_engine.begin() as conn:
        conn.execute(update(sealed_blobs).where(sealed_blobs.c.sha256 == key).values(content=stored[:-1] + bytes([stored[-1] ^ 1])))

    with pytest.raises(AttachmentIntegrityError) as refused:
        blobs.get(key, PATIENT)
    assert refused.value.code == "attachment_integrity_failed"


def test_missing_content_is_refused_not_crashed(blobs: SqlBlobs) -> None:
    with pytest.raises(AttachmentIntegrityError):
        blobs.get(hashlib.sha256(b"never stored").hexdigest(), PATIENT)


def test_erasing_a_patient_deletes_their_attachments_only(system: Medledger, blobs: SqlBlobs) -> None:
    key = blobs.put(CONTENT, PATIENT)
    blobs.put(CONTENT, OTHER)

    assert blobs.erase(PATIENT) == 1

    assert [patient for patient, _ in rows(system)] == [OTHER]
    with pytest.raises(AttachmentIntegrityError):
        blobs.get(key, PATIENT)
    assert blobs.get(key, OTHER) == CONTENT


def test_attachments_stored_before_encryption_are_still_read(system: Medledger, blobs: SqlBlobs) -> None:
    legacy_metadata.create_all(system.write_engine)
    key = hashlib.sha256(CONTENT).hexdigest()
    with system.write_engine.begin() as conn:
        conn.execute(insert(attachment_blobs).values(sha256=key, size=len(CONTENT), content=CONTENT))

    assert SqlBlobs(system.write_engine, system.store.app.keyring).get(key, PATIENT) == CONTENT


def test_the_system_is_wired_with_the_store(system: Medledger) -> None:
    key = system.services.blobs.put(b"K 4.1 mmol/L\n", PATIENT)

    assert system.services.blobs.get(key, PATIENT) == b"K 4.1 mmol/L\n"
