"""The read log: every answer that showed clinical data, recorded before it is given (who, in which role,
what, when, and on which basis of access)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.shared import Cause


class Shown(StrEnum):
    """What kind of clinical data an answer showed."""

    CHART = "chart"
    CONSULTATION = "consultation"
    PRESCRIPTION = "prescription"
    ATTACHMENT = "attachment"
    HISTORY = "history"
    READ_LOG = "read_log"
    INVOICE = "invoice"


@dataclass(frozen=True)
class Row:
    """One record of one patient that an answer showed, and why the reader could see it."""

    patient_id: str
    shown: Shown
    record_id: str
    basis: str

    def as_dict(self) -> dict[str, str]:
        return {"patient_id": self.patient_id, "shown": str(self.shown), "record_id": self.record_id, "basis": self.basis}


EMERGENCY = "emergency"


class ReadRecord(Aggregate):
    """One answer's reads: a stream of one event of its own, so that concurrent reads never conflict
    and a group commit records many of them in one transaction."""

    TOPIC = "medledger:ReadRecord"

    class Created(Aggregate.Created):
        TOPIC = "medledger:ReadRecord.Created"

    @classmethod
    def of(cls, action: str, rows: tuple[Row, ...], read_at: datetime, cause: Cause) -> ReadRecord:
        emergency = any(row.basis == EMERGENCY for row in rows)
        return cls(action, [row.as_dict() for row in rows], read_at, emergency, cause.as_dict())

    @event("Recorded", topic="medledger:ReadRecord.Recorded.v1")
    def __init__(self, action: str, rows: list[dict[str, str]], read_at: datetime, emergency: bool, cause: dict[str, Any]) -> None:
        self.action = action
        self.rows = tuple(Row(row["patient_id"], Shown(row["shown"]), row["record_id"], row["basis"]) for row in rows)
        self.read_at = read_at
        self.emergency = emergency
        self.reader = dict(cause)
