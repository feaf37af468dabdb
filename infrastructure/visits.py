"""The appointment book as the Visits port: whether a doctor is seeing a patient through an appointment."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from projections.queries import has_visit


class AppointmentBookVisits:
    def __init__(self, engine: Engine, after_visit: timedelta) -> None:
        self.engine = engine
        self.after_visit = after_visit

    def doctor_sees_patient(self, doctor_id: str, patient_id: str, now: datetime) -> bool:
        with self.engine.connect() as conn:
            return has_visit(conn, doctor_id, patient_id, now, self.after_visit)
