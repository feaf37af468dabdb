"""Attachment content: which types are accepted, told from the bytes themselves, never from the name or the header."""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum

from domain.shared import ConflictError, InvalidInputError

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
DICOM = "application/dicom"
TEXT = "text/plain"
ACCEPTED_TYPES = (PDF, PNG, JPEG, DICOM, TEXT)
IMAGES = frozenset({PNG, JPEG})
UNDECLARED = frozenset({"", "application/octet-stream"})
ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "application/x-pdf": PDF, "application/dicom+dcm": DICOM}
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class AttachmentKind(StrEnum):
    LAB_REPORT = "lab_report"
    SCAN = "scan"
    PHOTO = "photo"
    DOCUMENT = "document"


class AttachmentTypeError(InvalidInputError):
    """Raised when an upload's bytes are not of an accepted type, or not of the type it declares."""

    code = "attachment_type_refused"


class AttachmentTooLargeError(InvalidInputError):
    """Raised when an upload is larger than the configured limit."""

    code = "attachment_too_large"


class AttachmentIntegrityError(ConflictError):
    """Raised when stored attachment bytes no longer hash to the SHA-256 recorded for them, or are missing."""

    code = "attachment_integrity_failed"


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def sniff(content: bytes) -> str | None:
    """The accepted type these bytes are, by their signature; plain text is valid UTF-8 without control bytes."""
    if content.startswith(b"%PDF-"):
        return PDF
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if content.startswith(b"\xff\xd8\xff"):
        return JPEG
    if len(content) >= 132 and content[128:132] == b"DICM":
        return DICOM
    if content and _is_plain_text(content):
        return TEXT
    return None


def _is_plain_text(content: bytes) -> bool:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r\f" or ord(c) == 127 for c in text)


def content_type_of(content: bytes, declared: str | None, kind: AttachmentKind) -> str:
    """The content type to record: what the bytes are, which must be what the client declared (if it did)."""
    actual = sniff(content)
    if actual is None:
        raise AttachmentTypeError(
            f"This file is not of an accepted type ({', '.join(ACCEPTED_TYPES)}).", field="file"
        )
    media = (declared or "").split(";", 1)[0].strip().lower()
    media = ALIASES.get(media, media)
    if media not in UNDECLARED and media != actual:
        raise AttachmentTypeError(f"The file is declared as {media} but its content is {actual}.", field="file")
    if kind == AttachmentKind.PHOTO and actual not in IMAGES:
        raise AttachmentTypeError("A photo is a PNG or JPEG image.", field="file")
    return actual
