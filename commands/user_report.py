"""What one user did over a period: every change whose recorded cause names them and every read they were shown,
in time order, each read from its event in the event store (the index of a user's events holds identifiers only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.erasure import ErasedEvent
from commands.audit import Histories, Readable, RowPage, actor_of, event_name, owner_of, rows_of
from commands.base import Actor, RecordNotFoundError, Services
from commands.read_log import reads_recorded
from domain.accounts import Account
from domain.read_log import ReadRecord, Row, Shown
from domain.shared import SYSTEM, ForbiddenError, InvalidInputError, Role

READ = ReadRecord.Recorded.TOPIC
ACTORS_WITHOUT_ACCOUNT = frozenset({SYSTEM.user_id, "operator"})
"""Who changes records without an account: the system itself, and the command line (infrastructure/cli.py)."""


@dataclass(frozen=True)
class Action:
    """One event a user caused, as the index of users' events holds it."""

    position: int
    record_id: str
    version: int
    topic: str
    recorded_at: datetime


def report_access(svc: Services, actor: Actor, user_id: str, start: datetime, end: datetime) -> bool:
    """Whether the caller reads the reads as well as the changes: auditors both, admins the changes (without
    clinical content: the read log is the auditors'); others are refused; an id that is no account (nor the
    system's own) is not found."""
    if end <= start:
        raise InvalidInputError("`to` must be after `from`.", field="to")
    if not actor.is_(Role.AUDITOR, Role.ADMIN):
        raise ForbiddenError("What a user did is read by auditors and admins.")
    if user_id not in ACTORS_WITHOUT_ACCOUNT and svc.store.find(Account, user_id) is None:
        raise RecordNotFoundError(f"No user {user_id}.")
    return actor.is_(Role.AUDITOR)


def _read_row(action: Action, event: Any) -> dict[str, Any]:
    return {
        "kind": "read",
        "position": action.position,
        "record_type": "ReadRecord",
        "record_id": action.record_id,
        "version": action.version,
        "recorded_at": event.timestamp.isoformat(),
        "event_type": event_name(event),
        **actor_of(event),
        "reason": None,
        "changes": [],
        "action": event.action,
        "shown": [dict(row) for row in event.rows],
    }


def user_report(
    svc: Services, histories: Histories, actor: Actor, user_id: str, actions: Sequence[Action], total: int, page: int, page_size: int
) -> RowPage:
    """A page of the user's report: each change as a history row (what it changed, before and after; admins see no
    clinical content), each read with what it showed, oldest first. Shown to an auditor, it is in the read log
    first: the history of each patient's record it shows, and the read log of each patient whose reads it shows."""
    streams = histories.events_of(UUID(action.record_id) for action in actions)
    auditor = actor.is_(Role.AUDITOR)
    readables: dict[UUID, Readable] = {}
    for uid, events in streams.items():
        if isinstance(events[0], ErasedEvent):  # its patient was erased: the change keeps its place, nothing else
            readables[uid] = Readable(uid, events, clinical=False, erased=True)
            continue
        owner = owner_of(uid, events[0])
        readables[uid] = Readable(uid, events, clinical=auditor or owner is None, patient_id=owner)
    shown: list[Row] = []
    for action in actions:
        readable = readables[UUID(action.record_id)]
        if action.topic == READ:
            patients = {row["patient_id"] for row in readable.events[action.version - 1].rows}
            shown += [Row(patient_id, Shown.READ_LOG, user_id, "audit") for patient_id in sorted(patients)]
        elif readable.patient_id is not None and auditor:
            shown.append(Row(readable.patient_id, Shown.HISTORY, action.record_id, "audit"))
    with reads_recorded(svc, actor, "user report", shown):
        versions: dict[UUID, list[int]] = {}
        for action in actions:
            if action.topic != READ:
                versions.setdefault(UUID(action.record_id), []).append(action.version)
        changes = {uid: rows_of(histories, readables[uid], wanted) for uid, wanted in versions.items()}
        rows = []
        for action in actions:
            uid = UUID(action.record_id)
            if action.topic == READ:
                rows.append(_read_row(action, readables[uid].events[action.version - 1]))
            else:
                rows.append({"kind": "change", "position": action.position, **changes[uid][action.version], "action": None, "shown": []})
    return RowPage(rows, total, page, page_size)
