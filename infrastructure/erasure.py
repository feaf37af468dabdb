"""What an approved erasure does outside the event store: destroys the patient's data key (every event and
snapshot sealed with it can never be opened again), deletes their attachments, and forgets the answers kept for
idempotent retries that mention them. Each step may run again harmlessly."""

from __future__ import annotations

import logging
from typing import Protocol

from infrastructure.blobs import SqlBlobs
from infrastructure.encryption import Keyring

log = logging.getLogger("medledger.erasure")


class KeptAnswers(Protocol):
    def forget_mentioning(self, text: str) -> int: ...


class DataEraser:
    def __init__(self, keyring: Keyring, blobs: SqlBlobs, answers: KeptAnswers) -> None:
        self.keyring = keyring
        self.blobs = blobs
        self.answers = answers

    def erase(self, patient_id: str) -> None:
        destroyed = self.keyring.destroy(patient_id)
        attachments = self.blobs.erase(patient_id)
        answers = self.answers.forget_mentioning(patient_id)
        if destroyed or attachments or answers:
            log.info(
                "erased patient %s: data key destroyed=%s, %d attachments and %d kept answers deleted",
                patient_id, destroyed, attachments, answers,
            )

    def erased(self, patient_id: str) -> bool:
        return self.keyring.erased(patient_id)
