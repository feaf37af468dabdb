"""Consultation: one encounter's medical record, open while the doctor records it, then signed and only ever amended.

Everything recorded is an entry with an id: the chief complaint, symptoms, vital signs, diagnoses and notes.
A correction, before or after signing, is an amendment that names the entry, gives a reason and keeps the
previous and the new values; nothing is erased, so the "as recorded" view can always show the originals.
Attachments are content-addressed: the event records their SHA-256, the bytes live in a blob store.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import register_topic

from domain import vitals
from domain.attachments import SHA256_HEX, AttachmentKind
from domain.shared import Cause, ConflictError, InvalidInputError, InvalidTransitionError, require_aware, stable_id
from domain.text import human_text

ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
ICD10_AS_WRITTEN = r"^\s*[A-Za-z][0-9][0-9A-Za-z](?:\.?[0-9A-Za-z]{1,4})?\s*$"  # what icd10() accepts
MIN_REASON_LENGTH = 3
EARLIEST_ONSET = date(1900, 1, 1)
LONGEST = {
    "complaint": 2000,
    "note": 20_000,
    "name": 200,
    "duration": 100,
    "description": 500,
    "filename": 255,
    "reason": 500,
}


class Kind(StrEnum):
    IN_PERSON = "in_person"
    VIDEO = "video"
    PHONE = "phone"
    CHAT = "chat"


class Status(StrEnum):
    OPEN = "open"
    SIGNED = "signed"


class Severity(StrEnum):
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class Rank(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


class DiagnosisStatus(StrEnum):
    PROVISIONAL = "provisional"
    CONFIRMED = "confirmed"
    RESOLVED = "resolved"
    RULED_OUT = "ruled_out"
    ENTERED_IN_ERROR = "entered_in_error"


CURRENT_DIAGNOSIS = frozenset({DiagnosisStatus.PROVISIONAL, DiagnosisStatus.CONFIRMED})


class EntryKind(StrEnum):
    COMPLAINT = "complaint"
    SYMPTOM = "symptom"
    VITALS = "vital_signs"
    DIAGNOSIS = "diagnosis"
    NOTE = "note"


AMENDABLE_FIELDS: dict[EntryKind, tuple[str, ...]] = {
    EntryKind.COMPLAINT: ("text",),
    EntryKind.SYMPTOM: ("name", "onset", "severity", "duration"),
    EntryKind.VITALS: ("measured_at", *vitals.MEASURES),
    EntryKind.DIAGNOSIS: ("code", "description", "rank", "status"),
    EntryKind.NOTE: ("text",),
}
CHANGE_OVER_TIME = frozenset({EntryKind.SYMPTOM, EntryKind.DIAGNOSIS})
"""Entries whose amendments may say when the change happened clinically; the others are only ever corrected."""
ADMINISTRATIVE_FIELDS = (
    "id",
    "patient_id",
    "doctor_id",
    "appointment_id",
    "kind",
    "status",
    "started_at",
    "signed_at",
    "signed_by",
    "follow_up",
    "follow_up_bookings",
)


class ConsultationSignedError(InvalidTransitionError):
    """Raised when something would be recorded on a signed consultation other than an amendment."""

    code = "consultation_signed"


class ComplaintAlreadyRecordedError(ConflictError):
    """Raised when a second, different chief complaint is recorded: the first one is amended instead."""

    code = "complaint_already_recorded"


class PrimaryDiagnosisExistsError(ConflictError):
    """Raised when a second current primary diagnosis would be recorded."""

    code = "primary_diagnosis_exists"


class NothingToSignError(ConflictError):
    """Raised when a consultation without a chief complaint is signed."""

    code = "chief_complaint_missing"


class UnknownEntryError(InvalidInputError):
    """Raised when an amendment names an entry this consultation does not have."""

    code = "unknown_entry"


class InvalidEffectiveTimeError(InvalidInputError):
    """Raised when an amendment gives a time it took effect clinically where only a correction makes sense (a
    complaint, a note, vital signs, a symptom's onset), or a time before the entry was true or in the future."""

    code = "invalid_effective_time"


class NoFollowUpError(ConflictError):
    """Raised when a follow-up is booked for a consultation that recommended none."""

    code = "no_follow_up"


def consultation_id(appointment_id: str) -> UUID:
    return stable_id("consultation", appointment_id)


def icd10(code: str) -> str:
    """The code in canonical form (upper case, with its dot), or InvalidInputError if it is not ICD-10 syntax."""
    canonical = code.strip().upper()
    if "." not in canonical and 4 <= len(canonical) <= 7:
        canonical = f"{canonical[:3]}.{canonical[3:]}"
    if not ICD10.match(canonical):
        raise InvalidInputError(
            f"{code!r} is not an ICD-10 code (a letter, two characters, then optionally a dot and 1 to 4 more).",
            field="code",
        )
    return canonical


def _text(value: Any, field: str, longest: int, *, multiline: bool = False) -> str:
    """Human text of at most longest characters, checked here too so amendments keep the rules recording has."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{field} must not be empty.", field=field)
    if len(value.strip()) > longest:
        raise InvalidInputError(f"{field} is at most {longest} characters.", field=field)
    return human_text(value.strip(), field, multiline=multiline)


def _optional_text(value: Any, field: str, longest: int) -> str | None:
    return None if value is None or value == "" else _text(value, field, longest)


def _choice(enum: type[StrEnum], value: Any, field: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        raise InvalidInputError(f"{field} is one of {', '.join(e.value for e in enum)}.", field=field) from None


def _not_after(moment: datetime, now: datetime, field: str) -> datetime:
    moment = require_aware(moment, field)
    if moment > now:
        raise InvalidInputError(f"{field} cannot be in the future.", field=field)
    return moment


def _onset(value: Any, now: datetime) -> str | None:
    """A symptom's onset as ISO text: a date, or an instant with its offset; never in the future."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInputError("onset is an ISO date or date-time.", field="onset") from None
    if isinstance(value, datetime):
        if value.date() < EARLIEST_ONSET:
            raise InvalidInputError(f"onset is on or after {EARLIEST_ONSET.isoformat()}.", field="onset")
        return _not_after(value, now, "onset").isoformat()
    if isinstance(value, date):
        if value > now.date():
            raise InvalidInputError("onset cannot be in the future.", field="onset")
        if value < EARLIEST_ONSET:
            raise InvalidInputError(f"onset is on or after {EARLIEST_ONSET.isoformat()}.", field="onset")
        return value.isoformat()
    raise InvalidInputError("onset is an ISO date or date-time.", field="onset")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat() if moment is not None else None


def _private(view: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a view's plain values, sharing nothing with the record (pickled and back: four times faster
    than copy.deepcopy, which a chart of hundreds of consultations felt)."""
    copied: dict[str, Any] = pickle.loads(pickle.dumps(view, protocol=pickle.HIGHEST_PROTOCOL))
    return copied


def clinically_true(since: str, moment: datetime) -> bool:
    """Whether what was true since `since` (ISO: a date-time, or a date, which counts from the start of that day
    where the moment is given, in its own offset) was true at the moment."""
    if len(since) == 10:
        return date.fromisoformat(since) <= moment.date()
    return datetime.fromisoformat(since) <= moment


@dataclass(frozen=True)
class EntryAt:
    """An entry as it was clinically true at a moment: its values then, the amendments they include, and since
    when they were true."""

    entry: dict[str, Any]
    values: dict[str, Any]
    amendments: list[dict[str, Any]]
    true_since: str


class Consultation(Aggregate):
    TOPIC = "medledger:Consultation"

    class Created(Aggregate.Created):
        TOPIC = "medledger:Consultation.Created"

    @event("Started", topic="medledger:Consultation.Started.v1")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - from the appointment, so that starting twice names the same stream
        patient_id: str,
        doctor_id: str,
        appointment_id: str | None,
        kind: str,
        started_at: datetime,
        cause: dict[str, Any],
    ) -> None:
        self.patient_id = patient_id
        self.doctor_id = doctor_id
        self.appointment_id = appointment_id
        self.kind = Kind(kind)
        self.started_at = started_at
        self.status = Status.OPEN
        self.signed_at: datetime | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.attachments: dict[str, dict[str, Any]] = {}
        self.amendments: list[dict[str, Any]] = []
        self.follow_up: dict[str, Any] | None = None
        self.follow_up_bookings: list[dict[str, Any]] = []

    @classmethod
    def start(
        cls,
        id: UUID,  # noqa: A002
        patient_id: str,
        doctor_id: str,
        appointment_id: str | None,
        kind: str,
        now: datetime,
        cause: Cause,
    ) -> Consultation:
        kind = _choice(Kind, kind, "kind")
        return cls(id, patient_id, doctor_id, appointment_id, kind, require_aware(now, "started_at"), cause.as_dict())

    # What the doctor records while the consultation is open

    @property
    def complaint(self) -> dict[str, Any] | None:
        return next((e for e in self.entries.values() if e["entry_kind"] == EntryKind.COMPLAINT), None)

    def record_complaint(self, entry_id: str, text: str, now: datetime, cause: Cause) -> None:
        if entry_id in self.entries:
            return
        text = _text(text, "text", LONGEST["complaint"], multiline=True)
        current = self.complaint
        if current is not None and current["current"]["text"] == text:
            return
        self._require_open()
        if current is not None:
            raise ComplaintAlreadyRecordedError(
                "A chief complaint is already recorded; amend it with a reason instead.",
                current={"entry_id": current["entry_id"], "text": current["current"]["text"]},
            )
        self._complaint_recorded(entry_id, text, now, cause.as_dict())

    def record_symptom(
        self,
        entry_id: str,
        name: str,
        onset: date | datetime | None,
        severity: str,
        duration: str | None,
        now: datetime,
        cause: Cause,
    ) -> None:
        if entry_id in self.entries:
            return
        self._require_open()
        values = self._symptom(
            {"name": name, "onset": onset, "severity": severity, "duration": duration}, now
        )
        self._symptom_recorded(
            entry_id, values["name"], values["onset"], values["severity"], values["duration"], now, cause.as_dict()
        )

    def record_vital_signs(
        self, entry_id: str, values: dict[str, Any], measured_at: datetime | None, now: datetime, cause: Cause
    ) -> None:
        if entry_id in self.entries:
            return
        self._require_open()
        measures, flags = vitals.checked(values)
        taken = _not_after(measured_at, now, "measured_at") if measured_at is not None else now
        self._vital_signs_recorded(entry_id, taken, measures, flags, now, cause.as_dict())

    def record_diagnosis(
        self, entry_id: str, code: str, description: str, rank: str, status: str, now: datetime, cause: Cause
    ) -> None:
        if entry_id in self.entries:
            return
        self._require_open()
        values = self._diagnosis({"code": code, "description": description, "rank": rank, "status": status})
        self._check_one_primary(entry_id, values)
        self._diagnosis_recorded(
            entry_id, values["code"], values["description"], values["rank"], values["status"], now, cause.as_dict()
        )

    def add_note(self, entry_id: str, text: str, author_id: str, now: datetime, cause: Cause) -> None:
        if entry_id in self.entries:
            return
        self._require_open()
        self._note_added(entry_id, _text(text, "text", LONGEST["note"], multiline=True), author_id, now, cause.as_dict())

    def attach(
        self,
        attachment_id: str,
        kind: str,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        now: datetime,
        cause: Cause,
    ) -> None:
        if attachment_id in self.attachments:
            return
        self._require_open()
        kind = _choice(AttachmentKind, kind, "kind")
        filename = _text(filename, "filename", LONGEST["filename"])
        if not SHA256_HEX.match(sha256):
            raise InvalidInputError("sha256 is 64 lower-case hexadecimal digits.", field="sha256")
        if size <= 0:
            raise InvalidInputError("An attachment is not empty.", field="file")
        self._attached(attachment_id, kind, filename, content_type, size, sha256, now, cause.as_dict())

    def recommend_follow_up(self, on: date, reason: str, now: datetime, cause: Cause) -> None:
        reason = _text(reason, "reason", LONGEST["reason"], multiline=True)
        if self.follow_up is not None and self.follow_up["date"] == on.isoformat() and self.follow_up["reason"] == reason:
            return
        self._require_open()
        if on <= now.date():
            raise InvalidInputError("A follow-up is recommended for a later day.", field="date")
        self._follow_up_recommended(on, reason, now, cause.as_dict())

    def record_follow_up_booking(self, appointment_id: str, start: datetime, cause: Cause) -> None:
        """Links the appointment booked from the recommendation; a link, not a change of the record."""
        self.check_follow_up()
        if any(b["appointment_id"] == appointment_id for b in self.follow_up_bookings):
            return
        self._follow_up_booked(appointment_id, start, cause.as_dict())

    def check_follow_up(self) -> None:
        if self.follow_up is None:
            raise NoFollowUpError("This consultation recommends no follow-up.", current=self.view(clinical=False))

    def sign(self, now: datetime, cause: Cause) -> None:
        if self.status == Status.SIGNED:
            return
        if self.complaint is None:
            raise NothingToSignError("Record the chief complaint before signing.", current=self.view(clinical=False))
        self._signed(now, cause.as_dict())

    # Corrections

    def amend(
        self,
        amendment_id: str,
        entry_id: str,
        changes: dict[str, Any],
        reason: str,
        now: datetime,
        cause: Cause,
        effective_at: datetime | None = None,
    ) -> None:
        """Corrects an entry, before or after signing; the original stays in the history and the as-recorded view.

        Without effective_at the new values correct the entry: they were true whenever the entry was. With it (a
        symptom or a diagnosis only), the entry changed clinically at that moment (a diagnosis resolved on
        3 March): before it the previous values stay what was true."""
        if any(a["amendment_id"] == amendment_id for a in self.amendments):
            return
        entry = self.entries.get(entry_id)
        if entry is None:
            raise UnknownEntryError(f"This consultation has no entry {entry_id}.", field="entry_id")
        reason = _text(reason, "reason", LONGEST["reason"], multiline=True)
        if len(reason) < MIN_REASON_LENGTH:
            raise InvalidInputError(f"Give a reason of at least {MIN_REASON_LENGTH} characters.", field="reason")
        kind = EntryKind(entry["entry_kind"])
        allowed = AMENDABLE_FIELDS[kind]
        unknown = sorted(set(changes) - set(allowed))
        if unknown or not changes:
            raise InvalidInputError(
                f"A {kind.value} amendment changes some of: {', '.join(allowed)}.",
                field=f"changes.{unknown[0]}" if unknown else "changes",
            )
        new = self._amended_values(kind, entry, changes, now)
        if effective_at is not None:
            effective_at = self._effective_time(kind, entry, changes, effective_at, now)
        previous = {k: entry["current"].get(k) for k in new}
        difference = {k: v for k, v in new.items() if previous[k] != v}
        if not difference:
            return
        self._amended(
            amendment_id,
            entry_id,
            kind.value,
            reason,
            {k: previous[k] for k in difference},
            difference,
            now,
            self.status == Status.SIGNED,
            effective_at,
            cause.as_dict(),
        )

    def _effective_time(self, kind: EntryKind, entry: dict[str, Any], changes: dict[str, Any], effective_at: datetime, now: datetime) -> datetime:
        if kind not in CHANGE_OVER_TIME:
            raise InvalidEffectiveTimeError(
                f"A {kind.value} amendment corrects the entry; only symptoms and diagnoses change at a time of their own.",
                field="effective_at",
            )
        if "onset" in changes:
            raise InvalidEffectiveTimeError("A new onset corrects when the symptom began; it takes no effective time.", field="effective_at")
        aware = require_aware(effective_at, "effective_at")
        if aware > now:
            raise InvalidEffectiveTimeError("effective_at cannot be in the future.", field="effective_at")
        if not clinically_true(self.true_since(kind, entry["current"]), effective_at):
            raise InvalidEffectiveTimeError(
                "A change cannot take effect before the entry was true (its onset, or the consultation's start).",
                field="effective_at",
            )
        return aware

    def _amended_values(self, kind: EntryKind, entry: dict[str, Any], changes: dict[str, Any], now: datetime) -> dict[str, Any]:
        merged = {**entry["current"], **changes}
        if kind in (EntryKind.COMPLAINT, EntryKind.NOTE):
            return {"text": _text(merged["text"], "text", LONGEST[kind.value], multiline=True)}
        if kind == EntryKind.SYMPTOM:
            return self._symptom(merged, now)
        if kind == EntryKind.DIAGNOSIS:
            values = self._diagnosis(merged)
            self._check_one_primary(entry["entry_id"], values)
            return values
        measures, flags = vitals.checked({m: merged.get(m) for m in vitals.MEASURES if merged.get(m) is not None})
        measured_at = merged["measured_at"]
        if isinstance(measured_at, str):
            try:
                measured_at = datetime.fromisoformat(measured_at)
            except ValueError:
                raise InvalidInputError("measured_at is an ISO date-time.", field="measured_at") from None
        if not isinstance(measured_at, datetime):
            raise InvalidInputError("measured_at is an ISO date-time.", field="measured_at")
        return {"measured_at": _iso(_not_after(measured_at, now, "measured_at")), **measures, "flags": flags}

    # Rules shared by recording and amending

    def _require_open(self) -> None:
        if self.status == Status.SIGNED:
            raise ConsultationSignedError(
                "This consultation is signed; only amendments may correct it.", current=self.view(clinical=False)
            )

    @staticmethod
    def _symptom(values: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {
            "name": _text(values.get("name"), "name", LONGEST["name"]),
            "onset": _onset(values.get("onset"), now),
            "severity": _choice(Severity, values.get("severity"), "severity"),
            "duration": _optional_text(values.get("duration"), "duration", LONGEST["duration"]),
        }

    @staticmethod
    def _diagnosis(values: dict[str, Any]) -> dict[str, Any]:
        code = values.get("code")
        if not isinstance(code, str):
            raise InvalidInputError("code is an ICD-10 code.", field="code")
        return {
            "code": icd10(code),
            "description": _text(values.get("description"), "description", LONGEST["description"]),
            "rank": _choice(Rank, values.get("rank"), "rank"),
            "status": _choice(DiagnosisStatus, values.get("status"), "status"),
        }

    def _check_one_primary(self, entry_id: str, values: dict[str, Any]) -> None:
        if values["rank"] != Rank.PRIMARY or values["status"] not in CURRENT_DIAGNOSIS:
            return
        for other in self.entries.values():
            current = other["current"]
            if (
                other["entry_id"] != entry_id
                and other["entry_kind"] == EntryKind.DIAGNOSIS
                and current["rank"] == Rank.PRIMARY
                and current["status"] in CURRENT_DIAGNOSIS
            ):
                raise PrimaryDiagnosisExistsError(
                    "This consultation already has a current primary diagnosis; rank this one secondary, "
                    "or amend the other first.",
                    current={"entry_id": other["entry_id"], **current},
                )

    # Views

    def view(self, clinical: bool = True, as_recorded: bool = False) -> dict[str, Any]:
        """The record as JSON-able values: clinical (current or as recorded) or administrative (no clinical content)."""
        if not clinical:
            return _private({"view": "administrative", **self._administrative()})
        values = "recorded" if as_recorded else "current"

        def entries(kind: EntryKind) -> list[dict[str, Any]]:
            return [
                {"entry_id": e["entry_id"], **e[values], **e["meta"], "amended": e["amended"]}
                for e in self.entries.values()
                if e["entry_kind"] == kind
            ]

        return self._clinical_view("as_recorded" if as_recorded else "current", entries, list(self.attachments.values()), self.amendments)

    def view_true_at(self, moment: datetime | None) -> dict[str, Any]:
        """The clinical view as it was clinically true at the moment (every entry as now amended, without one):
        the entries of entries_true_at, each with `true_since` and the `amendment_ids` its values include, the
        attachments uploaded by then, and the amendments of the entries shown."""
        shown = self.entries_true_at(moment)

        def entries(kind: EntryKind) -> list[dict[str, Any]]:
            return [
                {
                    "entry_id": e.entry["entry_id"],
                    **e.values,
                    **e.entry["meta"],
                    "amended": bool(e.amendments),
                    "amendment_ids": [a["amendment_id"] for a in e.amendments],
                    "true_since": e.true_since,
                }
                for e in shown
                if e.entry["entry_kind"] == kind
            ]

        ids = {e.entry["entry_id"] for e in shown}
        attachments = [a for a in self.attachments.values() if moment is None or clinically_true(a["uploaded_at"], moment)]
        return self._clinical_view("true_at", entries, attachments, [a for a in self.amendments if a["entry_id"] in ids])

    def entries_true_at(self, moment: datetime | None) -> list[EntryAt]:
        """Each entry as it was clinically true at the moment, in recording order: its values as recorded with,
        in the order they were recorded, every correction and every change over time that had taken effect by
        then (so a later amendment wins from its own time on); an entry not true yet is left out. Without a
        moment: every entry with every amendment."""
        amendments: dict[str, list[dict[str, Any]]] = {}
        for amendment in self.amendments:
            amendments.setdefault(amendment["entry_id"], []).append(amendment)
        shown = []
        for entry in self.entries.values():
            values, applied = dict(entry["recorded"]), []
            for amendment in amendments.get(entry["entry_id"], []):
                effective = amendment.get("effective_at")
                if moment is None or effective is None or clinically_true(effective, moment):
                    values.update(amendment["new"])
                    applied.append(amendment)
            since = self.true_since(EntryKind(entry["entry_kind"]), values)
            if moment is not None and not clinically_true(since, moment):
                continue
            changed = [datetime.fromisoformat(a["effective_at"]) for a in applied if a.get("effective_at")]
            shown.append(EntryAt(entry, values, applied, _iso(max(changed)) if changed else since))
        return shown

    def true_since(self, kind: EntryKind, values: dict[str, Any]) -> str:
        """When an entry's values were true clinically (ISO date or date-time): vital signs when measured, a
        symptom from its onset, the rest (and a symptom of unknown onset) from the consultation's start."""
        if kind == EntryKind.VITALS:
            return str(values["measured_at"])
        if kind == EntryKind.SYMPTOM and values.get("onset"):
            return str(values["onset"])
        return str(_iso(self.started_at))

    def _administrative(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "patient_id": self.patient_id,
            "doctor_id": self.doctor_id,
            "appointment_id": self.appointment_id,
            "kind": self.kind.value,
            "status": self.status.value,
            "started_at": _iso(self.started_at),
            "signed_at": _iso(self.signed_at),
            "signed_by": self.doctor_id if self.signed_at is not None else None,
            "follow_up": dict(self.follow_up) if self.follow_up else None,
            "follow_up_bookings": [dict(b) for b in self.follow_up_bookings],
        }

    def _clinical_view(
        self,
        name: str,
        entries: Callable[[EntryKind], list[dict[str, Any]]],
        attachments: list[dict[str, Any]],
        amendments: list[dict[str, Any]],
    ) -> dict[str, Any]:
        complaint = entries(EntryKind.COMPLAINT)
        return _private({
            "view": name,
            **self._administrative(),
            "chief_complaint": complaint[0] if complaint else None,
            "symptoms": entries(EntryKind.SYMPTOM),
            "vital_signs": entries(EntryKind.VITALS),
            "vital_sign_units": dict(vitals.UNITS),
            "diagnoses": entries(EntryKind.DIAGNOSIS),
            "notes": entries(EntryKind.NOTE),
            "attachments": [dict(a) for a in attachments],
            "amendments": amendments,
        })

    # Events: state only

    def _entry(self, entry_id: str, kind: EntryKind, values: dict[str, Any], recorded_at: datetime, **meta: Any) -> None:
        self.entries[entry_id] = {
            "entry_id": entry_id,
            "entry_kind": kind.value,
            "recorded": values,
            "current": dict(values),
            "meta": {"recorded_at": _iso(recorded_at), **meta},
            "amended": False,
        }

    @event("ComplaintRecorded", topic="medledger:Consultation.ComplaintRecorded.v1")
    def _complaint_recorded(self, entry_id: str, text: str, recorded_at: datetime, cause: dict[str, Any]) -> None:
        self._entry(entry_id, EntryKind.COMPLAINT, {"text": text}, recorded_at)

    @event("SymptomRecorded", topic="medledger:Consultation.SymptomRecorded.v1")
    def _symptom_recorded(
        self,
        entry_id: str,
        name: str,
        onset: str | None,
        severity: str,
        duration: str | None,
        recorded_at: datetime,
        cause: dict[str, Any],
    ) -> None:
        values = {"name": name, "onset": onset, "severity": severity, "duration": duration}
        self._entry(entry_id, EntryKind.SYMPTOM, values, recorded_at)

    @event("VitalSignsRecorded", topic="medledger:Consultation.VitalSignsRecorded.v1")
    def _vital_signs_recorded(
        self,
        entry_id: str,
        measured_at: datetime,
        measures: dict[str, float | None],
        flags: dict[str, str],
        recorded_at: datetime,
        cause: dict[str, Any],
    ) -> None:
        values = {"measured_at": _iso(measured_at), **measures, "flags": dict(flags)}
        self._entry(entry_id, EntryKind.VITALS, values, recorded_at)

    @event("DiagnosisRecorded", topic="medledger:Consultation.DiagnosisRecorded.v1")
    def _diagnosis_recorded(
        self,
        entry_id: str,
        code: str,
        description: str,
        rank: str,
        status: str,
        recorded_at: datetime,
        cause: dict[str, Any],
    ) -> None:
        values = {"code": code, "description": description, "rank": rank, "status": status}
        self._entry(entry_id, EntryKind.DIAGNOSIS, values, recorded_at)

    @event("NoteAdded", topic="medledger:Consultation.NoteAdded.v1")
    def _note_added(self, entry_id: str, text: str, author_id: str, recorded_at: datetime, cause: dict[str, Any]) -> None:
        self._entry(entry_id, EntryKind.NOTE, {"text": text}, recorded_at, author_id=author_id)

    @event("AttachmentAdded", topic="medledger:Consultation.AttachmentAdded.v1")
    def _attached(
        self,
        attachment_id: str,
        kind: str,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        uploaded_at: datetime,
        cause: dict[str, Any],
    ) -> None:
        self.attachments[attachment_id] = {
            "attachment_id": attachment_id,
            "kind": kind,
            "filename": filename,
            "content_type": content_type,
            "size": size,
            "sha256": sha256,
            "uploaded_at": _iso(uploaded_at),
        }

    @event("FollowUpRecommended", topic="medledger:Consultation.FollowUpRecommended.v1")
    def _follow_up_recommended(self, on: date, reason: str, recommended_at: datetime, cause: dict[str, Any]) -> None:
        self.follow_up = {"date": on.isoformat(), "reason": reason, "recommended_at": _iso(recommended_at)}

    @event("FollowUpBooked", topic="medledger:Consultation.FollowUpBooked.v1")
    def _follow_up_booked(self, appointment_id: str, start: datetime, cause: dict[str, Any]) -> None:
        self.follow_up_bookings.append({"appointment_id": appointment_id, "start": _iso(start)})

    @event("Signed", topic="medledger:Consultation.Signed.v1")
    def _signed(self, signed_at: datetime, cause: dict[str, Any]) -> None:
        self.status = Status.SIGNED
        self.signed_at = signed_at

    class EntryAmended(Aggregate.Event):
        """An entry corrected, or (with effective_at, a symptom or diagnosis) changed at that clinical time.

        Version 2 added effective_at; an amendment of version 1 (topic ...EntryAmended.v1) was a correction."""

        TOPIC = "medledger:Consultation.EntryAmended.v2"
        class_version = 2
        amendment_id: str
        entry_id: str
        entry_kind: str
        reason: str
        previous: dict[str, Any]
        new: dict[str, Any]
        amended_at: datetime
        after_signing: bool
        effective_at: datetime | None
        cause: dict[str, Any]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["effective_at"] = None

    @event(EntryAmended)
    def _amended(
        self,
        amendment_id: str,
        entry_id: str,
        entry_kind: str,
        reason: str,
        previous: dict[str, Any],
        new: dict[str, Any],
        amended_at: datetime,
        after_signing: bool,
        effective_at: datetime | None,
        cause: dict[str, Any],
    ) -> None:
        entry = self.entries[entry_id]
        entry["current"] = {**entry["current"], **new}
        entry["amended"] = True
        self.amendments.append(
            {
                "amendment_id": amendment_id,
                "entry_id": entry_id,
                "entry_kind": entry_kind,
                "reason": reason,
                "previous": previous,
                "new": new,
                "amended_at": _iso(amended_at),
                "amended_by": self.doctor_id,
                "after_signing": after_signing,
                "effective_at": _iso(effective_at),
            }
        )


LEGACY_TOPICS = {"medledger:Consultation.EntryAmended.v1": Consultation.EntryAmended}
"""Older topics still in stores, each read as (and upcast to) the current event class; projectors follow them too."""
for _topic, _event_class in LEGACY_TOPICS.items():
    register_topic(_topic, _event_class)
