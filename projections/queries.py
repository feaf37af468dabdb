"""Queries over the read models: plain selects returning plain dicts, paginated where lists can grow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, or_, select, union

from domain.appointment import IN_CALENDAR, VisitAccess
from domain.care import post_visit_cutoff
from domain.doctors import WeeklyAvailability
from domain.shared import overlaps
from projections.clinical_tables import care_relationships, care_visits, emergency_access
from projections.tables import accounts, appointments, doctor_leave, doctors, patients


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def _page(conn: Connection, query: Select[Any], page: int, page_size: int) -> Page:
    total = conn.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    rows = conn.execute(query.limit(page_size).offset((page - 1) * page_size)).mappings().all()
    return Page([_plain(row) for row in rows], total, page, page_size)


def _plain(row: Any) -> dict[str, Any]:
    values = dict(row)
    for key, value in values.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            values[key] = value.replace(tzinfo=timezone.utc)
    return values


# Doctors


def get_doctor(conn: Connection, doctor_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(doctors).where(doctors.c.id == doctor_id)).mappings().one_or_none()
    return _plain(row) if row else None


def _doctor_filter(specialty: str | None, name: str | None) -> Select[Any]:
    query = select(doctors).order_by(doctors.c.name, doctors.c.id)
    if specialty:
        query = query.where(func.lower(doctors.c.specialization) == specialty.lower())
    if name:
        query = query.where(func.lower(doctors.c.name).contains(name.lower(), autoescape=True))
    return query


def list_doctors(
    conn: Connection,
    *,
    specialty: str | None,
    name: str | None,
    available_on: date | None,
    now: datetime,
    page: int,
    page_size: int,
) -> Page:
    query = _doctor_filter(specialty, name)
    if available_on is None:
        return _page(conn, query, page, page_size)
    candidates = [_plain(row) for row in conn.execute(query).mappings().all()]
    free = _free_slots_by_doctor(conn, candidates, available_on, available_on, now)
    matching = [doctor for doctor in candidates if free.get(doctor["id"])]
    start = (page - 1) * page_size
    return Page(matching[start : start + page_size], len(matching), page, page_size)


def leave_days(conn: Connection, doctor_id: str, first: date, last: date) -> dict[date, str]:
    rows = conn.execute(
        select(doctor_leave.c.day, doctor_leave.c.reason).where(
            doctor_leave.c.doctor_id == doctor_id, doctor_leave.c.day >= first, doctor_leave.c.day <= last
        )
    ).all()
    return {day: reason for day, reason in rows}


def free_slots(conn: Connection, doctor: dict[str, Any], first: date, last: date, now: datetime) -> list[dict[str, Any]]:
    return _free_slots_by_doctor(conn, [doctor], first, last, now).get(doctor["id"], [])


def _free_slots_by_doctor(
    conn: Connection, candidates: Sequence[dict[str, Any]], first: date, last: date, now: datetime
) -> dict[str, list[dict[str, Any]]]:
    with_hours = [d for d in candidates if d["availability"]]
    if not with_hours:
        return {}
    ids = [d["id"] for d in with_hours]
    taken: dict[str, list[tuple[datetime, datetime]]] = {}
    for doctor_id, start, end in conn.execute(
        select(appointments.c.doctor_id, appointments.c.start, appointments.c.end).where(
            appointments.c.doctor_id.in_(ids),
            appointments.c.day >= first,
            appointments.c.day <= last,
            appointments.c.status.in_(sorted(status.value for status in IN_CALENDAR)),
        )
    ):
        taken.setdefault(doctor_id, []).append((_utc(start), _utc(end)))
    on_leave = set(
        conn.execute(
            select(doctor_leave.c.doctor_id, doctor_leave.c.day).where(
                doctor_leave.c.doctor_id.in_(ids), doctor_leave.c.day >= first, doctor_leave.c.day <= last
            )
        ).all()
    )
    result: dict[str, list[dict[str, Any]]] = {}
    for doctor in with_hours:
        availability = WeeklyAvailability.from_dict(doctor["availability"])
        busy = taken.get(doctor["id"], [])
        slots = []
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            if (doctor["id"], day) in on_leave:
                continue
            slots += [
                {"start": start, "end": end}
                for start, end in availability.slots_on(day)
                if start > now and not any(overlaps(start, end, b_start, b_end) for b_start, b_end in busy)
            ]
        result[doctor["id"]] = slots
    return result


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


# Appointments


def get_appointment(conn: Connection, appointment_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(appointments).where(appointments.c.id == appointment_id)).mappings().one_or_none()
    return _plain(row) if row else None


def list_appointments(
    conn: Connection,
    *,
    doctor_id: str | None,
    patient_id: str | None,
    status: str | None,
    start_from: datetime | None,
    start_to: datetime | None,
    page: int,
    page_size: int,
) -> Page:
    query = select(appointments).order_by(appointments.c.start, appointments.c.id)
    if doctor_id:
        query = query.where(appointments.c.doctor_id == doctor_id)
    if patient_id:
        query = query.where(appointments.c.patient_id == patient_id)
    if status:
        query = query.where(appointments.c.status == status)
    if start_from:
        query = query.where(appointments.c.start >= start_from.astimezone(timezone.utc))
    if start_to:
        query = query.where(appointments.c.start < start_to.astimezone(timezone.utc))
    return _page(conn, query, page, page_size)


def doctor_day(conn: Connection, doctor: dict[str, Any], day: date, now: datetime) -> dict[str, Any]:
    rows = conn.execute(
        select(appointments, patients.c.full_name.label("patient_name"))
        .join(patients, patients.c.id == appointments.c.patient_id, isouter=True)
        .where(appointments.c.doctor_id == doctor["id"], appointments.c.day == day)
        .order_by(appointments.c.start)
    ).mappings()
    return {
        "doctor_id": doctor["id"],
        "day": day,
        "leave": leave_days(conn, doctor["id"], day, day).get(day),
        "appointments": [_plain(row) for row in rows],
        "free_slots": free_slots(conn, doctor, day, day, now),
    }


# Patients


def get_patient(conn: Connection, patient_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(patients).where(patients.c.id == patient_id)).mappings().one_or_none()
    return _plain(row) if row else None


def _relationship_active(now: datetime) -> ColumnElement[bool]:
    return and_(
        care_relationships.c.ended_at.is_(None),
        or_(care_relationships.c.expires_at.is_(None), care_relationships.c.expires_at > now),
    )


def _grant_active(now: datetime) -> ColumnElement[bool]:
    return and_(emergency_access.c.granted_at <= now, emergency_access.c.expires_at > now)


def _visit_opens_record(now: datetime, after_visit: timedelta) -> ColumnElement[bool]:
    """As domain.care.Visit.opens_record."""
    return or_(
        care_visits.c.access == VisitAccess.OPEN.value,
        and_(
            care_visits.c.access == VisitAccess.AFTER_VISIT.value,
            care_visits.c.ends_at > post_visit_cutoff(now, after_visit),
        ),
    )


def patients_in_care(doctor_id: str, now: datetime, after_visit: timedelta) -> Select[Any]:
    """The ids of the patients a doctor may open now, by the rule of domain.care.PatientCare.basis: an active
    relationship, an appointment that opens the record, or an unexpired emergency grant.
    Use as `table.c.patient_id.in_(patients_in_care(...))`."""
    relationships = select(care_relationships.c.patient_id.label("patient_id")).where(
        care_relationships.c.doctor_id == doctor_id, _relationship_active(now)
    )
    visits = select(care_visits.c.patient_id.label("patient_id")).where(
        care_visits.c.doctor_id == doctor_id, _visit_opens_record(now, after_visit)
    )
    emergencies = select(emergency_access.c.patient_id.label("patient_id")).where(
        emergency_access.c.doctor_id == doctor_id, _grant_active(now)
    )
    in_care = union(relationships, visits, emergencies).subquery("in_care")
    return select(in_care.c.patient_id)


@dataclass(frozen=True)
class CareWindow:
    """A doctor's view of patients: whose, as of when, and how long a completed visit keeps access."""

    doctor_id: str
    now: datetime
    after_visit: timedelta


