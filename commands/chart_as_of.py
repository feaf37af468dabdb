"""The patient chart as it stood, from the events: every record of the patient as recorded by one moment (known_at)
and as clinically true at another (true_at), in the chart's shape, each entry saying since when it was known and true.

Times, and what each limits:
- known_at, the recorded time (the event's timestamp, as in a record's history): every record is replayed to its
  last event recorded at or before it;
- true_at, the clinical time: a consultation is in the timeline from its start; its entries count from when they
  were true (vital signs when measured, a symptom from its onset, the rest from the consultation's start), with the
  amendments that held then (a correction always, a change of a symptom or diagnosis from its effective_at); prescriptions,
  appointments and the care record have no clinical time but when their changes were recorded, so they stand as
  of the earlier of the two moments; the profile (demographics, allergies) describes the person and has none: it
  stands as known at known_at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from commands.access import record_access
from commands.audit import Histories, may_audit, patient_records, record_class, refuse_if_erased
from commands.base import Actor, RecordNotFoundError, Services
from commands.read_log import reads_recorded
from domain import prescription
from domain.appointment import Appointment
from domain.care import PatientCare
from domain.consultation import CURRENT_DIAGNOSIS, Consultation
from domain.patients import Patient
from domain.prescription import Prescription
from domain.read_log import Row, Shown
from domain.vitals import MEASURES, trend

CHART_RECORDS = (Patient, PatientCare, Appointment, Consultation, Prescription)
CURRENT_PROBLEM_STATUSES = frozenset(status.value for status in CURRENT_DIAGNOSIS)


@dataclass(frozen=True)
class Moments:
    """The two times a chart is asked at: recorded by known_at, clinically true at true_at (None: no limit)."""

    known_at: datetime | None = None
    true_at: datetime | None = None

    def known(self, events: Sequence[Any]) -> int:
        """The version of the last event recorded at or before known_at (0 if none was yet)."""
        return _last_recorded_by(events, self.known_at)

    def settled(self, events: Sequence[Any]) -> int:
        """The same for a record whose changes count clinically from when they were recorded: by both moments."""
        given = [moment for moment in (self.known_at, self.true_at) if moment is not None]
        return _last_recorded_by(events, min(given) if given else None)


def _last_recorded_by(events: Sequence[Any], moment: datetime | None) -> int:
    if moment is None:
        return len(events)
    return max((e.originator_version for e in events if e.timestamp <= moment), default=0)


@dataclass(frozen=True)
class Replayed:
    """A record's state after one of its versions, and when that version was recorded."""

    record: Any
    recorded_at: datetime

    @property
    def known_since(self) -> str:
        return self.recorded_at.isoformat()


