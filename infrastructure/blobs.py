"""Attachment bytes, content-addressed in the write database: the key is the SHA-256, checked again on every read."""

from __future__ import annotations

from sqlalchemy import Column, Engine, Integer, LargeBinary, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError

from domain.attachments import AttachmentIntegrityError, sha256_hex

metadata = MetaData()
attachment_blobs = Table(
    "attachment_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
)


class SqlBlobs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, content: bytes) -> str:
        """Stores the bytes once, whoever uploads them how often; answers their SHA-256 (hex)."""
        key = sha256_hex(content)
        with self.engine.connect() as conn:
            if conn.execute(select(attachment_blobs.c.sha256).where(attachment_blobs.c.sha256 == key)).first():
                return key
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(attachment_blobs).values(sha256=key, size=len(content), content=content))
        except IntegrityError:
            pass  # stored meanwhile by a concurrent upload of the same bytes
        return key

    def get(self, sha256: str) -> bytes:
        """The bytes stored under this hash, after hashing them again; refuses missing or altered content."""
        with self.engine.connect() as conn:
            row = conn.execute(select(attachment_blobs.c.content).where(attachment_blobs.c.sha256 == sha256)).first()
        if row is None:
            raise AttachmentIntegrityError(f"The content of attachment {sha256} is missing from the store.", sha256=sha256)
        content = bytes(row.content)
        if sha256_hex(content) != sha256:
            raise AttachmentIntegrityError(
                "The stored content no longer matches the SHA-256 recorded for it; it is withheld.", sha256=sha256
            )
        return content
