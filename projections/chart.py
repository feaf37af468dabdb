"""The patient chart: one read of everything a clinician needs first, from the record's read models."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, literal, select, union_all

from domain import prescription
from domain.consultation import CURRENT_DIAGNOSIS
from domain.vitals import MEASURES, TREND_POINTS, trend
from projections.clinical_tables import consultation_diagnoses, consultations, prescriptions, vital_signs
from projections.queries import Page, _page, _plain
from projections.tables import patients

CURRENT_PROBLEM_STATUSES = sorted(status.value for status in CURRENT_DIAGNOSIS)
ACTIVE_PRESCRIPTION_STATUSES = sorted(status.value for status in prescription.ACTIVE)


def patient_chart(conn: Connection, patient_id: str, *, page: int, page_size: int) -> dict[str, Any] | None:
    """Demographics, allergies, active problems and prescriptions, vitals with trend and the consultation timeline."""
    patient = conn.execute(select(patients).where(patients.c.id == patient_id)).mappings().one_or_none()
    if patient is None:
        return None
    profile = dict(patient["profile"])
    timeline = consultation_timeline(conn, patient_id, page=page, page_size=page_size)
    return {
        "patient_id": patient_id,
        "demographics": {k: v for k, v in profile.items() if k != "allergies"},
        "allergies": profile.get("allergies") or [],
        "active_problems": active_problems(conn, patient_id),
        "active_prescriptions": active_prescriptions(conn, patient_id),
        "vitals": vitals_with_trend(conn, patient_id),
        "timeline": {
            "items": timeline.items,
            "total": timeline.total,
            "page": timeline.page,
            "page_size": timeline.page_size,
        },
    }


def active_problems(conn: Connection, patient_id: str) -> list[dict[str, Any]]:
    """Each diagnosis code's most recent entry, if that entry keeps the problem current."""
    d = consultation_diagnoses
    latest = (
        select(
            d,
            func.row_number()
            .over(partition_by=d.c.code, order_by=(d.c.consultation_started_at.desc(), d.c.recorded_at.desc()))
            .label("n"),
        )
        .where(d.c.patient_id == patient_id)
        .subquery()
    )
    rows = conn.execute(
        select(latest)
        .where(latest.c.n == 1, latest.c.status.in_(CURRENT_PROBLEM_STATUSES))
        .order_by(latest.c.consultation_started_at.desc(), latest.c.code)
    ).mappings()
    return [
        {
            "code": row["code"],
            "description": row["description"],
            "rank": row["rank"],
            "status": row["status"],
            "consultation_id": row["consultation_id"],
            "doctor_id": row["doctor_id"],
            "recorded_at": row["recorded_at"],
        }
        for row in map(_plain, rows)
    ]


def active_prescriptions(conn: Connection, patient_id: str) -> list[dict[str, Any]]:
    query = (
        select(prescriptions.c.document)
        .where(prescriptions.c.patient_id == patient_id, prescriptions.c.status.in_(ACTIVE_PRESCRIPTION_STATUSES))
        .order_by(prescriptions.c.issued_at.desc(), prescriptions.c.id)
    )
    return [row.document for row in conn.execute(query)]


def vitals_with_trend(conn: Connection, patient_id: str) -> dict[str, Any]:
    """Per measure: the latest reading, its change from the one before, and the last readings newest first.

    One round trip of one indexed, limited read per measure, however many readings the patient has.
    """
    v = vital_signs
    latest = [
        select(literal(measure).label("measure"), v.c[measure].label("value"), v.c.measured_at, v.c.entry_id, v.c.flags)
        .where(v.c.patient_id == patient_id, v.c[measure].is_not(None))
        .order_by(v.c.measured_at.desc(), v.c.entry_id)
        .limit(TREND_POINTS)
        .subquery()
        for measure in MEASURES
    ]
    series: dict[str, list[dict[str, Any]]] = {m: [] for m in MEASURES}
    query = union_all(*(select(part) for part in latest))
    rows = sorted(map(_plain, conn.execute(query).mappings()), key=lambda r: r["entry_id"])
    for row in sorted(rows, key=lambda r: r["measured_at"], reverse=True):
        flag = (row["flags"] or {}).get(row["measure"])
        series[row["measure"]].append({"value": row["value"], "measured_at": row["measured_at"], "flag": flag})
    return {measure: trend(measure, points) for measure, points in series.items() if points}


def consultation_timeline(conn: Connection, patient_id: str, *, page: int, page_size: int) -> Page:
    """The patient's consultations newest first, each as its full document (notes, attachments, amendments)."""
    query = (
        select(consultations.c.document)
        .where(consultations.c.patient_id == patient_id)
        .order_by(consultations.c.started_at.desc(), consultations.c.id)
    )
    raw = _page(conn, query, page, page_size)
    return Page([row["document"] for row in raw.items], raw.total, raw.page, raw.page_size)

