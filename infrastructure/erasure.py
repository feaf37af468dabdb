"""What an approved erasure does outside the event store: destroys the patient's data key (every event and
snapshot sealed with it can never be opened again), deletes their attachments, and forgets the copies kept
outside the store that name them (answers kept for idempotent retries, reminders queued in Redis). Each step may
run again harmlessly."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from commands.base import Store
from domain.erasure import ErasureStatus, PatientErasure
from infrastructure.blobs import SqlBlobs
from infrastructure.encryption import Keyring

log = logging.getLogger("medledger.erasure")


class KeptCopies(Protocol):
    """Copies of a patient's data kept outside the event store: idempotent answers, queued reminders."""

    def forget_mentioning(self, text: str) -> int: ...


def erasure_approved(store: Store, patient_id: str) -> bool:
    """Whether the event store holds an approved erasure of the patient (what every erasure is carried out on)."""
    erasure = store.find(PatientErasure, PatientErasure.create_id(patient_id))
    return erasure is not None and erasure.status == ErasureStatus.ERASED


class DataEraser:
    def __init__(self, keyring: Keyring, blobs: SqlBlobs, kept: Sequence[KeptCopies]) -> None:
        self.keyring = keyring
        self.blobs = blobs
        self.kept = kept

    def erase(self, patient_id: str) -> None:
        destroyed = self.keyring.destroy(patient_id)
        attachments = self.blobs.erase(patient_id)
        copies = sum(kept.forget_mentioning(patient_id) for kept in self.kept)
        if destroyed or attachments or copies:
            log.info(
                "erased patient %s: data key destroyed=%s, %d attachments and %d kept copies deleted",
                patient_id, destroyed, attachments, copies,
            )

    def erased(self, patient_id: str) -> bool:
        return self.keyring.erased(patient_id)