PHONE_PUNCTUATION = "+ ()-."


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _phone_digits(column: Any) -> Any:
    for mark in PHONE_PUNCTUATION:
        column = func.replace(column, mark, "")
    return column


def list_patients(
    conn: Connection,
    *,
    name: str | None,
    of_doctor: CareWindow | None,
    page: int,
    page_size: int,
    date_of_birth: date | None = None,
    phone: str | None = None,
) -> Page:
    """Patients by part of the name, date of birth and part of the phone number (digits only)."""
    query = select(patients).order_by(patients.c.full_name, patients.c.id)
    if name:
        query = query.where(func.lower(patients.c.full_name).contains(name.lower(), autoescape=True))
    if date_of_birth:
        query = query.where(patients.c.date_of_birth == date_of_birth)
    if phone:
        query = query.where(_phone_digits(patients.c.phone).contains(digits(phone)))
    if of_doctor:
        query = query.where(
            patients.c.id.in_(patients_in_care(of_doctor.doctor_id, of_doctor.now, of_doctor.after_visit))
        )
    return _page(conn, query, page, page_size)


# Care


def list_care_relationships(conn: Connection, patient_id: str, now: datetime, *, active_only: bool) -> list[dict[str, Any]]:
    """A patient's care relationships, oldest first, each marked active or not as of now."""
    query = (
        select(care_relationships, _relationship_active(now).label("active"))
        .where(care_relationships.c.patient_id == patient_id)
        .order_by(care_relationships.c.started_at, care_relationships.c.id)
    )
    if active_only:
        query = query.where(_relationship_active(now))
    return [{**_plain(row), "active": bool(row["active"])} for row in conn.execute(query).mappings()]


def list_emergency_access(
    conn: Connection, patient_id: str, now: datetime, *, doctor_id: str | None
) -> list[dict[str, Any]]:
    """Who opened a patient's record in an emergency, newest first, each marked active or not as of now."""
    query = (
        select(emergency_access, _grant_active(now).label("active"))
        .where(emergency_access.c.patient_id == patient_id)
        .order_by(emergency_access.c.granted_at.desc(), emergency_access.c.id)
    )
    if doctor_id is not None:
        query = query.where(emergency_access.c.doctor_id == doctor_id)
    return [{**_plain(row), "active": bool(row["active"])} for row in conn.execute(query).mappings()]


# Accounts


def list_accounts(conn: Connection, *, role: str | None, disabled: bool | None, page: int, page_size: int) -> Page:
    query = select(accounts).order_by(accounts.c.email)
    if role:
        query = query.where(accounts.c.role == role)
    if disabled is not None:
        query = query.where(accounts.c.disabled == disabled)
    return _page(conn, query, page, page_size)


def get_account(conn: Connection, account_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).mappings().one_or_none()
    return _plain(row) if row else None