class ChartAsOf:
    """Builds the chart's sections from the patient's streams (given as record id -> events)."""

    def __init__(self, histories: Histories, moments: Moments, clinical: bool, streams: dict[UUID, Sequence[Any]]) -> None:
        self.histories = histories
        self.moments = moments
        self.clinical = clinical
        self.streams: dict[type[Aggregate], list[tuple[UUID, Sequence[Any]]]] = {cls: [] for cls in CHART_RECORDS}
        for uid, events in streams.items():
            cls = record_class(events[0]) if events else None
            if cls in self.streams:
                self.streams[cls].append((uid, events))

    def _replayed(self, uid: UUID, events: Sequence[Any], version: int) -> Replayed | None:
        if version == 0:
            return None
        return Replayed(self.histories.state_at(uid, version), events[version - 1].timestamp)

    def _each(self, cls: type[Aggregate], settled: bool) -> list[tuple[Replayed, Sequence[Any]]]:
        found = []
        for uid, events in self.streams[cls]:
            version = self.moments.settled(events) if settled else self.moments.known(events)
            if (replayed := self._replayed(uid, events, version)) is not None:
                found.append((replayed, events[:version]))
        return found

    # Sections

    def profile(self, patient_id: str) -> dict[str, Any]:
        [(replayed, _)] = self._each(Patient, settled=False) or [(None, None)]
        if replayed is None:
            raise RecordNotFoundError(f"Patient {patient_id} was not registered yet at {self.moments.known_at}.")
        profile = dict(replayed.record.profile)
        return {
            "demographics": {k: v for k, v in profile.items() if k != "allergies"},
            "allergies": profile.get("allergies") or [],
            "profile_known_since": replayed.known_since,
        }

    def active_prescriptions(self) -> list[dict[str, Any]]:
        active = [
            (replayed.record, {**replayed.record.view(), "true_since": replayed.known_since, "known_since": replayed.known_since})
            for replayed, _ in self._each(Prescription, settled=True)
            if replayed.record.status in prescription.ACTIVE
        ]
        active.sort(key=lambda found: str(found[0].id))
        active.sort(key=lambda found: found[0].issued_at, reverse=True)
        return [document for _, document in active]

    def appointments(self) -> list[dict[str, Any]]:
        found = sorted((replayed for replayed, _ in self._each(Appointment, settled=True)), key=lambda r: str(r.record.id))
        found.sort(key=lambda r: r.record.start, reverse=True)
        return [_appointment(replayed.record, replayed.known_since) for replayed in found]

    def care(self) -> dict[str, Any]:
        [(replayed, _)] = self._each(PatientCare, settled=True) or [(None, None)]
        if replayed is None:
            return {"relationships": [], "emergency_access": [], "true_since": None, "known_since": None}
        care: PatientCare = replayed.record
        return {
            "relationships": [r.as_dict() for r in care.relationships.values()],
            "emergency_access": [g.as_dict() for g in care.emergency],
            "true_since": replayed.known_since,
            "known_since": replayed.known_since,
        }

    def consultations(self) -> list[dict[str, Any]]:
        """Each consultation as recorded by known_at, newest first: clinically, its entries as true at true_at (with
        when each entry, amendment and attachment was recorded), else its administrative view. One that started
        after true_at is left out of the timeline and the problems, but vital signs taken before it began count."""
        documents = []
        for replayed, events in self._each(Consultation, settled=False):
            record: Consultation = replayed.record
            if self.clinical:
                document = record.view_true_at(self.moments.true_at)
                _with_recorded_times(document, _recorded(events))
            else:
                document = record.view(clinical=False)
            documents.append({**document, "true_since": document["started_at"], "known_since": replayed.known_since})
        documents.sort(key=lambda d: d["id"])
        documents.sort(key=lambda d: datetime.fromisoformat(d["started_at"]), reverse=True)
        return documents

    def timeline(self, consultations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The consultations that had started by true_at."""
        true_at = self.moments.true_at
        return [d for d in consultations if true_at is None or datetime.fromisoformat(d["started_at"]) <= true_at]


def _appointment(appointment: Appointment, known_since: str) -> dict[str, Any]:
    return {
        "id": str(appointment.id),
        "doctor_id": appointment.doctor_id,
        "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(),
        "status": appointment.status.value,
        "overbooked": appointment.overbooked,
        "consultation_id": appointment.consultation_id,
        "true_since": known_since,
        "known_since": known_since,
    }


def _recorded(events: Sequence[Any]) -> dict[str, datetime]:
    """When each entry, amendment and attachment of a consultation was recorded, by its id."""
    times: dict[str, datetime] = {}
    for event in events:
        key = getattr(event, "amendment_id", None) or getattr(event, "entry_id", None) or getattr(event, "attachment_id", None)
        if key:
            times[key] = event.timestamp
    return times


def _with_recorded_times(document: dict[str, Any], recorded: dict[str, datetime]) -> None:
    """Adds known_since to each entry (the latest of its recording and the amendments its values include), each
    amendment and each attachment of a consultation's document."""
    complaint = [document["chief_complaint"]] if document["chief_complaint"] else []
    for entry in (*complaint, *document["symptoms"], *document["vital_signs"], *document["diagnoses"], *document["notes"]):
        entry["known_since"] = max(recorded[key] for key in (entry["entry_id"], *entry["amendment_ids"])).isoformat()
    for amendment in document["amendments"]:
        amendment["known_since"] = recorded[amendment["amendment_id"]].isoformat()
    for attachment in document["attachments"]:
        attachment["known_since"] = recorded[attachment["attachment_id"]].isoformat()


def active_problems(consultations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """As the chart: each diagnosis code's latest entry (latest consultation, then latest recorded), if that entry
    keeps the problem current."""
    latest: dict[str, tuple[tuple[datetime, datetime], dict[str, Any], dict[str, Any]]] = {}
    for document in consultations:
        for diagnosis in document["diagnoses"]:
            key = (datetime.fromisoformat(document["started_at"]), datetime.fromisoformat(diagnosis["recorded_at"]))
            if diagnosis["code"] not in latest or key > latest[diagnosis["code"]][0]:
                latest[diagnosis["code"]] = (key, document, diagnosis)
    current = sorted(
        (found for found in latest.values() if found[2]["status"] in CURRENT_PROBLEM_STATUSES),
        key=lambda found: found[2]["code"],
    )
    current.sort(key=lambda found: found[0][0], reverse=True)
    return [
        {
            "code": diagnosis["code"],
            "description": diagnosis["description"],
            "rank": diagnosis["rank"],
            "status": diagnosis["status"],
            "consultation_id": document["id"],
            "doctor_id": document["doctor_id"],
            "recorded_at": diagnosis["recorded_at"],
            "true_since": diagnosis["true_since"],
            "known_since": diagnosis["known_since"],
        }
        for _, document, diagnosis in current
    ]


def vitals_with_trend(consultations: list[dict[str, Any]]) -> dict[str, Any]:
    """As the chart: per measure, the latest reading, its change from the one before and the last readings."""
    series: dict[str, list[tuple[datetime, str, dict[str, Any]]]] = {measure: [] for measure in MEASURES}
    for document in consultations:
        for reading in document["vital_signs"]:
            for measure in MEASURES:
                if reading.get(measure) is None:
                    continue
                point = {
                    "value": reading[measure],
                    "measured_at": reading["measured_at"],
                    "flag": reading["flags"].get(measure),
                    "true_since": reading["true_since"],
                    "known_since": reading["known_since"],
                }
                series[measure].append((datetime.fromisoformat(reading["measured_at"]), reading["entry_id"], point))
    chart = {}
    for measure, points in series.items():
        if points:
            points.sort(key=lambda p: p[1])
            points.sort(key=lambda p: p[0], reverse=True)
            chart[measure] = trend(measure, [point for _, _, point in points])
    return chart


def chart_as_of(
    svc: Services, histories: Histories, actor: Actor, patient_id: str, moments: Moments, page: int, page_size: int
) -> dict[str, Any]:
    """The chart as recorded by known_at and clinically true at true_at: the patient themself and auditors; admins
    the administrative chart (no problems, vital signs or consultation content; the prescriptions they dispense);
    doctors and analysts are refused; anyone else is told there is no such patient. The read is in the read log
    before the chart is answered; "not found" if the patient was not registered yet at known_at."""
    may_audit(actor)
    refuse_if_erased(svc, actor, patient_id)
    access = record_access(svc, actor, patient_id)
    streams = histories.events_of(patient_records(histories, access.patient_id))
    chart = ChartAsOf(histories, moments, access.clinical, streams)
    profile = chart.profile(access.patient_id)
    prescriptions = chart.active_prescriptions()
    if access.clinical:
        shown = [Row(access.patient_id, Shown.CHART, access.patient_id, access.basis)]
    else:
        shown = [Row(access.patient_id, Shown.PRESCRIPTION, p["id"], access.basis) for p in prescriptions]
    with reads_recorded(svc, actor, "chart as of", shown):
        consultations = chart.consultations()
        started = chart.timeline(consultations)
        return {
            "patient_id": access.patient_id,
            "known_at": moments.known_at.isoformat() if moments.known_at else None,
            "true_at": moments.true_at.isoformat() if moments.true_at else None,
            "view": "clinical" if access.clinical else "administrative",
            **profile,
            "active_problems": active_problems(started) if access.clinical else [],
            "active_prescriptions": prescriptions,
            "vitals": vitals_with_trend(consultations) if access.clinical else {},
            "timeline": {"items": started[(page - 1) * page_size : page * page_size], "total": len(started), "page": page, "page_size": page_size},
            "appointments": chart.appointments(),
            "care": chart.care(),
        }
