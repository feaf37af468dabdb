"""The prescriptions read model: each prescription's own view as a document, its searched columns and its items; and the queries over it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select, delete, func, insert, select, update

from domain.dosing import Dose, is_taken, schedule
from domain.prescription import MAX_DURATION_DAYS, Prescription, Status
from projections.base import Projector
from projections.clinical_tables import prescription_items, prescriptions
from projections.queries import Page, _page, patients_in_care


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class PrescriptionRecords(Projector):
    name = "prescriptions"
    tables = (prescriptions, prescription_items)

    def __init__(self) -> None:
        topics = [
            Prescription.Written,
            Prescription.ItemsRevised,
            Prescription.SafetyChecked,
            Prescription.Issued,
            Prescription.Dispensed,
            Prescription.Cancelled,
            Prescription.Expired,
            Prescription.Renewed,
            Prescription.Rechecked,
        ]
        self.handlers = {event_class.TOPIC: self.write for event_class in topics}

    def write(self, conn: Connection, e: Any) -> None:
        prescription = self.load(e.originator_id, e.originator_version)
        view = prescription.view()
        prescription_id = view["id"]
        values = {
            "patient_id": view["patient_id"],
            "doctor_id": view["doctor_id"],
            "consultation_id": view["consultation_id"],
            "status": view["status"],
            "written_at": _moment(view["written_at"]),
            "issued_at": _moment(view["issued_at"]),
            "valid_until": date.fromisoformat(view["valid_until"]) if view["valid_until"] else None,
            "renewed_from": view["renewed_from"],
            "renewed_by": view["renewed_by"],
            "hazard_flagged": view["hazard_flagged"],
            "document": view,
            "version": view["version"],
            "updated_at": e.timestamp,
        }
        moved = conn.execute(update(prescriptions).where(prescriptions.c.id == prescription_id).values(**values))
        if moved.rowcount == 0:
            conn.execute(insert(prescriptions).values(id=prescription_id, **values))
        if isinstance(e, Prescription.Written | Prescription.ItemsRevised):
            conn.execute(delete(prescription_items).where(prescription_items.c.prescription_id == prescription_id))
            conn.execute(
                insert(prescription_items),
                [
                    {
                        "prescription_id": prescription_id,
                        "item_id": item["item_id"],
                        "patient_id": view["patient_id"],
                        "medication": item["medication"]["name"],
                        "strength": item["medication"]["strength"],
                        "form": item["medication"]["form"],
                        "dose": item["dose"],
                        "route": item["route"],
                        "frequency": item["frequency"],
                        "duration_days": item["duration_days"],
                        "quantity": item["quantity"],
                        "refills": item["refills"],
                        "instructions": item["instructions"],
                    }
                    for item in view["items"]
                ],
            )


def get_prescription(conn: Connection, prescription_id: str) -> dict[str, Any] | None:
    document = conn.execute(select(prescriptions.c.document).where(prescriptions.c.id == prescription_id)).scalar_one_or_none()
    return dict(document) if document is not None else None


def search_prescriptions(
    conn: Connection,
    *,
    patient_id: str | None,
    doctor_id: str | None,
    status: str | None,
    medication: str | None,
    written_from: datetime | None,
    written_to: datetime | None,
    in_care_of: tuple[str, datetime, timedelta] | None,
    page: int,
    page_size: int,
) -> Page:
    """Prescriptions, newest first, by patient, doctor, status, medication (part of a name) and date written.

    in_care_of (doctor id, now, post-visit access) keeps only the patients that doctor may open now.
    """
    query: Select[Any] = select(prescriptions.c.document).order_by(prescriptions.c.written_at.desc(), prescriptions.c.id)
    if patient_id:
        query = query.where(prescriptions.c.patient_id == patient_id)
    if doctor_id:
        query = query.where(prescriptions.c.doctor_id == doctor_id)
    if status:
        query = query.where(prescriptions.c.status == status)
    if medication:
        items = select(prescription_items.c.prescription_id).where(
            func.lower(prescription_items.c.medication).contains(medication.strip().lower(), autoescape=True)
        )
        query = query.where(prescriptions.c.id.in_(items))
    if written_from:
        query = query.where(prescriptions.c.written_at >= written_from)
    if written_to:
        query = query.where(prescriptions.c.written_at < written_to)
    if in_care_of:
        query = query.where(prescriptions.c.patient_id.in_(patients_in_care(*in_care_of)))
    found = _page(conn, query, page, page_size)
    return Page([dict(row["document"]) for row in found.items], found.total, found.page, found.page_size)


REMINDING = (Status.ISSUED.value, Status.PARTIALLY_DISPENSED.value, Status.DISPENSED.value, Status.EXPIRED.value)


LONGEST_COURSE = timedelta(days=MAX_DURATION_DAYS + 8)


def taken_prescriptions(conn: Connection, patient_id: str | None, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Views of the prescriptions being taken (of one patient, or of everyone) whose course may reach into [start, end)."""
    query = select(prescriptions.c.document).where(
        prescriptions.c.status.in_(REMINDING),
        prescriptions.c.issued_at < end,
        prescriptions.c.issued_at >= start - LONGEST_COURSE,
    )
    if patient_id is not None:
        query = query.where(prescriptions.c.patient_id == patient_id)
    documents: Iterable[Any] = conn.execute(query.order_by(prescriptions.c.id)).scalars()
    return [dict(d) for d in documents if is_taken(d)]


WIDEST_UTC_OFFSET = timedelta(hours=14)


def reminders(conn: Connection, patient_id: str | None, start: date | datetime, end: date | datetime) -> list[Dose]:
    """The doses due from start until end, of one patient or of everyone, in time order.

    A date-time bound is an instant (start included, end excluded); a date bound is a whole local day in the
    time zone of each dose's prescription (start from its beginning, end through its end).
    """
    first = start if isinstance(start, datetime) else _utc_midnight(start) - WIDEST_UTC_OFFSET
    last = end if isinstance(end, datetime) else _utc_midnight(end + timedelta(days=1)) + WIDEST_UTC_OFFSET
    taken = taken_prescriptions(conn, patient_id, first, last)
    zones = {prescription["id"]: ZoneInfo(prescription["timezone"]) for prescription in taken}

    def on_local_days(dose: Dose) -> bool:
        day = dose.due_at.astimezone(zones[dose.prescription_id]).date()
        return (isinstance(start, datetime) or day >= start) and (isinstance(end, datetime) or day <= end)

    return [dose for dose in schedule(taken, first, last) if on_local_days(dose)]


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)
