"""Who did what: every event a user caused, indexed by its identifiers only (the event itself stays in the event
store, where a report reads it); and the query a user's report pages through."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventsourcing.domain import DomainEvent
from sqlalchemy import Connection, insert, select

import domain
from domain.consultation import LEGACY_TOPICS
from domain.read_log import ReadRecord
from projections.base import ERASURE_APPROVED, Decode, Projector
from projections.queries import Page, _page
from projections.tables import user_actions

READ_TOPIC = ReadRecord.Recorded.TOPIC


def stored_topics() -> list[str]:
    """Every topic the clinic's events are stored under, the older topics still read included."""
    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{module.name}")
    classes: set[type] = set()
    pending: list[type] = [DomainEvent]
    while pending:
        for subclass in pending.pop().__subclasses__():
            if subclass not in classes:
                classes.add(subclass)
                pending.append(subclass)
    topics = {str(cls.__dict__.get("TOPIC", "")) for cls in classes} | set(LEGACY_TOPICS)
    return sorted(topic for topic in topics if topic.startswith("medledger:"))


class UserActions(Projector):
    """One row per event whose recorded cause names a user: the changes they made and the reads they were shown."""

    name = "actions"
    tables = (user_actions,)

    def __init__(self) -> None:
        self.handlers = dict.fromkeys(stored_topics(), self._written_by_apply)

    @staticmethod
    def _written_by_apply(conn: Connection, event: Any) -> None:
        raise NotImplementedError("UserActions.apply writes each event with its position in the log")

    def apply(self, conn: Connection, notifications: Sequence[Any], decode: Decode) -> None:
        rows = []
        for notification in notifications:
            event = decode(notification)
            if notification.topic == ERASURE_APPROVED and event is not None:
                # the erased patient's events no longer open, so a rebuild indexes none of them: neither does this
                self._insert(conn, rows)
                rows = []
                self.erase_patient(conn, event)
            cause = getattr(event, "cause", None)
            user_id = cause.get("user_id") if isinstance(cause, dict) else None
            if user_id:
                rows.append(
                    {
                        "position": notification.id,
                        "user_id": str(user_id),
                        "record_id": str(notification.originator_id),
                        "version": notification.originator_version,
                        "topic": notification.topic,
                        "recorded_at": event.timestamp,
                        "patient_id": self.subject_of(notification),
                    }
                )
        self._insert(conn, rows)

    @staticmethod
    def _insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(insert(user_actions), rows)


def actions_of(
    conn: Connection, user_id: str, start: datetime, end: datetime, *, reads: bool, page: int, page_size: int
) -> Page:
    """The user's events recorded in [start, end), oldest first (in log order within a moment): position, record_id,
    version, topic, recorded_at; without the reads they were shown unless `reads`."""
    a = user_actions
    query = select(a.c.position, a.c.record_id, a.c.version, a.c.topic, a.c.recorded_at).where(
        a.c.user_id == user_id, a.c.recorded_at >= start, a.c.recorded_at < end
    )
    if not reads:
        query = query.where(a.c.topic != READ_TOPIC)
    return _page(conn, query.order_by(a.c.recorded_at, a.c.position), page, page_size)

