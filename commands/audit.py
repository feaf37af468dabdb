"""History and as-of reads of any record, computed from its events: who changed what, when, why, and what it showed.

Works on every aggregate in the store alike: a record's type, owner, states and diffs come from its events and
the aggregate they rebuild, so a new kind of record is covered without code of its own here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol
from uuid import UUID

import pydantic_core
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic, resolve_topic

from commands.access import record_access
from commands.base import Actor, RecordNotFoundError, Services
from commands.read_log import read_recorded, reads_recorded
from domain.consultation import ADMINISTRATIVE_FIELDS, Consultation
from domain.erasure import ErasedEvent, RecordErasedError
from domain.patients import Patient
from domain.read_log import Row, Shown
from domain.shared import ForbiddenError, InvalidInputError, Role

REDACTED = "[redacted]"
SECRET_WORDS = ("password", "secret", "token")
SECRET_NAME = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)
UNKNOWN = "unknown"
# Records whose clinical content only clinical readers see: the rest read the listed top-level fields.
ADMINISTRATIVE_VIEWS: dict[type[Aggregate], frozenset[str]] = {Consultation: frozenset(ADMINISTRATIVE_FIELDS)}


class Histories(Protocol):
    """The store's streams read for audit: every event of one, its state at any version, and where streams begin."""

    def events(self, record_id: UUID) -> Sequence[Any]:
        """The stream's events, decoded, in version order (empty if there is no such stream)."""
        ...

    def events_of(self, record_ids: Iterable[UUID]) -> dict[UUID, Sequence[Any]]:
        """events() of many streams at once (one round trip for a store)."""
        return {uid: self.events(uid) for uid in record_ids}

    def state_at(self, record_id: UUID, version: int) -> Aggregate | None:
        """A private copy of the record as it stood after the given version (None before its first)."""
        ...

    def openings_mentioning(self, text: str) -> Sequence[Any]:
        """The first event of every stream whose recorded data mentions the text (a superset of those that name it)."""
        ...


# Plain values, paths and diffs


