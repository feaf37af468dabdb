"""The read log's read model: one row per record an answer showed, by patient and by reader, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from domain.read_log import ReadRecord
from projections.base import Projector
from projections.clinical_tables import record_reads
from projections.queries import Page, _page


class ReadLog(Projector):
    name = "reads"
    kept_after_erasure = True  # who opened an erased patient's record stays accountable; it holds no clinical content
    tables = (record_reads,)
    bulk = {ReadRecord.Recorded.TOPIC: "recorded"}

    def __init__(self) -> None:
        self.handlers = {ReadRecord.Recorded.TOPIC: lambda conn, e: self.recorded(conn, [e])}

    @staticmethod
    def recorded(conn: Connection, events: list[Any]) -> None:
        rows = [
            {
                "read_id": str(e.originator_id),
                "row": index,
                "read_at": e.read_at,
                "patient_id": row["patient_id"],
                "shown": row["shown"],
                "record_id": row["record_id"],
                "basis": row["basis"],
                "emergency": row["basis"] == "emergency",
                "reader_id": e.cause["user_id"],
                "reader_role": e.cause["role"],
                "action": e.action,
                "correlation_id": e.cause["correlation_id"],
            }
            for e in events
            for index, row in enumerate(e.rows)
        ]
        if rows:
            conn.execute(insert(record_reads), rows)


COLUMNS = (
    record_reads.c.read_at,
    record_reads.c.patient_id,
    record_reads.c.shown,
    record_reads.c.record_id,
    record_reads.c.basis,
    record_reads.c.emergency,
    record_reads.c.reader_id,
    record_reads.c.reader_role,
    record_reads.c.action,
    record_reads.c.correlation_id,
)


def reads(
    conn: Connection,
    *,
    patient_id: str | None = None,
    reader_id: str | None = None,
    read_from: datetime | None = None,
    read_to: datetime | None = None,
    page: int,
    page_size: int,
) -> Page:
    """Reads of one patient's record or by one reader, newest first, in [read_from, read_to)."""
    query = select(*COLUMNS)
    if patient_id is not None:
        query = query.where(record_reads.c.patient_id == patient_id)
    if reader_id is not None:
        query = query.where(record_reads.c.reader_id == reader_id)
    if read_from is not None:
        query = query.where(record_reads.c.read_at >= read_from)
    if read_to is not None:
        query = query.where(record_reads.c.read_at < read_to)
    query = query.order_by(record_reads.c.read_at.desc(), record_reads.c.read_id, record_reads.c.row)
    return _page(conn, query, page, page_size)
