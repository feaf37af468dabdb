"""The care directory: each patient's care relationships, the access their appointments give, and emergency
openings of their record."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, insert, update

from domain.appointment import VisitAccess
from domain.care import PatientCare
from projections.base import Projector
from projections.clinical_tables import care_relationships, care_visits, emergency_access


class CareDirectory(Projector):
    name = "care"
    tables = (care_relationships, care_visits, emergency_access)

    def __init__(self) -> None:
        self.handlers = {
            PatientCare.RelationshipStarted.TOPIC: self.started,
            PatientCare.RelationshipEnded.TOPIC: self.ended,
            PatientCare.EmergencyAccessGranted.TOPIC: self.glass_broken,
            PatientCare.VisitOpened.TOPIC: lambda conn, e: self.visit(conn, e, VisitAccess.OPEN),
            PatientCare.VisitCompleted.TOPIC: lambda conn, e: self.visit(conn, e, VisitAccess.AFTER_VISIT, e.ends_at),
            PatientCare.VisitClosed.TOPIC: lambda conn, e: self.visit(conn, e, VisitAccess.NONE),
        }

    def _patient_id(self, e: Any) -> str:
        care: PatientCare = self.load(e.originator_id, e.originator_version)
        return care.patient_id

    def started(self, conn: Connection, e: Any) -> None:
        conn.execute(
            insert(care_relationships).values(
                id=e.relationship_id,
                patient_id=self._patient_id(e),
                doctor_id=e.doctor_id,
                kind=e.kind,
                reason=e.reason,
                referring_doctor_id=e.referring_doctor_id,
                started_at=e.started_at,
                expires_at=e.expires_at,
            )
        )

    @staticmethod
    def ended(conn: Connection, e: Any) -> None:
        conn.execute(
            update(care_relationships)
            .where(care_relationships.c.id == e.relationship_id)
            .values(ended_at=e.ended_at, end_reason=e.reason)
        )

    def glass_broken(self, conn: Connection, e: Any) -> None:
        conn.execute(
            insert(emergency_access).values(
                id=e.grant_id,
                patient_id=self._patient_id(e),
                doctor_id=e.doctor_id,
                reason=e.reason,
                granted_at=e.granted_at,
                expires_at=e.expires_at,
            )
        )

    @staticmethod
    def visit(conn: Connection, e: Any, access: VisitAccess, ends_at: datetime | None = None) -> None:
        values = {
            "patient_id": e.patient_id,
            "doctor_id": e.doctor_id,
            "access": access.value,
            "ends_at": ends_at.astimezone(timezone.utc) if ends_at is not None else None,
        }
        moved = conn.execute(update(care_visits).where(care_visits.c.appointment_id == e.appointment_id).values(**values))
        if moved.rowcount == 0:
            conn.execute(insert(care_visits).values(appointment_id=e.appointment_id, **values))
