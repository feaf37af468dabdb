"""Consultation records: the aggregate's own current view at each event, its searched columns and child rows; and search."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Select, delete, exists, insert, or_, select

from domain.consultation import ADMINISTRATIVE_FIELDS, LEGACY_TOPICS, Consultation
from domain.vitals import MEASURES
from projections.base import Projector
from projections.clinical_tables import consultation_diagnoses, consultations, vital_signs
from projections.queries import Page, _page, patients_in_care

CONSULTATION_EVENTS = (
    Consultation.Started,
    Consultation.ComplaintRecorded,
    Consultation.SymptomRecorded,
    Consultation.VitalSignsRecorded,
    Consultation.DiagnosisRecorded,
    Consultation.NoteAdded,
    Consultation.AttachmentAdded,
    Consultation.FollowUpRecommended,
    Consultation.FollowUpBooked,
    Consultation.Signed,
    Consultation.EntryAmended,
)


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ConsultationRecords(Projector):
    name = "consultations"
    tables = (consultations, consultation_diagnoses, vital_signs)

    def __init__(self) -> None:
        self.handlers = {topic: self.write for topic in [*(kind.TOPIC for kind in CONSULTATION_EVENTS), *LEGACY_TOPICS]}

    def write(self, conn: Connection, event: Any) -> None:
        """Replaces the consultation's rows by its view as of this event."""
        consultation: Consultation = self.load(event.originator_id, event.originator_version)
        document = consultation.view()
        key = document["id"]
        started_at = _moment(document["started_at"])
        for table, column in ((consultations, consultations.c.id), (consultation_diagnoses, consultation_diagnoses.c.consultation_id), (vital_signs, vital_signs.c.consultation_id)):
            conn.execute(delete(table).where(column == key))
        complaint = document["chief_complaint"]
        conn.execute(
            insert(consultations).values(
                id=key,
                patient_id=document["patient_id"],
                doctor_id=document["doctor_id"],
                appointment_id=document["appointment_id"],
                kind=document["kind"],
                status=document["status"],
                started_at=started_at,
                signed_at=_moment(document["signed_at"]),
                chief_complaint=complaint["text"] if complaint else None,
                document=document,
                version=event.originator_version,
                updated_at=event.timestamp,
            )
        )
        diagnoses = [
            {
                "consultation_id": key,
                "entry_id": d["entry_id"],
                "patient_id": document["patient_id"],
                "doctor_id": document["doctor_id"],
                "code": d["code"],
                "description": d["description"],
                "rank": d["rank"],
                "status": d["status"],
                "recorded_at": _moment(d["recorded_at"]),
                "consultation_started_at": started_at,
            }
            for d in document["diagnoses"]
        ]
        if diagnoses:
            conn.execute(insert(consultation_diagnoses), diagnoses)
        readings = [
            {
                "consultation_id": key,
                "entry_id": v["entry_id"],
                "patient_id": document["patient_id"],
                "measured_at": _moment(v["measured_at"]),
                **{m: v[m] for m in MEASURES},
                "flags": v["flags"],
            }
            for v in document["vital_signs"]
        ]
        if readings:
            conn.execute(insert(vital_signs), readings)


def administrative(document: dict[str, Any]) -> dict[str, Any]:
    """The administrative view of a stored document: no clinical content."""
    return {"view": "administrative", **{k: document.get(k) for k in ADMINISTRATIVE_FIELDS}}


def search_consultations(
    conn: Connection,
    *,
    clinical: bool,
    patient_id: str | None = None,
    doctor_id: str | None = None,
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    diagnosis_code: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    in_care_of: tuple[str, datetime, timedelta] | None = None,
    page: int,
    page_size: int,
) -> Page:
    """Consultations newest first; in_care_of=(doctor_id, now, after_visit) keeps those of that doctor's patients."""
    c = consultations
    query: Select[Any] = select(c.c.document).order_by(c.c.started_at.desc(), c.c.id)
    if in_care_of is not None:
        query = query.where(c.c.patient_id.in_(patients_in_care(*in_care_of)))
    if patient_id:
        query = query.where(c.c.patient_id == patient_id)
    if doctor_id:
        query = query.where(c.c.doctor_id == doctor_id)
    if started_from:
        query = query.where(c.c.started_at >= started_from.astimezone(timezone.utc))
    if started_to:
        query = query.where(c.c.started_at < started_to.astimezone(timezone.utc))
    if status:
        query = query.where(c.c.status == status)
    if kind:
        query = query.where(c.c.kind == kind)
    if diagnosis_code:
        d = consultation_diagnoses
        query = query.where(
            exists().where(
                d.c.consultation_id == c.c.id,
                _code_or_subcode(d.c.code, diagnosis_code),
            )
        )
    raw = _page(conn, query, page, page_size)
    documents = [row["document"] for row in raw.items]
    return Page([d if clinical else administrative(d) for d in documents], raw.total, raw.page, raw.page_size)


def _code_or_subcode(column: Any, code: str) -> Any:
    """The code and its subcodes: I20 finds I20 and I20.9; E11.6 finds E11.6 and E11.65."""
    if "." in code:
        return column.startswith(code, autoescape=True)
    return or_(column == code, column.startswith(f"{code}.", autoescape=True))