def plain(value: Any) -> Any:
    """JSON-able values of a state: dataclasses and dicts as objects, enums by value, times and ids as text."""
    if isinstance(value, Enum):
        return plain(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [plain(v) for v in items]
    return str(value)


def own_fields(record: Aggregate | None) -> dict[str, Any]:
    """The record's own fields (not the library's bookkeeping: id, version, timestamps)."""
    return {} if record is None else {name: value for name, value in vars(record).items() if not name.startswith("_")}


def state_json(fields: dict[str, Any]) -> bytes:
    """The fields as JSON, written in Rust by pydantic-core (a thousand-entry consultation in about a millisecond):
    times in ISO 8601 (UTC as Z), enums by value, dataclasses as objects; anything else as plain() makes it."""
    return pydantic_core.to_json(fields, fallback=plain)


def state_of(record: Aggregate | None) -> dict[str, Any]:
    """The record's own fields as plain values."""
    return pydantic_core.from_json(state_json(own_fields(record))) if record is not None else {}


def mentions_secret(text: bytes) -> bool:
    lowered = text.lower()
    return any(word.encode() in lowered for word in SECRET_WORDS)


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Leaf values by path: `a.b` for a key, `a[0]` for a list item; empty containers have no leaves."""
    if isinstance(value, dict):
        leaves: dict[str, Any] = {}
        for key, child in value.items():
            leaves.update(flatten(child, f"{path}.{key}" if path else str(key)))
        return leaves
    if isinstance(value, list):
        leaves = {}
        for index, child in enumerate(value):
            leaves.update(flatten(child, f"{path}[{index}]"))
        return leaves
    return {path: value}


def is_secret(path: str) -> bool:
    return any(SECRET_NAME.search(part) for part in re.split(r"[.\[\]]", path) if part)


def redacted(value: Any, secret: bool = False) -> Any:
    """The value with every field named like a secret (password, secret, token) replaced, however deep."""
    if secret:
        return None if value is None else REDACTED
    if isinstance(value, dict):
        if not mentions_secret(state_json(value)):
            return value  # nothing is named like a secret (the walk below is the slow part of a large state)
        return {k: redacted(v, bool(SECRET_NAME.search(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Each leaf that changed, by path, with its value before and after (null where absent); secrets redacted
    after comparing, so a changed secret shows as changed but never its value."""
    old, new = flatten(before), flatten(after)
    changes = []
    for path in sorted(old.keys() | new.keys()):
        if old.get(path) == new.get(path) and (path in old) == (path in new):
            continue
        if old.get(path) is None and new.get(path) is None:
            continue  # a field that appears or goes as null changed nothing that reads differently
        secret = is_secret(path)
        changes.append({"path": path, "before": redacted(old.get(path), secret), "after": redacted(new.get(path), secret)})
    return changes


def administrative(record_class: type[Aggregate] | None, state: dict[str, Any], clinical: bool) -> dict[str, Any]:
    fields = ADMINISTRATIVE_VIEWS.get(record_class) if record_class is not None and not clinical else None
    return state if fields is None else {k: v for k, v in state.items() if k in fields}


# What an event says about itself


def type_name(topic: str) -> str:
    """A stable readable name from a stable topic: `medledger:Appointment.Cancelled.v1` is Appointment.Cancelled."""
    name = topic.split(":", 1)[-1]
    return re.sub(r"\.v[0-9]+$", "", name)


def event_name(event: Any) -> str:
    return type_name(get_topic(type(event)))


def record_type(opening: Any) -> str:
    if isinstance(opening, ErasedEvent):
        return type_name(opening.topic).split(".", 1)[0] or UNKNOWN
    return type_name(getattr(opening, "originator_topic", "") or "") or UNKNOWN


def record_class(opening: Any) -> type[Aggregate] | None:
    topic = getattr(opening, "originator_topic", None)
    try:
        return resolve_topic(topic) if topic else None
    except Exception:  # noqa: BLE001 - a type no longer in the code base still has a history
        return None


def reason_of(event: Any) -> str | None:
    """The reason the change gave: `reason`, or a more specific one (override, overbook, end) when given."""
    given = getattr(event, "reason", None)
    if given:
        return str(given)
    for name, value in sorted(vars(event).items()):
        if name.endswith("_reason") and value:
            return str(value)
    return None


def actor_of(event: Any) -> dict[str, Any]:
    """Who caused the event, as recorded in its cause; "unknown" where it recorded none."""
    cause = getattr(event, "cause", None)
    if not isinstance(cause, dict):
        return {"actor_user_id": UNKNOWN, "actor_role": UNKNOWN, "correlation_id": None}
    return {
        "actor_user_id": str(cause.get("user_id") or UNKNOWN),
        "actor_role": str(cause.get("role") or UNKNOWN),
        "correlation_id": cause.get("correlation_id"),
    }


def owner_of(record_id: UUID, opening: Any) -> str | None:
    """The patient a record belongs to, from its first event: the patient itself, a record naming its
    patient_id, or a patient's account. None for records that are nobody's medical record."""
    cls = record_class(opening)
    if cls is not None and issubclass(cls, Patient):
        return str(record_id)
    patient_id = getattr(opening, "patient_id", None)
    if patient_id:
        return str(patient_id)
    if getattr(opening, "role", None) == Role.PATIENT.value and getattr(opening, "profile_id", None):
        return str(opening.profile_id)
    return None


# Rows


@dataclass(frozen=True)
class Readable:
    """A record the caller may read, and whether they may see its clinical content."""

    record_id: UUID
    events: Sequence[Any]
    clinical: bool
    patient_id: str | None = None
    basis: str = "audit"
    erased: bool = False
    """The record's patient was erased: its events keep their place in the history, and nothing else."""

    def read_recorded(self, svc: Services, actor: Actor, action: str) -> AbstractContextManager[None]:
        """Records the read of a patient's record's history while it is answered (read log)."""
        rows = [Row(self.patient_id, Shown.HISTORY, str(self.record_id), self.basis)] if self.patient_id and self.clinical else []
        return reads_recorded(svc, actor, action, rows)

    @property
    def opening(self) -> Any:
        return self.events[0]

    @property
    def cls(self) -> type[Aggregate] | None:
        return record_class(self.opening)


def row(readable: Readable, event: Any, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    cls = readable.cls
    reason = reason_of(event)
    if not readable.clinical and cls in ADMINISTRATIVE_VIEWS:
        reason = None
    return {
        "record_type": record_type(readable.opening),
        "record_id": str(readable.record_id),
        "version": event.originator_version,
        "recorded_at": event.timestamp.isoformat(),
        "event_type": event_name(event),
        **actor_of(event),
        "reason": reason,
        "changes": diff(administrative(cls, before, readable.clinical), administrative(cls, after, readable.clinical)),
        "erased": False,
    }


def erased_row(readable: Readable, event: ErasedEvent) -> dict[str, Any]:
    """An erased event's row: where it stands and what kind of change it was (its stored topic); when, who and
    what were sealed with the patient's key and are gone with it."""
    return {
        "record_type": record_type(readable.opening),
        "record_id": str(readable.record_id),
        "version": event.originator_version,
        "recorded_at": None,
        "event_type": type_name(event.topic),
        "actor_user_id": UNKNOWN,
        "actor_role": UNKNOWN,
        "correlation_id": None,
        "reason": None,
        "changes": [],
        "erased": True,
    }


def rows_of(histories: Histories, readable: Readable, versions: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The rows of the given versions, replaying once from just before the first of them."""
    wanted = sorted(set(versions))
    if not wanted:
        return {}
    if readable.erased:
        return {event.originator_version: erased_row(readable, event) for event in readable.events if event.originator_version in wanted}
    record = histories.state_at(readable.record_id, wanted[0] - 1) if wanted[0] > 1 else None
    before = state_of(record)
    rows: dict[int, dict[str, Any]] = {}
    for event in readable.events[wanted[0] - 1 : wanted[-1]]:
        record = event.mutate(record)
        after = state_of(record)
        if event.originator_version in wanted:
            rows[event.originator_version] = row(readable, event, before, after)
        before = after
    return rows


@dataclass(frozen=True)
class RowPage:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


# Who may read


def _parse_id(record_id: str) -> UUID:
    try:
        return UUID(record_id)
    except ValueError:
        raise RecordNotFoundError(f"No record {record_id}.") from None


def may_audit(actor: Actor) -> None:
    if actor.is_(Role.ANALYST, Role.DOCTOR):
        raise ForbiddenError("Histories are read by auditors, admins and patients (their own records).")


def readable(svc: Services, histories: Histories, actor: Actor, record_id: str) -> Readable:
    """The record's events if the caller may read its history: auditors and admins every record (admins without
    clinical content), a patient their own records; a record someone else's or of no one is "not found" to a
    patient; doctors and analysts are refused."""
    may_audit(actor)
    uid = _parse_id(record_id)
    events = histories.events(uid)
    if not events:
        raise RecordNotFoundError(f"No record {record_id}.")
    if isinstance(events[0], ErasedEvent):
        if not actor.is_(Role.AUDITOR, Role.ADMIN):
            raise RecordNotFoundError(f"No record {record_id}.")
        return Readable(uid, events, clinical=False, erased=True)
    owner = owner_of(uid, events[0])
    if owner is None:
        if not actor.is_(Role.AUDITOR, Role.ADMIN):
            raise RecordNotFoundError(f"No record {record_id}.")
        return Readable(uid, events, clinical=True)
    try:
        access = record_access(svc, actor, owner)
    except RecordNotFoundError:
        raise RecordNotFoundError(f"No record {record_id}.") from None
    return Readable(uid, events, clinical=access.clinical, patient_id=access.patient_id, basis=access.basis)


# Queries


def history(svc: Services, histories: Histories, actor: Actor, record_id: str, page: int, page_size: int) -> RowPage:
    """Every event of the record in order, a page at a time, each with what it changed."""
    record = readable(svc, histories, actor, record_id)
    first = (page - 1) * page_size + 1
    last = min(first + page_size - 1, len(record.events))
    with record.read_recorded(svc, actor, "history"):
        rows = rows_of(histories, record, range(first, last + 1))
    return RowPage([rows[v] for v in range(first, last + 1)], len(record.events), page, page_size)


def version_at(events: Sequence[Any], moment: datetime | None, version: int | None) -> int:
    """The version a state is asked for: the given one, that of the last event recorded at or before the moment,
    or the latest; "not found" when the stream has no such version or had no event yet at the moment."""
    if version is not None:
        if version > len(events):
            raise RecordNotFoundError(f"The record has {len(events)} versions; there is no version {version}.")
        return version
    if moment is not None:
        chosen = max((e.originator_version for e in events if e.timestamp <= moment), default=0)
        if chosen == 0:
            raise RecordNotFoundError(f"The record did not exist yet at {moment.isoformat()}.")
        return chosen
    return len(events)


@dataclass(frozen=True)
class AsOf:
    record_type: str
    record_id: str
    version: int
    recorded_at: str
    as_of: str | None
    state_json: bytes
    """The state as JSON text, secrets redacted: a large state is answered without ever being parsed."""

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.state_json)


def as_of(
    svc: Services, histories: Histories, actor: Actor, record_id: str, moment: datetime | None, version: int | None
) -> AsOf:
    """The record as it stood after its last event recorded at or before the moment, or after the version
    (the latest without either); "not found" when it did not exist yet then."""
    if moment is not None and version is not None:
        raise InvalidInputError("Ask for a moment (as_of) or a version, not both.", field="version")
    record = readable(svc, histories, actor, record_id)
    if record.erased:
        raise RecordErasedError(f"Record {record_id} belonged to a patient whose data was erased.")
    events = record.events
    chosen = version_at(events, moment, version)
    with record.read_recorded(svc, actor, "as of"):
        fields = administrative(record.cls, {"id": str(record.record_id), **own_fields(histories.state_at(record.record_id, chosen))}, record.clinical)
        text = state_json(fields)
        if mentions_secret(text):
            text = state_json(redacted(pydantic_core.from_json(text)))
    return AsOf(
        record_type=record_type(record.opening),
        record_id=str(record.record_id),
        version=chosen,
        recorded_at=events[chosen - 1].timestamp.isoformat(),
        as_of=moment.isoformat() if moment is not None else None,
        state_json=text,
    )


def refuse_if_erased(svc: Services, actor: Actor, patient_id: str) -> None:
    """To an auditor or admin, a patient whose data was erased is gone (410), not unknown."""
    if actor.is_(Role.AUDITOR, Role.ADMIN) and _is_uuid(patient_id) and svc.eraser.erased(patient_id):
        raise RecordErasedError(f"The data of patient {patient_id} was erased.")


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def patient_records(histories: Histories, patient_id: str) -> list[UUID]:
    """Every stream of the patient's records, found from the store: the patient and each stream whose first
    event names them as its patient (or as the profile of a patient account)."""
    patient = UUID(patient_id)
    found = [patient]
    for opening in histories.openings_mentioning(patient_id):
        if opening.originator_id != patient and owner_of(opening.originator_id, opening) == patient_id:
            found.append(opening.originator_id)
    return found


def patient_report(
    svc: Services,
    histories: Histories,
    actor: Actor,
    patient_id: str,
    start: datetime,
    end: datetime,
    page: int,
    page_size: int,
) -> RowPage:
    """Every change to any of the patient's records recorded from `start` (inclusive) to `end` (exclusive), in
    time order: auditors and admins (without clinical content), and the patient themself."""
    if end <= start:
        raise InvalidInputError("`to` must be after `from`.", field="to")
    may_audit(actor)
    refuse_if_erased(svc, actor, patient_id)
    access = record_access(svc, actor, patient_id)
    clinical = access.clinical
    records = {
        uid: Readable(uid, events, clinical)
        for uid, events in histories.events_of(patient_records(histories, access.patient_id)).items()
        if events
    }
    changes = sorted(
        (event.timestamp, str(uid), event.originator_version)
        for uid, record in records.items()
        for event in record.events
        if start <= event.timestamp < end
    )
    chosen = changes[(page - 1) * page_size : page * page_size]
    versions: dict[str, list[int]] = {}
    for _, uid, version in chosen:
        versions.setdefault(uid, []).append(version)
    with read_recorded(svc, actor, "patient report", access, Shown.HISTORY, access.patient_id):
        rows = {uid: rows_of(histories, records[UUID(uid)], wanted) for uid, wanted in versions.items()}
    return RowPage([rows[uid][version] for _, uid, version in chosen], len(changes), page, page_size)


def stored_event_read(svc: Services, histories: Histories, actor: Actor, record_id: UUID) -> AbstractContextManager[None]:
    """The read log entry for showing an auditor one stored event of a record as the store holds it (the bytes a
    transparency proof's leaf hashes): a read of the record's history, on the audit basis."""
    events = histories.events(record_id)
    owner = owner_of(record_id, events[0]) if events else None
    rows = [Row(owner, Shown.HISTORY, str(record_id), "audit")] if owner is not None and actor.is_(Role.AUDITOR) else []
    return reads_recorded(svc, actor, "transparency proof", rows)
