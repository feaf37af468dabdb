"""The care directory: each patient's care relationships, the access their appointments give, and emergency
openings of their record."""

from __future__ import annotations

from datetime import timezone
from typing import Any

from sqlalchemy import Connection, insert, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from domain.appointment import VisitAccess
from domain.care import PatientCare
from projections.base import Projector
from projections.clinical_tables import care_relationships, care_visits, emergency_access


class CareDirectory(Projector):
    name = "care"
    tables = (care_relationships, care_visits, emergency_access)
    bulk = {
        PatientCare.VisitOpened.TOPIC: "visits",
        PatientCare.VisitCompleted.TOPIC: "visits",
        PatientCare.VisitClosed.TOPIC: "visits",
    }
    ACCESS = {
        PatientCare.VisitOpened: VisitAccess.OPEN,
        PatientCare.VisitCompleted: VisitAccess.AFTER_VISIT,
        PatientCare.VisitClosed: VisitAccess.NONE,
    }

    def __init__(self) -> None:
        self.handlers = {
            PatientCare.RelationshipStarted.TOPIC: self.started,
            PatientCare.RelationshipEnded.TOPIC: self.ended,
            PatientCare.EmergencyAccessGranted.TOPIC: self.glass_broken,
            PatientCare.VisitOpened.TOPIC: lambda conn, e: self.visits(conn, [e]),
            PatientCare.VisitCompleted.TOPIC: lambda conn, e: self.visits(conn, [e]),
            PatientCare.VisitClosed.TOPIC: lambda conn, e: self.visits(conn, [e]),
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

    @classmethod
    def visits(cls, conn: Connection, events: list[Any]) -> None:
        """Each appointment's latest access, written in one statement (an insert, or an update of its row)."""
        latest = {
            e.appointment_id: {
                "appointment_id": e.appointment_id,
                "patient_id": e.patient_id,
                "doctor_id": e.doctor_id,
                "access": cls.ACCESS[type(e)].value,
                "ends_at": e.ends_at.astimezone(timezone.utc) if isinstance(e, PatientCare.VisitCompleted) else None,
            }
            for e in events
        }
        upsert = (postgres_insert if conn.dialect.name == "postgresql" else sqlite_insert)(care_visits)
        changed = {name: upsert.excluded[name] for name in ("patient_id", "doctor_id", "access", "ends_at")}
        conn.execute(upsert.on_conflict_do_update(index_elements=["appointment_id"], set_=changed), list(latest.values()))
