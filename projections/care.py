"""The care directory: each patient's care relationships and emergency openings of their record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, update

from domain.care import PatientCare
from projections.base import Projector
from projections.clinical_tables import care_relationships, emergency_access


class CareDirectory(Projector):
    name = "care"
    tables = (care_relationships, emergency_access)

    def __init__(self) -> None:
        self.handlers = {
            PatientCare.RelationshipStarted.TOPIC: self.started,
            PatientCare.RelationshipEnded.TOPIC: self.ended,
            PatientCare.EmergencyAccessGranted.TOPIC: self.glass_broken,
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
