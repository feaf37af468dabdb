"""The attachment blob store on SQLite and PostgreSQL: round trip, one row per content, tampering detected."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, update

from domain.attachments import AttachmentIntegrityError
from infrastructure.blobs import SqlBlobs, attachment_blobs
from infrastructure.bootstrap import Medledger
from integration_helpers import running

CONTENT = b"%PDF-1.7\n" + bytes(range(256)) * 40


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings(backend), clock) as system:
        yield system


@pytest.fixture
def blobs(system: Medledger) -> SqlBlobs:
    return SqlBlobs(system.write_engine)


def rows(system: Medledger) -> int:
    with system.write_engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(attachment_blobs)).scalar_one()


def test_bytes_come_back_under_their_sha256(blobs: SqlBlobs) -> None:
    key = blobs.put(CONTENT)

    assert key == hashlib.sha256(CONTENT).hexdigest()
    assert blobs.get(key) == CONTENT


def test_the_same_content_is_stored_once_under_the_same_key(system: Medledger, blobs: SqlBlobs) -> None:
    first = blobs.put(CONTENT)
    second = SqlBlobs(system.write_engine).put(bytes(CONTENT))
    other = blobs.put(CONTENT + b"!")

    assert first == second != other
    assert rows(system) == 2


def test_a_tampered_row_is_refused(system: Medledger, blobs: SqlBlobs) -> None:
    key = blobs.put(CONTENT)
    with system.write_engine.begin() as conn:
        conn.execute(update(attachment_blobs).where(attachment_blobs.c.sha256 == key).values(content=CONTENT[:-1] + b"\x00"))

    with pytest.raises(AttachmentIntegrityError) as refused:
        blobs.get(key)
    assert refused.value.code == "attachment_integrity_failed"


def test_missing_content_is_refused_not_crashed(blobs: SqlBlobs) -> None:
    with pytest.raises(AttachmentIntegrityError):
        blobs.get(hashlib.sha256(b"never stored").hexdigest())


def test_the_system_is_wired_with_the_store(system: Medledger) -> None:
    key = system.services.blobs.put(b"K 4.1 mmol/L\n")

    assert system.services.blobs.get(key) == b"K 4.1 mmol/L\n"
