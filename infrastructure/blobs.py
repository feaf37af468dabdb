"""Attachment bytes in the write database, sealed per patient: kept under (patient, SHA-256 of the plain bytes),
encrypted with the patient's data key (AES-GCM, bound to that patient and hash), and hashed again on every read.
Erasing a patient deletes their rows outright; without the key they could not be opened anyway."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from sqlalchemy import Column, Connection, Engine, Integer, LargeBinary, MetaData, String, Table, delete, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from domain.attachments import AttachmentIntegrityError, sha256_hex
from infrastructure.encryption import NONCE, Keyring

metadata = MetaData()
sealed_blobs = Table(
    "sealed_blobs",
    metadata,
    Column("patient_id", String(36), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),  # nonce + AES-GCM(patient's data key, bytes)
)
legacy_metadata = MetaData()
attachment_blobs = Table(  # before encryption at rest: plain bytes, shared by every patient; read only
    "attachment_blobs",
    legacy_metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
)


def _context(patient_id: str, sha256: str) -> bytes:
    return f"medledger attachment {patient_id} {sha256}".encode()


class SqlBlobs:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self.engine = engine
        self.keyring = keyring
        self._legacy: bool | None = None

    def put(self, content: bytes, patient_id: str) -> str:
        """Stores the patient's bytes once, however often they are uploaded; answers their SHA-256 (hex)."""
        key = sha256_hex(content)
        where = (sealed_blobs.c.patient_id == patient_id, sealed_blobs.c.sha256 == key)
        with self.engine.connect() as conn:
            if conn.execute(select(sealed_blobs.c.sha256).where(*where)).first():
                return key
        nonce = os.urandom(NONCE)
        sealed = nonce + self.keyring.cipher(patient_id, create=True).encrypt(nonce, content, _context(patient_id, key))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(sealed_blobs).values(patient_id=patient_id, sha256=key, size=len(content), content=sealed))
        except IntegrityError:
            pass  # stored meanwhile by a concurrent upload of the same bytes
        return key

    def get(self, sha256: str, patient_id: str) -> bytes:
        """The patient's bytes stored under this hash, after hashing them again; refuses missing or altered content."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sealed_blobs.c.content).where(sealed_blobs.c.patient_id == patient_id, sealed_blobs.c.sha256 == sha256)
            ).first()
            if row is None and self._has_legacy(conn):
                legacy = conn.execute(select(attachment_blobs.c.content).where(attachment_blobs.c.sha256 == sha256)).first()
                return self._checked(sha256, bytes(legacy.content)) if legacy is not None else self._missing(sha256)
        if row is None:
            return self._missing(sha256)
        sealed = bytes(row.content)
        cipher = self.keyring.cipher(patient_id, create=False)
        try:
            content = cipher.decrypt(sealed[:NONCE], sealed[NONCE:], _context(patient_id, sha256))
        except InvalidTag:
            content = b""  # altered: fails the hash check below
        return self._checked(sha256, content)

    def erase(self, patient_id: str) -> int:
        """Deletes every attachment of the patient; answers how many."""
        with self.engine.begin() as conn:
            return conn.execute(delete(sealed_blobs).where(sealed_blobs.c.patient_id == patient_id)).rowcount

    def _has_legacy(self, conn: Connection) -> bool:
        if self._legacy is None:
            schema = conn.get_execution_options().get("schema_translate_map", {}).get(None)
            self._legacy = inspect(conn).has_table(attachment_blobs.name, schema=schema)
        return self._legacy

    @staticmethod
    def _missing(sha256: str) -> bytes:
        raise AttachmentIntegrityError(f"The content of attachment {sha256} is missing from the store.", sha256=sha256)

    @staticmethod
    def _checked(sha256: str, content: bytes) -> bytes:
        if sha256_hex(content) != sha256:
            raise AttachmentIntegrityError(
                "The stored content no longer matches the SHA-256 recorded for it; it is withheld.", sha256=sha256
            )
        return content
